// A stand-in for an editor's buffer: it applies the user's edits itself and the document's
// `change` events as an editor would, and records whenever it differs from the document.

import { applyChanges, changeAt, type RemoteDocument } from "../../src/core/index.js";

export class ShadowEditor {
  text: string;
  readonly mismatches: string[] = [];
  private readonly doc: RemoteDocument;

  constructor(doc: RemoteDocument) {
    this.doc = doc;
    this.text = doc.text;
    doc.on("change", (event) => {
      this.text = applyChanges(this.text, event.changes);
      this.check(`after a ${event.source} change to revision ${event.revision}`);
    });
  }

  /** The user replaces UTF-16 offsets [start, end) with `insert`: the buffer first, then the document. */
  type(start: number, end: number, insert: string): void {
    const change = changeAt(this.text, start, end, insert);
    this.text = applyChanges(this.text, [change]);
    this.doc.edit([change]);
    this.check("after a local edit");
  }

  private check(when: string): void {
    if (this.text !== this.doc.text && this.mismatches.length < 5) {
      this.mismatches.push(`${when}: buffer ${JSON.stringify(this.text.slice(0, 60))} != document ${JSON.stringify(this.doc.text.slice(0, 60))}`);
    }
  }
}
