// The revision rule (protocol.md §6.3, §6.5) against scripted acknowledgements and remote
// changes, with no server: what a client applies, what it drops, and what it resends.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ClientDocument, OutOfSync, type ContentChange } from "../src/core/index.js";

const at = (line: number, character: number) => ({ line, character });
const insert = (line: number, character: number, text: string): ContentChange => ({
  range: { start: at(line, character), end: at(line, character) },
  text,
});

describe("the revision rule", () => {
  test("a local edit applies at once and is sent with the current revision and the next seq", () => {
    const doc = new ClientDocument("a.txt", "hello\n", 7, 3);
    const edit = doc.localEdit([insert(0, 5, "!")]);
    assert.equal(doc.text, "hello!\n");
    assert.deepEqual(edit, { seq: 4, base: 7, changes: [insert(0, 5, "!")] });
    assert.equal(doc.unacked, 1);
    assert.equal(doc.pending.length, 1);
    assert.equal(doc.inSyncWithServer, false);
  });

  test("an acknowledgement with nothing else pending applies its catch-up and moves the revision", () => {
    const doc = new ClientDocument("a.txt", "ab", 1);
    doc.localEdit([insert(0, 2, "c")]);
    assert.equal(doc.onAck(3, [insert(0, 0, ">")]), true);
    assert.equal(doc.text, ">abc");
    assert.equal(doc.revision, 3);
    assert.equal(doc.unacked, 0);
    assert.deepEqual(doc.pending, []);
  });

  test("with two edits in flight the first catch-up is dropped and the second applied", () => {
    const doc = new ClientDocument("a.txt", "", 0);
    const first = doc.localEdit([insert(0, 0, "a")]);
    const second = doc.localEdit([insert(0, 1, "b")]);
    assert.equal(second.base, 0, "the revision does not move while edits are unacknowledged");
    assert.equal(second.seq, first.seq + 1);
    assert.equal(doc.onAck(2, [insert(0, 0, "X")]), false, "dropped: another edit is unacknowledged");
    assert.equal(doc.text, "ab");
    assert.equal(doc.revision, 0);
    assert.equal(doc.pending.length, 2, "kept for a resume until the revision moves");
    // The second acknowledgement carries everything again, folded in.
    assert.equal(doc.onAck(3, [insert(0, 0, "X")]), true);
    assert.equal(doc.text, "Xab");
    assert.equal(doc.revision, 3);
    assert.deepEqual(doc.pending, []);
  });

  test("keystrokes typed while one edit is in flight are gathered into the next edit", () => {
    const doc = new ClientDocument("a.txt", "", 5);
    doc.localEdit([insert(0, 0, "h")]);
    doc.type([insert(0, 1, "e")]);
    doc.type([insert(0, 2, "y")]);
    assert.equal(doc.text, "hey");
    assert.equal(doc.unacked, 1);
    assert.equal(doc.unsent.length, 2);
    // The answer comes while changes wait to be sent: its catch-up is dropped.
    assert.equal(doc.onAck(7, [insert(0, 0, "!")]), false);
    assert.equal(doc.revision, 5);
    const next = doc.takeUnsent();
    assert.deepEqual(next, { seq: 2, base: 5, changes: [insert(0, 1, "e"), insert(0, 2, "y")] });
    assert.equal(doc.takeUnsent(), null);
    assert.equal(doc.onAck(8, [insert(0, 0, "!")]), true);
    assert.equal(doc.text, "!hey");
    assert.equal(doc.revision, 8);
  });

  test("remote changes apply only in sync and in order", () => {
    const doc = new ClientDocument("a.txt", "x", 2);
    assert.equal(doc.onRemote(3, [insert(0, 1, "y")]), true);
    assert.equal(doc.text, "xy");
    assert.equal(doc.onRemote(3, [insert(0, 0, "?")]), false, "already applied");
    assert.equal(doc.onRemote(2, [insert(0, 0, "?")]), false, "older");
    assert.equal(doc.text, "xy");
    assert.equal(doc.revision, 3);
  });

  test("remote changes are dropped while an edit is unacknowledged or unsent", () => {
    const doc = new ClientDocument("a.txt", "x", 2);
    doc.localEdit([insert(0, 1, "1")]);
    assert.equal(doc.onRemote(3, [insert(0, 0, "R")]), false);
    assert.equal(doc.onRemote(4, [insert(0, 0, "S")]), false, "no gap check while unacknowledged");
    assert.equal(doc.text, "x1");
    doc.onAck(5, [insert(0, 0, "RS")]);
    assert.equal(doc.text, "RSx1");
    doc.type([insert(0, 4, "2")]); // typed, not yet sent
    assert.equal(doc.onRemote(6, [insert(0, 0, "T")]), false);
    assert.equal(doc.text, "RSx12");
  });

  test("a gap while in sync is OutOfSync", () => {
    const doc = new ClientDocument("a.txt", "x", 2);
    assert.throws(() => doc.onRemote(4, [insert(0, 0, "?")]), OutOfSync);
    assert.equal(doc.text, "x");
    assert.equal(doc.revision, 2);
  });

  test("an acknowledgement nobody waits for is OutOfSync", () => {
    const doc = new ClientDocument("a.txt", "x", 2);
    assert.throws(() => doc.onAck(3, []), OutOfSync);
  });

  test("resume resends every kept edit exactly, acknowledged or not", () => {
    const doc = new ClientDocument("a.txt", "", 10, 4);
    const e1 = doc.localEdit([insert(0, 0, "a")]);
    const e2 = doc.localEdit([insert(0, 1, "b")]);
    doc.onAck(11, []); // e1 acknowledged, catch-up dropped: e2 is still out
    doc.type([insert(0, 2, "c")]); // typed while the connection was down
    assert.equal(doc.unacked, 1);
    const resent = doc.resume();
    assert.deepEqual(resent, [e1, e2]);
    assert.equal(doc.unacked, 2, "all of them are unacknowledged again");
    assert.equal(doc.revision, 10);
    const last = doc.takeUnsent();
    assert.deepEqual(last, { seq: 7, base: 10, changes: [insert(0, 2, "c")] });
  });

  test("reset abandons everything local", () => {
    const doc = new ClientDocument("a.txt", "x", 1);
    doc.localEdit([insert(0, 0, "a")]);
    doc.type([insert(0, 0, "b")]);
    doc.reset("server", 9);
    assert.equal(doc.text, "server");
    assert.equal(doc.revision, 9);
    assert.equal(doc.unacked, 0);
    assert.deepEqual(doc.pending, []);
    assert.deepEqual(doc.unsent, []);
    assert.equal(doc.inSyncWithServer, true);
  });

  test("local input is normalised and a change that does not fit changes nothing", () => {
    const doc = new ClientDocument("a.txt", "ab", 0);
    doc.type([insert(0, 1, "\r\n")]);
    assert.equal(doc.text, "a\nb");
    assert.throws(() => doc.type([insert(5, 0, "x")]));
    assert.equal(doc.text, "a\nb");
    assert.equal(doc.unsent.length, 1);
  });

  test("the worked session of protocol.md §11, both sides", () => {
    // Ada: "hé\n" at 3, appends "!" after é; her edit is committed first as revision 4.
    const ada = new ClientDocument("hi.txt", "hé\n", 3);
    const adaEdit = ada.localEdit([insert(0, 2, "!")]);
    assert.deepEqual([adaEdit.base, adaEdit.seq], [3, 1]);
    // Ben inserts 😀 at the start at the same time.
    const ben = new ClientDocument("hi.txt", "hé\n", 3);
    ben.localEdit([insert(0, 0, "😀")]);
    assert.equal(ada.onAck(4, []), true);
    assert.equal(ada.revision, 4);
    // Ben still waits for his answer, so he drops revision 4 ...
    assert.equal(ben.onRemote(4, [insert(0, 3, "!")]), false);
    // ... and gets it with his acknowledgement, expressed on his own text (utf-16 here).
    assert.equal(ben.onAck(5, [insert(0, 4, "!")]), true);
    assert.equal(ada.onRemote(5, [insert(0, 0, "😀")]), true);
    assert.equal(ada.text, "😀hé!\n");
    assert.equal(ben.text, "😀hé!\n");
    assert.equal(ada.revision, 5);
    assert.equal(ben.revision, 5);
  });
});
