/**
 * An open document kept in step with the server (protocol.md §6): the I/O around the pure
 * revision rule of document.ts.
 *
 * Local edits are applied at once. At most one `didChange` is in flight; keystrokes typed
 * meanwhile are gathered and sent as one edit when it is answered, which bounds the messages
 * (and the server's work) whatever the typing speed. Acknowledgements and `remoteChange`s are
 * applied synchronously as the connection reads them, in the server's order, and every server
 * change that reaches the text is emitted as a `change` event for the editor's buffer.
 *
 * Any refusal of an edit, or a server edit we cannot place, means our text may differ from the
 * server's: the document re-opens itself (a resync) and reports how many edits were lost.
 * While the connection is down edits are applied and kept; after a reconnect the document
 * resumes (§6.5): it re-opens at its revision, resends its kept edits exactly, then the rest.
 */

import { ClientDocument, OutOfSync, type PendingEdit } from "./document.js";
import { ConnectionLost, DocumentClosed, DocumentNotFound, RequestTimeout, RpcError, errorName } from "./errors.js";
import { Emitter } from "./events.js";
import { sha256Hex, startTimer, stopTimer, type TimerHandle } from "./host.js";
import {
  changeAt,
  differenceChange,
  offsetAt,
  positionAt,
  type ContentChange,
  type Position,
} from "./positions.js";
import {
  changeJson,
  object,
  parseAck,
  parseOpen,
  type Eol,
  type OpenResult,
  type RemoteChangeParams,
} from "./protocol.js";
import type { RpcConnection } from "./rpc.js";

/**
 * Where a `change` came from: another member's edit, our acknowledgement's catch-up, or a
 * re-open that replaced the text with the server's (a resync, or catching up after a reconnect).
 */
export type ChangeSource = "remote" | "ack" | "resync";

export interface DocumentChange {
  /** Apply to the editor's buffer in order, each range relative to the text the previous left. */
  readonly changes: readonly ContentChange[];
  /** The document's revision after them. */
  readonly revision: number;
  readonly source: ChangeSource;
  /** The author, for a remote change. */
  readonly memberId?: string;
}

/**
 * - `synced`: every local change acknowledged; server edits apply as they come.
 * - `sending`: local changes await acknowledgement (server edits show when they are answered).
 * - `offline`: no connection; local changes are kept for the reconnect.
 * - `resyncing`: being re-opened (after a reconnect, or because the text may have diverged).
 * - `closed`: closed here, or deleted on the server.
 */
export type DocumentStatus = "synced" | "sending" | "offline" | "resyncing" | "closed";

export interface ErrorInfo {
  readonly message: string;
  /** The protocol's error code, for an error response. */
  readonly code?: number;
  readonly path?: string;
  /** `Date.now()` when it happened. */
  readonly at: number;
}

export interface DocumentState {
  readonly path: string;
  readonly status: DocumentStatus;
  readonly revision: number;
  /** Edits sent and not yet acknowledged. */
  readonly unacked: number;
  /** Local changes not yet sent (typed while an edit was in flight, or offline). */
  readonly unsent: number;
  /** Edits abandoned by re-opens so far. */
  readonly lostEdits: number;
  readonly lastError: ErrorInfo | null;
}

export interface ResyncReport {
  /** Local edits the re-open abandoned (sent but unplaceable, or not yet sent). */
  readonly lostEdits: number;
  readonly reason: string;
}

export interface DocumentEvents {
  change: DocumentChange;
  state: DocumentState;
  resync: ResyncReport;
  closed: { readonly reason: string };
}

/** What a document needs from the client that owns it. */
export interface DocumentHost {
  /** The connection, once it is initialized and joined (null while offline). */
  readonly activeConnection: RpcConnection | null;
  /** The connection is unusable (e.g. an edit got no answer): drop it and reconnect. */
  connectionFailed(reason: string): void;
  forget(doc: RemoteDocument): void;
  recordError(error: ErrorInfo): void;
  documentStateChanged(doc: RemoteDocument): void;
}

type Phase =
  | "open" // open on `connection`: edits are sent
  | "opening" // a plain didOpen is in flight: server edits are ignored, the text will be replaced
  | "resuming" // a resuming didOpen is in flight: local edits wait, our text stays
  | "detached" // no connection
  | "closed";

