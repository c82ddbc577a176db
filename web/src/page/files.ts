/**
 * The room's files as a tree: open on click; for editors and owners also create, rename and
 * delete, with inline inputs (never a browser dialog). Viewers get no such controls.
 */

import type { CodeSphereClient } from "../core/index.js";
import { baseName, button, describeError, el } from "./dom.js";
import type { StatusView } from "./status.js";
import type { Workspace } from "./workspace.js";

type Editing = { readonly kind: "new" } | { readonly kind: "rename"; readonly path: string };

interface Folder {
  readonly folders: Map<string, Folder>;
  readonly files: string[];
}

export class FileTree {
  private readonly client: CodeSphereClient;
  private readonly workspace: Workspace;
  private readonly status: StatusView;
  private readonly tree: HTMLElement;
  private readonly newButton: HTMLButtonElement;
  private readonly newSlot: HTMLElement;
  private canEdit = false;
  private editing: Editing | null = null;
  /** The inline form while editing; kept across re-renders so typing is not lost. */
  private form: { node: HTMLFormElement; input: HTMLInputElement; error: HTMLElement; submit: HTMLButtonElement } | null = null;

  constructor(section: HTMLElement, client: CodeSphereClient, workspace: Workspace, status: StatusView) {
    this.client = client;
    this.workspace = workspace;
    this.status = status;
    this.tree = el("ul", { testid: "file-tree", className: "file-tree", attrs: { role: "tree", "aria-label": "Files" } });
    this.newButton = button("New file", () => this.startEditing({ kind: "new" }), { testid: "new-file", className: "new-file" });
    this.newSlot = el("div", { className: "new-file-slot" });
    section.append(el("div", { className: "panel-head", children: [el("h2", { text: "Files" }), this.newButton] }), this.newSlot, this.tree);
    client.on("fileCreated", () => this.render());
    client.on("fileDeleted", () => this.render());
    client.on("fileRenamed", ({ path, newPath }) => {
      if (this.editing?.kind === "rename" && this.editing.path === path) this.editing = { kind: "rename", path: newPath };
      this.workspace.renamed(path, newPath);
      this.render();
    });
    workspace.on("active", () => this.render());
  }

  setCanEdit(canEdit: boolean): void {
    this.canEdit = canEdit;
    if (!canEdit) this.stopEditing();
    this.newButton.hidden = !canEdit;
    this.render();
  }

  render(): void {
    const hadFocus = this.form !== null && document.activeElement === this.form.input;
    const root: Folder = { folders: new Map(), files: [] };
    for (const path of this.client.files.keys()) {
      const parts = path.split("/");
      let folder = root;
      for (const part of parts.slice(0, -1)) {
        let next = folder.folders.get(part);
        if (next === undefined) {
          next = { folders: new Map(), files: [] };
          folder.folders.set(part, next);
        }
        folder = next;
      }
      folder.files.push(path);
    }
    if (this.editing?.kind === "rename" && !this.client.files.has(this.editing.path)) this.stopEditing();
    this.newSlot.replaceChildren();
    if (this.editing?.kind === "new" && this.form !== null) this.newSlot.append(this.form.node);
    this.tree.replaceChildren(...this.renderFolder(root, ""));
    if (this.tree.childElementCount === 0) this.tree.append(el("li", { className: "file-tree-empty", text: "No files yet." }));
    if (hadFocus) this.form?.input.focus();
  }

  private renderFolder(folder: Folder, prefix: string): HTMLElement[] {
    const items: HTMLElement[] = [];
    for (const name of [...folder.folders.keys()].sort()) {
      const sub = folder.folders.get(name);
      if (sub === undefined) continue;
      const children = el("ul", { attrs: { role: "group" }, children: this.renderFolder(sub, `${prefix}${name}/`) });
      items.push(
        el("li", {
          className: "folder",
          attrs: { role: "treeitem", "aria-expanded": "true", "data-folder": `${prefix}${name}` },
          children: [el("span", { className: "folder-name", text: `${name}/` }), children],
        }),
      );
    }
    for (const path of folder.files.sort()) items.push(this.fileItem(path));
    return items;
  }

