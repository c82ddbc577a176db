/**
 * The editor and its tabs: one Monaco editor, one model per open file, each bound to its
 * RemoteDocument. Open tabs stay open on the server (their edits keep flowing in); switching
 * tabs swaps the editor's model and keeps each tab's scroll and cursor.
 */

import * as monaco from "monaco-editor";

import { Emitter, type CodeSphereClient, type RemoteDocument } from "../core/index.js";
import { baseName, describeError, el, show } from "./dom.js";
import { EditorBinding } from "./editor-binding.js";
import { languageOf } from "./languages.js";
import type { Layout } from "./layout.js";
import type { StatusView } from "./status.js";

export interface OpenFile {
  path: string;
  readonly doc: RemoteDocument;
  readonly model: monaco.editor.ITextModel;
  readonly binding: EditorBinding;
  readonly tab: HTMLElement;
  viewState: monaco.editor.ICodeEditorViewState | null;
}

export interface WorkspaceEvents {
  /** The file shown in the editor changed (or was renamed). */
  active: { readonly path: string | null };
  /** The user edited the text. */
  localEdit: { readonly path: string };
  /** Tabs were opened, closed or renamed. */
  tabs: { readonly paths: readonly string[] };
}

/**
 * The TypeScript service sees one file at a time, without the room's project (its imports,
 * its tsconfig, its packages): its semantic errors would mostly be false. Syntax errors stay.
 */
function quietTypeScript(): void {
  for (const defaults of [monaco.typescript.typescriptDefaults, monaco.typescript.javascriptDefaults]) {
    defaults.setDiagnosticsOptions({ noSemanticValidation: true, noSyntaxValidation: false });
  }
}

export class Workspace extends Emitter<WorkspaceEvents> {
  readonly editor: monaco.editor.IStandaloneCodeEditor;
  private readonly client: CodeSphereClient;
  private readonly status: StatusView;
  private readonly tabBar: HTMLElement;
  private readonly emptyHint: HTMLElement;
  private readonly files = new Map<string, OpenFile>();
  private readonly loading = new Map<string, Promise<OpenFile | null>>();
  private current: OpenFile | null = null;
  private uriCount = 0;

  constructor(layout: Layout, client: CodeSphereClient, status: StatusView, readOnly: boolean) {
    super();
    this.client = client;
    this.status = status;
    this.tabBar = layout.tabs;
    this.emptyHint = layout.editorEmpty;
    quietTypeScript();
    this.editor = monaco.editor.create(layout.editorHost, {
      model: null,
      theme: "vs-dark",
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      scrollBeyondLastLine: false,
      fixedOverflowWidgets: true,
      ...readOnlyOptions(readOnly),
    });
    show(this.emptyHint, true);
  }

  get activePath(): string | null {
    return this.current?.path ?? null;
  }

  get active(): OpenFile | null {
    return this.current;
  }

  get openPaths(): string[] {
    return [...this.files.keys()];
  }

  file(path: string): OpenFile | undefined {
    return this.files.get(path);
  }

  setReadOnly(readOnly: boolean): void {
    this.editor.updateOptions(readOnlyOptions(readOnly));
  }

  /** Open `path` in a tab (or find its tab) and, unless told otherwise, show it. */
  async open(path: string, options: { activate?: boolean; focus?: boolean } = {}): Promise<boolean> {
    let file: OpenFile | null | undefined = this.files.get(path);
    if (file === undefined) {
      let pending = this.loading.get(path);
      if (pending === undefined) {
        pending = this.load(path);
        this.loading.set(path, pending);
        void pending.finally(() => this.loading.delete(path));
      }
      file = await pending;
    }
    if (file === null) return false;
    if (options.activate !== false && this.files.get(file.path) === file) this.activate(file.path, options.focus ?? false);
    return true;
  }

  private async load(path: string): Promise<OpenFile | null> {
    let doc: RemoteDocument;
    try {
      doc = await this.client.open(path);
    } catch (error) {
      this.status.showNotice(`Could not open ${path}: ${describeError(error)}`);
      return null;
    }
    // From here on nothing awaits: the model is made from the document's text and bound to
    // its changes before the connection reads another message.
    const existing = this.files.get(doc.path);
    if (existing !== undefined) return existing;
    const model = monaco.editor.createModel(doc.text, languageOf(doc.path), this.uriFor(doc.path));
    const tab = this.makeTab(doc.path);
    const file: OpenFile = {
      path: doc.path,
      doc,
      model,
      tab,
      viewState: null,
      binding: new EditorBinding(model, doc, {
        onLocalEdit: () => this.emit("localEdit", { path: file.path }),
        onRepaired: (reason) => {
          console.warn(`codesphere: ${file.path}: ${reason}; the editor was reset to the document`);
        },
      }),
    };
    this.files.set(doc.path, file);
    doc.on("closed", ({ reason }) => this.dropFile(file, reason));
    doc.on("resync", ({ lostEdits }) => {
      if (lostEdits > 0) {
        this.status.showNotice(`${file.path} was reloaded from the server: ${lostEdits} of your edits could not be placed.`);
      }
    });
    this.tabBar.append(tab);
    this.emitTabs();
    return file;
  }

