/**
 * Sends our cursor and selections (protocol §7): on every cursor move, at most every 50 ms
 * (the server passes on 20 a second anyway), when we switch files, and again after a reconnect.
 *
 * Positions must refer to our revision plus the edits we have *sent* (§7). While keystrokes
 * are gathered but not yet sent (one edit is in flight), our text is ahead of that, so the
 * update waits until the document has sent them.
 *
 * Moving to another file first says `path: null`: §7 promises the others in the previous file
 * a `path: null` when a member moves away, but the server sends it only for an explicit null,
 * so without it they would keep showing our cursor where we left it.
 */

import type * as monaco from "monaco-editor";

import type { CodeSphereClient, Selection } from "../core/index.js";
import type { Workspace } from "./workspace.js";

const INTERVAL_MS = 50;

export class PresenceSender {
  private readonly client: CodeSphereClient;
  private readonly workspace: Workspace;
  private readonly editor: monaco.editor.IStandaloneCodeEditor;
  private timer: number | undefined;
  private lastSentAt = 0;
  private lastSent = "";
  /** The file our last update was about (null: none). */
  private lastPath: string | null = null;
  private offDocState: (() => void) | null = null;

  constructor(client: CodeSphereClient, workspace: Workspace) {
    this.client = client;
    this.workspace = workspace;
    this.editor = workspace.editor;
    this.editor.onDidChangeCursorSelection(() => this.schedule());
    workspace.on("active", () => {
      this.watchActiveDocument();
      this.schedule();
    });
    client.on("state", ({ state }) => {
      if (state === "online") this.resend();
    });
  }

  /** Send again even if nothing changed (the server forgot us across a reconnect). */
  resend(): void {
    this.lastSent = "";
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastSentAt + INTERVAL_MS - Date.now());
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, wait);
  }

  /** A document's state changes when gathered keystrokes go out: a waiting update can follow. */
  private watchActiveDocument(): void {
    this.offDocState?.();
    this.offDocState = null;
    const doc = this.workspace.active?.doc;
    if (doc !== undefined) this.offDocState = doc.on("state", () => this.schedule());
  }

  private send(): void {
    if (this.client.state !== "online") return; // resent when back online
    const file = this.workspace.active;
    if (file === null) {
      this.post(null, []);
      return;
    }
    const doc = file.doc;
    const snapshot = doc.snapshot;
    if (snapshot.unsent > 0 || (snapshot.status !== "synced" && snapshot.status !== "sending")) return;
    if (this.editor.getModel() !== file.model) return;
    const selections: Selection[] = (this.editor.getSelections() ?? []).map((s) => ({
      anchor: { line: s.selectionStartLineNumber - 1, character: s.selectionStartColumn - 1 },
      active: { line: s.positionLineNumber - 1, character: s.positionColumn - 1 },
    }));
    this.post(doc.path, selections, doc.revision);
  }

  private post(path: string | null, selections: Selection[], revision?: number): void {
    const key = JSON.stringify([path, revision, selections]);
    if (key === this.lastSent) return;
    if (this.lastPath !== null && path !== null && path !== this.lastPath) {
      this.client.updatePresence(null).catch(() => undefined);
    }
    this.lastSent = key;
    this.lastPath = path;
    this.lastSentAt = Date.now();
    this.client.updatePresence(path, selections).catch((error: unknown) => {
      // Presence is best effort (a bad position never needs a resync, §7); try again next move.
      this.lastSent = "";
      console.debug("codesphere: presence/update failed:", error);
    });
  }
}