  private fileItem(path: string): HTMLElement {
    const active = this.workspace.activePath === path;
    const item = el("li", {
      testid: "file-item",
      className: `file${active ? " active" : ""}`,
      attrs: { role: "treeitem", "data-path": path, "aria-selected": String(active), title: path },
    });
    if (this.editing?.kind === "rename" && this.editing.path === path && this.form !== null) {
      item.append(this.form.node);
      return item;
    }
    const open = el("button", { className: "file-open", text: baseName(path), attrs: { type: "button" } });
    item.append(open);
    item.addEventListener("click", () => void this.workspace.open(path, { focus: true }));
    if (this.canEdit) {
      // Icons drawn by CSS, so the item's text stays the file's name.
      const rename = el("button", { testid: "rename-file", className: "file-action rename", attrs: { type: "button", title: "Rename", "aria-label": `Rename ${path}` } });
      const remove = el("button", { testid: "delete-file", className: "file-action delete", attrs: { type: "button", title: "Delete", "aria-label": `Delete ${path}` } });
      rename.addEventListener("click", (event) => {
        event.stopPropagation();
        this.startEditing({ kind: "rename", path });
      });
      remove.addEventListener("click", (event) => {
        event.stopPropagation();
        void this.remove(path);
      });
      item.append(rename, remove);
    }
    return item;
  }

  private startEditing(editing: Editing): void {
    if (!this.canEdit) return;
    this.editing = editing;
    const input = el("input", {
      testid: "file-name-input",
      className: "file-name-input",
      attrs: { type: "text", "aria-label": editing.kind === "new" ? "New file name" : "New name", placeholder: editing.kind === "new" ? "path/to/file.py" : "", spellcheck: "false", autocomplete: "off" },
    });
    input.value = editing.kind === "rename" ? editing.path : "";
    const submit = el("button", { testid: "file-name-submit", text: editing.kind === "new" ? "Create" : "Rename", attrs: { type: "submit" } });
    const cancel = button("Cancel", () => this.cancel(), { className: "file-name-cancel" });
    const error = el("p", { className: "form-error", attrs: { hidden: true, role: "alert" } });
    const node = el("form", { className: "file-name-form", children: [input, submit, cancel, error] });
    node.addEventListener("click", (event) => event.stopPropagation());
    node.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.cancel();
    });
    this.form = { node, input, error, submit };
    this.render();
    input.focus();
    if (editing.kind === "rename") {
      // Select the name without its folder and extension, as file managers do.
      const start = editing.path.lastIndexOf("/") + 1;
      const dot = editing.path.lastIndexOf(".");
      input.setSelectionRange(start, dot > start ? dot : editing.path.length);
    }
  }

  private cancel(): void {
    this.stopEditing();
    this.render();
  }

  private stopEditing(): void {
    this.editing = null;
    this.form = null;
  }

  private async submit(): Promise<void> {
    const editing = this.editing;
    const form = this.form;
    if (editing === null || form === null) return;
    const name = form.input.value.trim();
    if (name.length === 0) {
      this.formError("Type a file name.");
      return;
    }
    form.submit.disabled = true;
    try {
      if (editing.kind === "new") {
        await this.client.createFile(name, "");
        this.stopEditing();
        this.render();
        await this.workspace.open(name, { focus: true });
      } else {
        if (name !== editing.path) {
          await this.client.renameFile(editing.path, name);
          this.workspace.renamed(editing.path, name);
        }
        this.stopEditing();
        this.render();
      }
    } catch (error) {
      form.submit.disabled = false;
      this.formError(describeError(error));
    }
  }

  private formError(message: string): void {
    if (this.form === null) return;
    this.form.error.textContent = message;
    this.form.error.hidden = false;
    this.form.input.focus();
  }

  private async remove(path: string): Promise<void> {
    try {
      await this.client.deleteFile(path);
      this.render();
    } catch (error) {
      this.status.showNotice(`Could not delete ${path}: ${describeError(error)}`);
    }
  }
}
