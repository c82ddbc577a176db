/**
 * Positions and content changes (protocol.md §3) for JavaScript strings.
 *
 * The client negotiates the "utf-16" position encoding, in which a `character` counts UTF-16
 * code units: exactly what a JS string index counts. So a position maps to a string offset by
 * finding its line and adding `character`, with no transcoding.
 *
 * Positions are never clamped: a position past the end of its line or of the text, or one that
 * falls between the two halves of a surrogate pair, means our text differs from the one the
 * position was made for, and guessing would corrupt the document. Such positions throw
 * `PositionError` and leave everything unchanged.
 */

/** A zero-based line and a UTF-16 code-unit column within it. */
export interface Position {
  readonly line: number;
  readonly character: number;
}

/** From `start` (inclusive) to `end` (exclusive). */
export interface Range {
  readonly start: Position;
  readonly end: Position;
}

/**
 * Replace `range` with `text`; without a range, replace the whole document.
 * The same shape as LSP's `TextDocumentContentChangeEvent`.
 */
export interface ContentChange {
  readonly range?: Range;
  readonly text: string;
}

/** A position that does not exist in the text it was applied to. */
export class PositionError extends Error {
  override name = "PositionError";
}

/** A change the protocol forbids whatever the text: a reversed range, `\r`, a lone surrogate. */
export class InvalidChangeError extends Error {
  override name = "InvalidChangeError";
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** Whether `offset` falls between the two halves of a surrogate pair of `text`. */
export function splitsSurrogatePair(text: string, offset: number): boolean {
  return (
    offset > 0 &&
    offset < text.length &&
    isHighSurrogate(text.charCodeAt(offset - 1)) &&
    isLowSurrogate(text.charCodeAt(offset))
  );
}

/** Whether `text` holds a surrogate without its partner (not valid Unicode, refused by the server). */
export function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (isHighSurrogate(unit)) {
      if (i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
        i++; // a well-formed pair
        continue;
      }
      return true;
    }
    if (isLowSurrogate(unit)) return true;
  }
  return false;
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PositionError(`${what} must be a non-negative integer, got ${String(value)}`);
  }
}

/** The offset in `text` of `position`; throws `PositionError` if there is no such position. */
export function offsetAt(text: string, position: Position): number {
  checkCount(position.line, "line");
  checkCount(position.character, "character");
  let lineStart = 0;
  for (let line = 0; line < position.line; line++) {
    const newline = text.indexOf("\n", lineStart);
    if (newline < 0) {
      throw new PositionError(`line ${position.line} is past the last line (${line})`);
    }
    lineStart = newline + 1;
  }
  const newline = text.indexOf("\n", lineStart);
  const lineLength = (newline < 0 ? text.length : newline) - lineStart;
  if (position.character > lineLength) {
    throw new PositionError(
      `character ${position.character} is past the end of line ${position.line} (${lineLength})`,
    );
  }
  const offset = lineStart + position.character;
  if (splitsSurrogatePair(text, offset)) {
    throw new PositionError(
      `character ${position.character} of line ${position.line} splits a surrogate pair`,
    );
  }
  return offset;
}

/** The position of `offset` in `text`; throws `PositionError` if it is outside or splits a pair. */
export function positionAt(text: string, offset: number): Position {
  checkCount(offset, "offset");
  if (offset > text.length) {
    throw new PositionError(`offset ${offset} is past the end of the text (${text.length})`);
  }
  if (splitsSurrogatePair(text, offset)) {
    throw new PositionError(`offset ${offset} splits a surrogate pair`);
  }
  let line = 0;
  let lineStart = 0;
  for (;;) {
    const newline = text.indexOf("\n", lineStart);
    if (newline < 0 || newline >= offset) break;
    line++;
    lineStart = newline + 1;
  }
  return { line, character: offset - lineStart };
}

/** The `[start, end)` offsets of `range` in `text`. */
export function rangeOffsets(text: string, range: Range): [number, number] {
  const start = offsetAt(text, range.start);
  const end = offsetAt(text, range.end);
  if (end < start) {
    throw new InvalidChangeError(
      `range end ${describe(range.end)} is before its start ${describe(range.start)}`,
    );
  }
  return [start, end];
}

function describe(position: Position): string {
  return `${position.line}:${position.character}`;
}

/** The change that replaces offsets `[start, end)` of `text` with `insert`. */
export function changeAt(text: string, start: number, end: number, insert: string): ContentChange {
  if (end < start) throw new InvalidChangeError(`end ${end} is before start ${start}`);
  const from = positionAt(text, start);
  const to = end === start ? from : positionAt(text, end);
  return { range: { start: from, end: to }, text: insert };
}

/**
 * Apply `changes` in order, each range referring to the text as the previous changes left it
 * (as LSP's `didChange`). Returns the new text; throws (and changes nothing, strings being
 * immutable) if any change does not fit.
 */
export function applyChanges(text: string, changes: readonly ContentChange[]): string {
  let result = text;
  for (const change of changes) {
    if (change.range === undefined) {
      result = change.text;
      continue;
    }
    const [start, end] = rangeOffsets(result, change.range);
    result = result.slice(0, start) + change.text + result.slice(end);
  }
  return result;
}

/**
 * One change that turns `before` into `after`: their common prefix and suffix are kept and
 * the middle replaced. Used when a re-open replaces the whole text, so an editor can apply
 * the difference instead of resetting its buffer (and the user's cursor with it). This is a
 * plain diff of two known texts, not a transformation of edits.
 */
export function differenceChange(before: string, after: string): ContentChange | null {
  if (before === after) return null;
  const limit = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < limit && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix < limit - prefix &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  // Never cut a surrogate pair: move the cut points outwards to whole characters.
  if (splitsSurrogatePair(before, prefix) || splitsSurrogatePair(after, prefix)) prefix--;
  if (
    splitsSurrogatePair(before, before.length - suffix) ||
    splitsSurrogatePair(after, after.length - suffix)
  ) {
    suffix--;
  }
  return changeAt(before, prefix, before.length - suffix, after.slice(prefix, after.length - suffix));
}

/** `text` with every `\r\n` and lone `\r` turned into `\n`, the protocol's only line break. */
export function normalizeEol(text: string): string {
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}

/**
 * Local input made fit to send: line ends normalised to `\n` (editors on Windows produce
 * `\r\n`; the server would refuse any `\r`). Throws `InvalidChangeError` on a lone surrogate,
 * which the server would refuse too (and which no text can be rendered from).
 */
export function normalizeChanges(changes: readonly ContentChange[]): ContentChange[] {
  return changes.map((change) => {
    const text = normalizeEol(change.text);
    if (hasLoneSurrogate(text)) {
      throw new InvalidChangeError("the inserted text holds a lone surrogate");
    }
    if (text === change.text) return change;
    return change.range === undefined ? { text } : { range: change.range, text };
  });
}
