/**
 * Follow mode (protocol §7, client-side): open the file the followed member looks at and keep
 * their cursor in view as their presence changes. It stops when the user types or clicks in
 * the editor, presses a key there, or the member leaves.
 *
 * The server sends a member's presence only to connections that have that file open (§7). To
 * see where the followed member goes next, the follower opens the room's other files in the
 * background (documents without tabs, kept in step by the core) while it follows, and closes
 * them again when it stops. Rooms with very many files are not watched this way: following
 * then works within the files open here.
 */

import type * as monaco from "monaco-editor";

import { Emitter, type CodeSphereClient, type Presence } from "../core/index.js";
import { el } from "./dom.js";
import type { Workspace } from "./workspace.js";

/** Above this many files, following does not open them all in the background. */
const WATCH_LIMIT = 200;

export class Follower extends Emitter<{ changed: { readonly memberId: string | null } }> {
  private readonly client: CodeSphereClient;
  private readonly workspace: Workspace;
  private readonly editor: monaco.editor.IStandaloneCodeEditor;
  private readonly indicator: HTMLElement;
  private readonly label: HTMLElement;
  private target: string | null = null;
  /** The newest presence of the followed member not yet shown (one file open at a time). */
  private waiting: Presence | null = null;
  private busy = false;
  /** Files opened in the background for following (not in tabs). */
  private readonly watched = new Set<string>();

  constructor(client: CodeSphereClient, workspace: Workspace, statusBar: HTMLElement) {
    super();
    this.client = client;
    this.workspace = workspace;
    this.editor = workspace.editor;
    this.label = el("span", { className: "follow-label" });
    const stop = el("button", {
      className: "follow-stop",
      attrs: { type: "button", "aria-label": "Stop following", title: "Stop following" },
    });
    stop.addEventListener("click", () => this.stop());
    this.indicator = el("span", { testid: "follow-state", className: "follow-state", attrs: { hidden: true }, children: [this.label, stop] });
    statusBar.append(this.indicator);

    client.on("presence", (presence) => {
      if (presence.memberId === this.target) this.show(presence);
    });
    client.on("memberLeft", ({ memberId }) => {
      if (memberId === this.target) this.stop();
    });
    // The user's own input in the editor takes over.
    this.editor.onKeyDown(() => this.stop());
    this.editor.onMouseDown(() => this.stop());
    workspace.on("localEdit", () => this.stop());
    client.on("fileCreated", ({ path }) => {
      if (this.target !== null) void this.watch([path]);
    });
    client.on("fileRenamed", ({ path, newPath }) => {
      if (this.watched.delete(path)) this.watched.add(newPath);
    });
    client.on("fileDeleted", ({ path }) => this.watched.delete(path));
  }

  get following(): string | null {
    return this.target;
  }

  follow(memberId: string): void {
    if (memberId === this.client.me?.memberId) return;
    this.target = memberId;
    this.render();
    this.emit("changed", { memberId });
    const presence = this.client.presence.get(memberId);
    if (presence !== undefined) this.show(presence);
    // Opening a file brings the presence of everyone in it (§5): that is how we find them.
    if (this.client.files.size <= WATCH_LIMIT) void this.watch([...this.client.files.keys()]);
  }

  toggle(memberId: string): void {
    if (this.target === memberId) this.stop();
    else this.follow(memberId);
  }

  stop(): void {
    if (this.target === null) return;
    this.target = null;
    this.waiting = null;
    this.unwatch();
    this.render();
    this.emit("changed", { memberId: null });
  }

  private async watch(paths: readonly string[]): Promise<void> {
    const fresh = paths.filter((path) => !this.client.documents.has(path) && !this.watched.has(path));
    for (const path of fresh) this.watched.add(path);
    await Promise.all(
      fresh.map((path) =>
        this.client.open(path).then(
          (doc) => {
            // Stopped following meanwhile: close it again, unless it got a tab.
            if (this.target === null && this.workspace.file(doc.path) === undefined) doc.close();
          },
          () => this.watched.delete(path),
        ),
      ),
    );
  }

  private unwatch(): void {
    for (const path of this.watched) {
      if (this.workspace.file(path) === undefined) this.client.documents.get(path)?.close();
    }
    this.watched.clear();
  }

  private render(): void {
    if (this.target === null) {
      this.label.textContent = "";
      this.indicator.hidden = true;
      return;
    }
    const member = this.client.members.get(this.target);
    const presence = this.client.presence.get(this.target);
    const name = member?.name ?? presence?.name ?? "someone";
    this.label.textContent = presence?.path == null ? `following ${name} (no file open)` : `following ${name}`;
    this.indicator.hidden = false;
  }

  private show(presence: Presence): void {
    this.waiting = presence;
    this.render();
    if (!this.busy) void this.drain();
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.waiting !== null && this.target !== null) {
        const presence = this.waiting;
        this.waiting = null;
        if (presence.path === null) continue;
        // Not focused: following must not take the keyboard from the chat box.
        if (!(await this.workspace.open(presence.path, { focus: false }))) continue;
        if (this.target !== presence.memberId || this.waiting !== null) continue;
        const active = presence.selections[0]?.active;
        if (active !== undefined && this.workspace.activePath === presence.path) {
          this.editor.revealPositionInCenterIfOutsideViewport(
            { lineNumber: active.line + 1, column: active.character + 1 },
            1 /* ScrollType.Immediate */,
          );
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