export class RemoteDocument extends Emitter<DocumentEvents> {
  private readonly host: DocumentHost;
  private readonly state: ClientDocument;
  private phase: Phase;
  private connection: RpcConnection | null;
  /** Set when the text may differ from the server's: cleared only by a plain re-open. */
  private resyncReason: string | null = null;
  /** Bumped whenever earlier replies stop being meaningful (re-open, detach, close). */
  private generation = 0;
  private lost = 0;
  private reopenFailures = 0;
  private reopenTimer: TimerHandle | null = null;
  private error: ErrorInfo | null = null;
  /** The document's on-disk line-end style; the text itself always uses `\n`. */
  eol: Eol;

  /** @internal Made by `CodeSphereClient.open`. */
  constructor(host: DocumentHost, connection: RpcConnection, opened: OpenResult, lastSeq: number) {
    super();
    this.host = host;
    this.state = new ClientDocument(opened.path, opened.text, opened.revision, Math.max(lastSeq, opened.lastSeq));
    this.eol = opened.eol;
    this.phase = "open";
    this.connection = connection;
  }

  // -- reading --------------------------------------------------------------------------------

  get path(): string {
    return this.state.path;
  }

  /** The server's text at `revision` plus our changes since; lines end with `\n`. */
  get text(): string {
    return this.state.text;
  }

  get revision(): number {
    return this.state.revision;
  }

  get unacked(): number {
    return this.state.unacked;
  }

  /** The seq of our latest edit of this document. */
  get lastSeq(): number {
    return this.state.lastSeq;
  }

  /** Edits kept since `revision` last moved (what a reconnect would resend). */
  get pendingEdits(): readonly PendingEdit[] {
    return this.state.pending;
  }

  get isClosed(): boolean {
    return this.phase === "closed";
  }

  get status(): DocumentStatus {
    switch (this.phase) {
      case "closed":
        return "closed";
      case "detached":
        return "offline";
      case "opening":
      case "resuming":
        return "resyncing";
      case "open":
        if (this.resyncReason !== null) return "resyncing";
        return this.state.inSyncWithServer ? "synced" : "sending";
    }
  }

  /** A snapshot for a status bar. */
  get snapshot(): DocumentState {
    return {
      path: this.path,
      status: this.status,
      revision: this.state.revision,
      unacked: this.state.unacked,
      unsent: this.state.unsent.length,
      lostEdits: this.lost,
      lastError: this.error,
    };
  }

  /** The position of a UTF-16 offset of `text`. */
  positionAt(offset: number): Position {
    return positionAt(this.state.text, offset);
  }

  /** The UTF-16 offset of a position in `text`. */
  offsetAt(position: Position): number {
    return offsetAt(this.state.text, position);
  }

  // -- editing --------------------------------------------------------------------------------

  /**
   * Apply the user's changes (positions in `text`, UTF-16) now and send them as soon as the
   * edit in flight is answered. Throws `PositionError`/`InvalidChangeError`, changing nothing,
   * if they do not fit; `DocumentClosed` once closed. While the document is being re-opened
   * plainly the changes are applied but will be lost (and counted) when the server text comes.
   *
   * `\r\n` and `\r` in the inserted text become `\n`, so an editor's buffer must use `\n`
   * line ends itself (Monaco: `EndOfLineSequence.LF`) for its positions to stay the same as
   * ours; `eol` says how to show or save the text.
   */
  edit(changes: readonly ContentChange[]): void {
    if (this.phase === "closed") throw new DocumentClosed(`${this.path} is closed`);
    if (changes.length === 0) return;
    this.state.type(changes);
    this.flush();
    this.changed();
  }

  /** Replace UTF-16 offsets `[start, end)` of `text` with `insert`. */
  replace(start: number, end: number, insert: string): void {
    this.edit([changeAt(this.state.text, start, end, insert)]);
  }

  insert(offset: number, insert: string): void {
    this.replace(offset, offset, insert);
  }

  delete(start: number, end: number): void {
    this.replace(start, end, "");
  }

  /** Send the gathered changes if nothing is in flight and the document is open. */
  private flush(): void {
    const connection = this.connection;
    if (this.phase !== "open" || this.resyncReason !== null || connection === null || !connection.isOpen) return;
    if (this.state.unacked > 0) return; // one edit in flight; the rest is gathered
    const edit = this.state.takeUnsent();
    if (edit !== null) this.sendEdit(connection, edit);
  }

