/**
 * Keeps one Monaco model and one RemoteDocument the same text.
 *
 * Local edits go to the core as they happen. Monaco reports an edit's changes with ranges in
 * the text before the edit, in descending order (pieceTreeTextBuffer applies them bottom-up):
 * applied one after the other, each leaves the ranges of the next untouched, which is exactly
 * the sequential reading of LSP's `contentChanges` (protocol §3). So they are passed on in the
 * order given, converting 1-based lines and columns to 0-based positions. Columns already count
 * UTF-16 code units, the protocol's negotiated encoding.
 *
 * Server changes (`change` events) are applied with `pushEditOperations` and no undo stop while
 * a flag keeps them from being echoed back. `applyEdits` would leave them out of the undo
 * stack, and Monaco's undo replays stored offsets: after someone else's edit those offsets
 * point at the wrong text. Recorded edits keep undo consistent (at the price that an undo may
 * take back a concurrent remote edit merged into the same undo step). Cursors keep their place:
 * Monaco re-reads them from its tracked ranges after a change it did not make itself.
 *
 * The model must use `\n` (`EndOfLineSequence.LF`), the protocol's only line break, or its line
 * and column numbers would not be the document's. And it must change only by the edits given
 * to it: with `trimAutoWhitespace` on, `pushEditOperations` adds edits of its own that remove
 * the indentation Enter auto-inserted on other lines, and those would go unseen (they happen
 * while echo is suppressed) and leave the model different from the document. So it is off.
 */

import * as monaco from "monaco-editor";

import { DocumentClosed, differenceChange, type ContentChange, type RemoteDocument } from "../core/index.js";

export interface BindingHooks {
  /** The user changed the text (the follow mode stops on it). */
  onLocalEdit(): void;
  /** The model had drifted from the document and was reset to it (a bug somewhere: say so). */
  onRepaired(reason: string): void;
}

/** How long after a change the full texts are compared, as a safety net. */
const VERIFY_AFTER_MS = 1000;

export class EditorBinding {
  readonly model: monaco.editor.ITextModel;
  readonly doc: RemoteDocument;
  private readonly hooks: BindingHooks;
  private applyingRemote = false;
  private readonly disposables: monaco.IDisposable[] = [];
  private readonly offChange: () => void;
  private verifyTimer: number | undefined;

  constructor(model: monaco.editor.ITextModel, doc: RemoteDocument, hooks: BindingHooks) {
    this.model = model;
    this.doc = doc;
    this.hooks = hooks;
    model.setEOL(monaco.editor.EndOfLineSequence.LF);
    model.updateOptions({ trimAutoWhitespace: false });
    if (model.getValue() !== doc.text) this.replaceWith(doc.text);
    this.disposables.push(model.onDidChangeContent((event) => this.onModelChange(event)));
    this.offChange = doc.on("change", ({ changes }) => this.applyServerChanges(changes));
  }

  dispose(): void {
    window.clearTimeout(this.verifyTimer);
    this.offChange();
    for (const d of this.disposables) d.dispose();
  }

  private onModelChange(event: monaco.editor.IModelContentChangedEvent): void {
    if (this.applyingRemote) return;
    if (event.eol !== "\n") {
      // Something switched the model to CRLF: switch back (the text in `\n` terms is the same).
      this.withoutEcho(() => this.model.setEOL(monaco.editor.EndOfLineSequence.LF));
    }
    if (event.changes.length === 0) return;
    const changes: ContentChange[] = event.changes.map((change) => ({
      range: {
        start: { line: change.range.startLineNumber - 1, character: change.range.startColumn - 1 },
        end: { line: change.range.endLineNumber - 1, character: change.range.endColumn - 1 },
      },
      text: change.text,
    }));
    try {
      this.doc.edit(changes);
    } catch (error) {
      if (error instanceof DocumentClosed) return; // the tab is going away
      // The change did not fit the document's text, so the two differ: the document is the
      // one in step with the server, so the model follows it.
      this.repair(`a local edit did not fit: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.scheduleVerify();
    this.hooks.onLocalEdit();
  }

  /** Apply server changes in order, each range relative to the text the previous one left. */
  private applyServerChanges(changes: readonly ContentChange[]): void {
    try {
      this.withoutEcho(() => {
        for (const change of changes) {
          const range =
            change.range === undefined
              ? this.model.getFullModelRange()
              : new monaco.Range(
                  change.range.start.line + 1,
                  change.range.start.character + 1,
                  change.range.end.line + 1,
                  change.range.end.character + 1,
                );
          this.model.pushEditOperations(null, [{ range, text: change.text }], () => null);
        }
      });
    } catch (error) {
      this.repair(`a server change did not apply: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    // Cheap check now (lengths), full one a little later.
    if (this.model.getValueLength() !== this.doc.text.length) {
      this.repair("the editor's text length differs from the document's after a server change");
      return;
    }
    this.scheduleVerify();
  }

  private withoutEcho(fn: () => void): void {
    const before = this.applyingRemote;
    this.applyingRemote = true;
    try {
      fn();
    } finally {
      this.applyingRemote = before;
    }
  }

  private scheduleVerify(): void {
    if (this.verifyTimer !== undefined) return;
    this.verifyTimer = window.setTimeout(() => {
      this.verifyTimer = undefined;
      if (this.model.isDisposed() || this.doc.isClosed) return;
      if (this.model.getValue() !== this.doc.text) this.repair("the editor's text differs from the document's");
    }, VERIFY_AFTER_MS);
  }

  /** Make the model the document's text again, by the smallest single replacement. */
  private repair(reason: string): void {
    this.replaceWith(this.doc.text);
    this.hooks.onRepaired(reason);
  }

  private replaceWith(text: string): void {
    const difference = differenceChange(this.model.getValue(), text);
    if (difference === null || difference.range === undefined) return;
    const { start, end } = difference.range;
    this.withoutEcho(() =>
      this.model.pushEditOperations(
        null,
        [{ range: new monaco.Range(start.line + 1, start.character + 1, end.line + 1, end.character + 1), text: difference.text }],
        () => null,
      ),
    );
  }
}