  /** Show an open file in the editor. */
  activate(path: string, focus = false): void {
    const file = this.files.get(path);
    if (file === undefined) return;
    if (this.current !== file) {
      if (this.current !== null) this.current.viewState = this.editor.saveViewState();
      this.current = file;
      this.editor.setModel(file.model);
      if (file.viewState !== null) this.editor.restoreViewState(file.viewState);
      show(this.emptyHint, false);
      this.markTabs();
      this.emit("active", { path: file.path });
    }
    if (focus) this.editor.focus();
  }

  /** Close a tab (the document is closed on the server too). */
  closeTab(path: string): void {
    const file = this.files.get(path);
    if (file === undefined) return;
    file.doc.close(); // emits "closed", which drops the tab
    this.dropFile(file, "closed");
  }

  /** A file was renamed (by us or someone else): its tab and model follow. */
  renamed(path: string, newPath: string): void {
    const file = this.files.get(path);
    if (file === undefined) return;
    this.files.delete(path);
    file.path = newPath;
    this.files.set(newPath, file);
    file.tab.dataset["path"] = newPath;
    file.tab.title = newPath;
    const label = file.tab.querySelector(".tab-label");
    if (label !== null) label.textContent = baseName(newPath);
    monaco.editor.setModelLanguage(file.model, languageOf(newPath));
    this.emitTabs();
    if (this.current === file) this.emit("active", { path: newPath });
  }

  /** The text of the active (or given) file's model, as the user sees it. */
  text(path?: string): string | undefined {
    const file = path === undefined ? this.current : this.files.get(path);
    return file?.model.getValue();
  }

  private dropFile(file: OpenFile, reason: string): void {
    if (this.files.get(file.path) !== file) return;
    this.files.delete(file.path);
    file.binding.dispose();
    file.tab.remove();
    if (this.current === file) {
      this.current = null;
      this.editor.setModel(null);
      const next = [...this.files.values()].pop();
      if (next !== undefined) {
        this.activate(next.path);
      } else {
        show(this.emptyHint, true);
        this.emit("active", { path: null });
      }
    }
    file.model.dispose();
    this.emitTabs();
    if (reason !== "closed" && reason !== "deleted" && reason !== "the client was closed") {
      this.status.showNotice(`${file.path} was closed: ${reason}.`);
    }
  }

  private makeTab(path: string): HTMLElement {
    const close = el("button", {
      className: "tab-close",
      testid: "close-tab",
      attrs: { type: "button", "aria-label": "Close tab", title: "Close" },
    });
    const tab = el("div", {
      testid: "tab",
      className: "tab",
      attrs: { role: "tab", "data-path": path, "aria-selected": "false", tabindex: "0", title: path },
      children: [el("span", { className: "tab-label", text: baseName(path) }), close],
    });
    // The tab's path is read when clicked: it changes when the file is renamed.
    const pathOf = (): string => tab.dataset["path"] ?? path;
    tab.addEventListener("click", () => this.activate(pathOf(), true));
    tab.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.activate(pathOf(), true);
      }
    });
    close.addEventListener("click", (event) => {
      event.stopPropagation();
      this.closeTab(pathOf());
    });
    return tab;
  }

  private markTabs(): void {
    for (const file of this.files.values()) {
      const selected = file === this.current;
      file.tab.setAttribute("aria-selected", String(selected));
      file.tab.classList.toggle("active", selected);
    }
  }

  private emitTabs(): void {
    this.markTabs();
    this.emit("tabs", { paths: this.openPaths });
  }

  /**
   * A model URI from the path (the TypeScript and JSON services look at its extension). After
   * a rename the old model keeps its URI, so a new file at that path gets a distinct one.
   */
  private uriFor(path: string): monaco.Uri {
    const uri = monaco.Uri.from({ scheme: "file", path: `/${path}` });
    if (monaco.editor.getModel(uri) === null) return uri;
    this.uriCount += 1;
    return monaco.Uri.from({ scheme: "file", path: `/${path}`, query: `copy=${this.uriCount}` });
  }
}

function readOnlyOptions(readOnly: boolean): monaco.editor.IEditorOptions {
  return {
    readOnly,
    // Also the hidden textarea: no IME or paste reaches a viewer's model.
    domReadOnly: readOnly,
    readOnlyMessage: { value: "You are a viewer in this room: the files are read-only." },
  };
}