  private sendEdit(connection: RpcConnection, edit: PendingEdit): void {
    const generation = this.generation;
    const params = {
      path: this.path,
      revision: edit.base,
      seq: edit.seq,
      contentChanges: edit.changes.map(changeJson),
    };
    connection.send("textDocument/didChange", params, (result, error) => {
      if (generation !== this.generation) return; // about a text a re-open has replaced
      this.onEditReply(result, error);
    });
  }

  private onEditReply(result: unknown, error: Error | null): void {
    if (error instanceof ConnectionLost) return; // kept in `pending`: resent on resume
    if (error instanceof RequestTimeout) {
      // The answer may still come, so the count of unacknowledged edits can no longer be
      // trusted on this connection: start a new one and resume, which is safe by seq.
      this.host.connectionFailed(`an edit of ${this.path} was not acknowledged in time`);
      return;
    }
    if (error !== null) {
      this.noteError(error);
      this.needResync(`the server refused an edit: ${error.message}`);
      return;
    }
    try {
      const ack = parseAck(result);
      if (this.state.onAck(ack.revision, ack.catchUp) && ack.catchUp.length > 0) {
        this.emit("change", { changes: ack.catchUp, revision: ack.revision, source: "ack" });
      }
    } catch (err) {
      this.noteError(err);
      this.needResync(`an acknowledgement did not fit: ${describe(err)}`);
      return;
    }
    this.flush();
    this.changed();
  }

  /** @internal A `textDocument/remoteChange` for this path, in the server's order. */
  onRemoteChange(params: RemoteChangeParams): void {
    if (this.phase !== "open" || this.resyncReason !== null) return;
    try {
      if (!this.state.onRemote(params.revision, params.contentChanges)) return;
    } catch (err) {
      if (!(err instanceof OutOfSync)) this.noteError(err);
      this.needResync(err instanceof OutOfSync ? err.message : `a remote change did not fit: ${describe(err)}`);
      return;
    }
    this.emit("change", {
      changes: params.contentChanges,
      revision: params.revision,
      source: "remote",
      memberId: params.memberId,
    });
    this.changed();
  }

  // -- re-opening ---------------------------------------------------------------------------

  /** Our text may differ from the server's: stop sending and re-open plainly. */
  private needResync(reason: string): void {
    if (this.resyncReason !== null || this.phase === "closed") return;
    this.resyncReason = reason;
    this.generation++;
    const connection = this.host.activeConnection;
    if (connection !== null && connection.isOpen) {
      void this.openPlain(connection);
    } else {
      this.changed(); // the reconnect re-opens it
    }
  }

  /** Re-open now and take the server's text; unacknowledged local edits are lost. */
  resync(reason = "asked to resync"): Promise<void> {
    if (this.phase === "closed") return Promise.reject(new DocumentClosed(`${this.path} is closed`));
    const connection = this.host.activeConnection;
    if (connection === null || !connection.isOpen) {
      this.resyncReason ??= reason;
      this.changed();
      return Promise.reject(new ConnectionLost("not connected"));
    }
    this.resyncReason ??= reason;
    return this.openPlain(connection);
  }

  /**
   * Send a plain `didOpen` and replace our text with the result. Resolves once the answer was
   * handled (whatever it was); errors are recorded, not thrown.
   */
  private openPlain(connection: RpcConnection): Promise<void> {
    const generation = ++this.generation;
    this.phase = "opening";
    this.connection = null;
    this.changed();
    return new Promise((resolve) => {
      connection.send("textDocument/didOpen", { path: this.path }, (result, error) => {
        if (generation === this.generation) this.onPlainOpen(connection, result, error);
        resolve();
      });
    });
  }

