// Positions and content changes for JS strings (UTF-16), with no server: emoji take two code
// units, CJK one, combining marks are their own code units; nothing is ever clamped.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  applyChanges,
  changeAt,
  differenceChange,
  hasLoneSurrogate,
  InvalidChangeError,
  normalizeChanges,
  normalizeEol,
  offsetAt,
  positionAt,
  PositionError,
  type ContentChange,
} from "../src/core/index.js";

const pos = (line: number, character: number) => ({ line, character });
const range = (l1: number, c1: number, l2: number, c2: number) => ({ start: pos(l1, c1), end: pos(l2, c2) });

describe("positions", () => {
  test("the protocol's example: in a😀b, b is at utf-16 character 3", () => {
    assert.equal(offsetAt("a😀b", pos(0, 3)), 3);
    assert.equal("a😀b"[offsetAt("a😀b", pos(0, 3))], "b");
    assert.deepEqual(positionAt("a😀b", 3), pos(0, 3));
  });

  test("emoji, CJK and combining marks on several lines", () => {
    // "e\u0301" is e + a combining acute: two code units, two characters for the protocol.
    const text = "😀字\ne\u0301x\n\n👩‍💻end";
    assert.equal(offsetAt(text, pos(0, 0)), 0);
    assert.equal(offsetAt(text, pos(0, 2)), 2); // after the emoji
    assert.equal(offsetAt(text, pos(0, 3)), 3); // after 字: the end of line 0
    assert.equal(offsetAt(text, pos(1, 1)), 5); // between e and its combining mark
    assert.equal(offsetAt(text, pos(1, 3)), 7);
    assert.equal(offsetAt(text, pos(2, 0)), 8); // the empty line
    assert.equal(offsetAt(text, pos(3, 5)), 14); // after the ZWJ sequence (2 + 1 + 2 units)
    assert.equal(offsetAt(text, pos(3, 8)), text.length);
    for (let offset = 0; offset <= text.length; offset++) {
      if (offset === 1 || offset === 10 || offset === 13) continue; // inside a surrogate pair
      assert.equal(offsetAt(text, positionAt(text, offset)), offset, `offset ${offset}`);
    }
  });

  test("out-of-range lines and characters are errors, never clamped", () => {
    const text = "ab\ncd";
    assert.throws(() => offsetAt(text, pos(2, 0)), PositionError);
    assert.throws(() => offsetAt(text, pos(0, 3)), PositionError); // past the end of line 0
    assert.throws(() => offsetAt(text, pos(1, 3)), PositionError);
    assert.throws(() => offsetAt(text, pos(-1, 0)), PositionError);
    assert.throws(() => offsetAt(text, pos(0, 0.5)), PositionError);
    assert.throws(() => positionAt(text, 6), PositionError);
    assert.throws(() => positionAt(text, -1), PositionError);
    assert.equal(offsetAt("", pos(0, 0)), 0);
    assert.throws(() => offsetAt("", pos(1, 0)), PositionError);
  });

  test("a position inside a surrogate pair is an error", () => {
    assert.throws(() => offsetAt("a😀b", pos(0, 2)), PositionError);
    assert.throws(() => positionAt("a😀b", 2), PositionError);
    assert.throws(() => applyChanges("😀", [{ range: range(0, 1, 0, 2), text: "" }]), PositionError);
  });

  test("changes apply in order, each on the text the previous one left", () => {
    const changes: ContentChange[] = [
      { range: range(0, 0, 0, 0), text: "😀" }, // "😀hé\n"
      { range: range(0, 4, 0, 4), text: "!" }, // after é, counted on the new text
      { range: range(1, 0, 1, 0), text: "字\n" },
      { range: range(0, 0, 0, 2), text: "" }, // the emoji again
    ];
    assert.equal(applyChanges("hé\n", changes), "hé!\n字\n");
  });

  test("a change without a range replaces the whole text", () => {
    assert.equal(applyChanges("old", [{ text: "new" }, { range: range(0, 3, 0, 3), text: "er" }]), "newer");
  });

  test("a reversed range is refused; a failed list changes nothing", () => {
    assert.throws(() => applyChanges("abc", [{ range: range(0, 2, 0, 1), text: "" }]), InvalidChangeError);
    const text = "abc";
    assert.throws(() => applyChanges(text, [{ range: range(0, 0, 0, 0), text: "x" }, { range: range(5, 0, 5, 0), text: "" }]));
    assert.equal(text, "abc");
  });

  test("CRLF and CR in local input become LF", () => {
    assert.equal(normalizeEol("a\r\nb\rc\n\r\n"), "a\nb\nc\n\n");
    const [change] = normalizeChanges([{ range: range(0, 0, 0, 0), text: "x\r\ny\r" }]);
    assert.deepEqual(change, { range: range(0, 0, 0, 0), text: "x\ny\n" });
    const same: ContentChange = { text: "plain" };
    assert.equal(normalizeChanges([same])[0], same);
  });

  test("lone surrogates in local input are refused", () => {
    assert.equal(hasLoneSurrogate("ok😀"), false);
    assert.equal(hasLoneSurrogate("\ud83d"), true);
    assert.equal(hasLoneSurrogate("a\ude00b"), true);
    assert.throws(() => normalizeChanges([{ text: "bad\ud800" }]), InvalidChangeError);
  });

  test("changeAt makes a change from offsets", () => {
    const text = "a😀\nb";
    assert.deepEqual(changeAt(text, 3, 5, "X"), { range: range(0, 3, 1, 1), text: "X" });
    assert.equal(applyChanges(text, [changeAt(text, 3, 5, "X")]), "a😀X");
    assert.throws(() => changeAt(text, 2, 2, "x"), PositionError);
  });

  test("differenceChange turns one text into another and never cuts a surrogate pair", () => {
    const cases: [string, string][] = [
      ["", "abc"],
      ["abc", ""],
      ["hello world", "hello brave world"],
      ["😀a", "😃a"], // same high surrogate, different low one
      ["a😀", "a😀😀"],
      ["x\ny\nz", "x\nz"],
      ["same", "same"],
    ];
    for (const [before, after] of cases) {
      const change = differenceChange(before, after);
      if (before === after) {
        assert.equal(change, null);
        continue;
      }
      assert.ok(change !== null);
      assert.equal(applyChanges(before, [change]), after, `${before} -> ${after}`);
    }
  });
});
