/**
 * The client side of the revision rule (protocol.md §6.3 and §6.5), with no I/O.
 *
 * A client holds its text, the revision it is at, and its own edits the server has not yet
 * answered. It applies local edits at once, and server edits only when the server computed
 * them knowing every one of its edits. It never transforms anything: when it cannot apply a
 * server edit it drops it, and the next acknowledgement brings it again, folded in.
 *
 * This mirrors server/codesphere/client/state.py (ClientDocument), which is the reference.
 */

import { applyChanges, normalizeChanges, type ContentChange } from "./positions.js";

/** A server edit skipped revisions although nothing of ours was pending: re-open the document. */
export class OutOfSync extends Error {
  override name = "OutOfSync";
}

/** One `textDocument/didChange` as sent; resent unchanged (same seq, base and changes) on resume. */
export interface PendingEdit {
  readonly seq: number;
  /** The `revision` the edit names: ours when it was sent. */
  readonly base: number;
  readonly changes: readonly ContentChange[];
}

export class ClientDocument {
  path: string;
  /** The server's text at `revision`, plus every local change since. Lines end with `\n`. */
  text: string;
  /** The last server revision applied to `text`. */
  revision: number;
  /**
   * Our edits since `revision` last moved, oldest first, acknowledged or not. All of them are
   * resent after a reconnect, because `text` holds them all and the server may not have
   * committed every one (it recognises the ones it has by seq).
   */
  pending: PendingEdit[] = [];
  /** How many of `pending` (the newest ones) await an acknowledgement. */
  unacked = 0;
  /** The seq of our latest edit of this document (the server's `lastSeq` on open). */
  lastSeq: number;
  /**
   * Changes applied to `text` but not sent yet: while one edit is in flight, keystrokes are
   * gathered here and go out as one edit when it is answered.
   */
  unsent: ContentChange[] = [];

  constructor(path: string, text: string, revision: number, lastSeq = 0) {
    this.path = path;
    this.text = text;
    this.revision = revision;
    this.lastSeq = lastSeq;
  }

  /** Whether every local change has been acknowledged: only then do server edits apply. */
  get inSyncWithServer(): boolean {
    return this.unacked === 0 && this.unsent.length === 0;
  }

  /**
   * Apply the user's changes now and keep them for the next `takeUnsent`. Line ends are
   * normalised to `\n` here, at the edge. Throws (changing nothing) if a change does not fit.
   */
  type(changes: readonly ContentChange[]): void {
    const normalized = normalizeChanges(changes);
    this.text = applyChanges(this.text, normalized);
    this.unsent.push(...normalized);
  }

  /** The edit that sends every unsent change, now counted as unacknowledged; null if none. */
  takeUnsent(): PendingEdit | null {
    return this.unsent.length > 0 ? this.sendUnsent() : null;
  }

  /** Apply the user's changes and return the edit that sends them (with any unsent ones). */
  localEdit(changes: readonly ContentChange[]): PendingEdit {
    this.type(changes);
    return this.sendUnsent();
  }

  private sendUnsent(): PendingEdit {
    this.lastSeq += 1;
    const edit: PendingEdit = { seq: this.lastSeq, base: this.revision, changes: this.unsent };
    this.unsent = [];
    this.pending.push(edit);
    this.unacked += 1;
    return edit;
  }

  /**
   * Our oldest unacknowledged edit was committed and the head is at `revision`. Returns
   * whether `catchUp` was applied (only when nothing else of ours is unacknowledged or unsent;
   * otherwise it is dropped, since the next acknowledgement carries it again). Throws if the
   * catch-up does not fit our text, leaving the text as it was.
   */
  onAck(revision: number, catchUp: readonly ContentChange[]): boolean {
    if (this.unacked <= 0) throw new OutOfSync("an acknowledgement with no edit awaiting one");
    this.unacked -= 1;
    if (!this.inSyncWithServer) return false;
    const text = applyChanges(this.text, catchUp);
    this.text = text;
    this.revision = revision;
    this.pending = [];
    return true;
  }

  /**
   * A server edit that produces `revision`. Returns whether it was applied: it is dropped
   * while anything of ours is pending (the next acknowledgement folds it in) or when we are
   * already past it. Throws `OutOfSync` when it skips revisions although nothing is pending.
   */
  onRemote(revision: number, changes: readonly ContentChange[]): boolean {
    if (!this.inSyncWithServer || revision <= this.revision) return false;
    if (revision !== this.revision + 1) {
      throw new OutOfSync(`got revision ${revision} at revision ${this.revision}`);
    }
    this.text = applyChanges(this.text, changes);
    this.revision = revision;
    return true;
  }

  /** Start over from the server's text (a resync); pending and unsent edits are abandoned. */
  reset(text: string, revision: number): void {
    this.text = text;
    this.revision = revision;
    this.pending = [];
    this.unacked = 0;
    this.unsent = [];
  }

  /** After a reconnect: every edit to resend, in order; all count as unacknowledged again. */
  resume(): PendingEdit[] {
    this.unacked = this.pending.length;
    return [...this.pending];
  }
}