  private onPlainOpen(connection: RpcConnection, result: unknown, error: Error | null): void {
    if (error instanceof ConnectionLost) {
      this.detach();
      return;
    }
    if (error instanceof RequestTimeout) {
      this.detach();
      this.host.connectionFailed(`re-opening ${this.path} got no answer in time`);
      return;
    }
    if (error !== null) {
      this.noteError(error);
      if (error instanceof RpcError && error.code === DocumentNotFound) {
        this.markClosed("the file was deleted");
        return;
      }
      this.resyncReason ??= `re-opening failed: ${error.message}`;
      this.phase = "detached";
      this.retryReopen(error);
      this.changed();
      return;
    }
    let opened: OpenResult;
    try {
      opened = parseOpen(result);
    } catch (err) {
      this.noteError(err);
      this.phase = "detached";
      this.retryReopen(err);
      this.changed();
      return;
    }
    this.reopenFailures = 0;
    const lost = this.state.pending.length + (this.state.unsent.length > 0 ? 1 : 0);
    const reason = this.resyncReason;
    this.resyncReason = null;
    this.takeServerText(opened, connection);
    if (reason !== null || lost > 0) {
      this.lost += lost;
      this.emit("resync", { lostEdits: lost, reason: reason ?? "re-opened" });
    }
    this.changed();
  }

  /**
   * A plain re-open was refused (e.g. `RateLimited`): try again later on the same connection,
   * waiting longer each time, rather than leave the document stuck. A reconnect re-opens it
   * anyway, so the retry gives up when the document is no longer waiting for one.
   */
  private retryReopen(error: unknown): void {
    if (this.reopenTimer !== null) stopTimer(this.reopenTimer);
    this.reopenFailures += 1;
    const asked = error instanceof RpcError ? retryAfterMs(error.data) : 0;
    const delay = Math.min(30_000, Math.max(asked, 500 * 2 ** (this.reopenFailures - 1)));
    this.reopenTimer = startTimer(() => {
      this.reopenTimer = null;
      const connection = this.host.activeConnection;
      if (this.phase !== "detached" || this.resyncReason === null) return;
      if (connection !== null && connection.isOpen) void this.openPlain(connection);
    }, delay);
  }

  /**
   * @internal After a reconnect (§6.5): re-open at our revision, keeping our text, then
   * resend every kept edit exactly and send the unsent changes. A document that needs a resync
   * is re-opened plainly instead. Resolves once it is open again or has given up.
   *
   * §6.5 asks for a plain `didOpen` when nothing is kept; resuming instead changes nothing on
   * the wire that matters (with nothing to resend we take the head text from the answer, as a
   * plain open would), but it also keeps keystrokes typed while that `didOpen` is in flight,
   * which a plain open would have to throw away.
   */
  resumeOn(connection: RpcConnection): Promise<void> {
    if (this.phase === "closed") return Promise.resolve();
    if (this.resyncReason !== null) return this.openPlain(connection);
    const generation = ++this.generation;
    this.phase = "resuming";
    this.connection = null;
    this.changed();
    return new Promise((resolve) => {
      connection.send("textDocument/didOpen", { path: this.path, revision: this.state.revision }, (result, error) => {
        if (generation !== this.generation) {
          resolve();
          return;
        }
        if (error instanceof ConnectionLost) {
          this.detach();
          resolve();
        } else if (error instanceof RequestTimeout) {
          this.detach();
          this.host.connectionFailed(`resuming ${this.path} got no answer in time`);
          resolve();
        } else if (error !== null) {
          // Too far behind (or otherwise unplaceable): open plainly; kept edits are lost.
          this.noteError(error);
          if (error instanceof RpcError && error.code === DocumentNotFound) {
            this.markClosed("the file was deleted");
            resolve();
            return;
          }
          this.resyncReason = `could not resume at revision ${this.state.revision}: ${error.message}`;
          void this.openPlain(connection).then(resolve);
        } else {
          this.onResumed(connection, result);
          resolve();
        }
      });
    });
  }

  private onResumed(connection: RpcConnection, result: unknown): void {
    let opened: OpenResult;
    try {
      opened = parseOpen(result);
    } catch (err) {
      this.noteError(err);
      this.needResync(`a re-open answer did not fit: ${describe(err)}`);
      return;
    }
    if (this.state.pending.length === 0 && this.state.unsent.length === 0) {
      // Nothing of ours to place: the answer's text (the head) is ours from now on.
      this.takeServerText(opened, connection);
      this.changed();
      return;
    }
    // Our text stays at our revision plus our edits (§6.5); the acknowledgements catch us up.
    this.eol = opened.eol;
    this.state.lastSeq = Math.max(this.state.lastSeq, opened.lastSeq);
    this.phase = "open";
    this.connection = connection;
    // Sent in one go, so nothing comes between them; changes typed while the didOpen was in
    // flight were gathered in `unsent` and follow once the resent edits are answered.
    for (const edit of this.state.resume()) this.sendEdit(connection, edit);
    this.flush();
    this.changed();
  }

  /** Replace our text with the server's (a re-open's answer) and tell the editor the difference. */
  private takeServerText(opened: OpenResult, connection: RpcConnection): void {
    const before = this.state.text;
    this.state.reset(opened.text, opened.revision);
    // Continue after every edit the server has from this client id (§6.1).
    this.state.lastSeq = Math.max(this.state.lastSeq, opened.lastSeq);
    this.eol = opened.eol;
    this.phase = "open";
    this.connection = connection;
    const difference = differenceChange(before, opened.text);
    if (difference !== null) {
      this.emit("change", { changes: [difference], revision: opened.revision, source: "resync" });
    }
  }

  /** @internal The connection is gone: keep everything for the reconnect. */
  detach(): void {
    if (this.phase === "closed") return;
    this.generation++;
    this.phase = "detached";
    this.connection = null;
    this.changed();
  }

  // -- waiting and checking ---------------------------------------------------------------

  /** Whether every local change is acknowledged and the document is open and in step. */
  get isSettled(): boolean {
    return this.phase === "open" && this.resyncReason === null && this.state.inSyncWithServer;
  }

  /**
   * Resolve once every local change is acknowledged and no re-open is pending (waits through
   * reconnects). Rejects with `RequestTimeout` after `timeoutMs`, `DocumentClosed` if closed.
   */
  settled(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.phase === "closed") {
          reject(new DocumentClosed(`${this.path} was closed`));
          return true;
        }
        if (!this.isSettled) return false;
        resolve();
        return true;
      };
      if (check()) return;
      const timer = startTimer(() => {
        off();
        reject(new RequestTimeout(`${this.path} did not settle within ${timeoutMs} ms (${this.status})`));
      }, timeoutMs);
      const off = this.on("state", () => {
        if (check()) {
          off();
          stopTimer(timer);
        }
      });
    });
  }

  /**
   * Compare our text with the server's at our revision (`textDocument/checksum`), once settled.
   * Resolves with whether the SHA-256 of their UTF-8 bytes match.
   */
  async checksum(timeoutMs = 10_000): Promise<boolean> {
    await this.settled(timeoutMs);
    const connection = this.host.activeConnection;
    if (connection === null) throw new ConnectionLost("not connected");
    const { text, revision } = this.state;
    const answer = await connection.request("textDocument/checksum", { path: this.path, revision }, timeoutMs);
    return object(answer, "checksum")["sha256"] === (await sha256Hex(text));
  }

  // -- closing --------------------------------------------------------------------------------

  /** Close the document here (`textDocument/didClose`). Unacknowledged edits may be lost. */
  close(): void {
    if (this.phase === "closed") return;
    const connection = this.host.activeConnection;
    this.markClosed("closed");
    if (connection !== null && connection.isOpen) connection.notify("textDocument/didClose", { path: this.path });
  }

  /** @internal */
  markClosed(reason: string): void {
    if (this.phase === "closed") return;
    if (this.reopenTimer !== null) stopTimer(this.reopenTimer);
    this.reopenTimer = null;
    this.generation++;
    this.phase = "closed";
    this.connection = null;
    this.host.forget(this);
    this.changed();
    this.emit("closed", { reason });
  }

  /** @internal The file was renamed (by us or another member); the document follows it. */
  renamed(newPath: string): void {
    this.state.path = newPath;
    this.changed();
  }

  private noteError(error: unknown): void {
    const info: ErrorInfo =
      error instanceof RpcError
        ? { message: error.message, code: error.code, path: this.path, at: Date.now() }
        : { message: describe(error), path: this.path, at: Date.now() };
    this.error = info;
    this.host.recordError(info);
  }

  private changed(): void {
    this.emit("state", this.snapshot);
    this.host.documentStateChanged(this);
  }
}

/** `data.retryAfterMs` of a `RateLimited` error, or 0. */
function retryAfterMs(data: unknown): number {
  if (typeof data !== "object" || data === null) return 0;
  const value = (data as Record<string, unknown>)["retryAfterMs"];
  return typeof value === "number" && value > 0 ? value : 0;
}

function describe(error: unknown): string {
  if (error instanceof RpcError) return `${errorName(error.code)}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
