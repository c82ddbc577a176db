"""LSP-style content changes, converted to and from operations in one place.

A client speaks in ``contentChanges`` as LSP's ``textDocument/didChange`` does: a list of
``{range, text}`` replacements in its negotiated encoding, applied one after the other (each
range refers to the text as the previous changes left it); a change without a range replaces the
whole text. The server speaks to clients the same way, so a client only ever applies
replacements and never transforms anything.
"""

from __future__ import annotations

from typing import NamedTuple

from codesphere.core.errors import InvalidChange
from codesphere.core.operation import TextOperation
from codesphere.core.positions import Encoding, Position, encoded_length, offset_at


class ContentChange(NamedTuple):
    """Replace ``range`` (``None``: the whole text) with ``text``.

    A named tuple rather than a dataclass: several are built for every edit and every
    delivery, and a tuple is the cheapest immutable record Python has.
    """

    range: tuple[Position, Position] | None
    text: str


def check_text(text: str) -> None:
    """Refuse text that canonical documents cannot hold.

    Raises:
        InvalidChange: ``text`` has a carriage return (clients send ``\\n`` line ends and keep
            the document's EOL style at their edge) or a lone surrogate (not Unicode text).
    """
    if "\r" in text:
        raise InvalidChange("text must use \\n line ends (found \\r)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidChange("text contains a lone surrogate") from None


def changes_to_op(
    view: str, changes: list[ContentChange], encoding: Encoding
) -> tuple[TextOperation, str]:
    """Turn a client's changes, made on its ``view`` of the text, into one operation.

    Returns:
        The operation and the client's view after it.

    Raises:
        PositionError: a position does not exist in the text it refers to.
        InvalidChange: a range ends before it starts, or the text is not allowed.
    """
    op: TextOperation | None = None
    text = view
    for change in changes:
        check_text(change.text)
        if change.range is None:
            start, end = 0, len(text)
        else:
            (sl, sc), (el, ec) = change.range
            start = offset_at(text, sl, sc, encoding)
            end = start if (el, ec) == (sl, sc) else offset_at(text, el, ec, encoding)
            if end < start:
                raise InvalidChange("range end is before its start")
        step = TextOperation.splice(len(text), start, text[start:end], change.text)
        text = text[:start] + change.text + text[end:]
        op = step if op is None else op.compose(step)
    if op is None:
        op = TextOperation.identity(len(view))
    return op, text


class LineSweep:
    """Positions of offsets into one text, asked in increasing order.

    Each newline is counted once however many offsets are asked, so converting all the splices
    of an operation costs one pass over the text. In an all-ASCII text (most code) a
    position's character is its distance from the line start in every encoding, so nothing is
    sliced or measured.
    """

    __slots__ = ("ascii", "line", "line_start", "scanned", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.ascii = text.isascii()
        self.line = 0
        self.line_start = 0
        self.scanned = 0

    def position(self, offset: int, encoding: Encoding) -> Position:
        """The position of ``offset`` in ``encoding``."""
        text = self.text
        # Looking for the last newline first runs at memory speed (memrchr) and, on a long
        # line, is all there is to do; counting newlines one by one is slower and only needed
        # when the stretch has one.
        last = text.rfind("\n", self.scanned, offset)
        if last >= 0:
            self.line += text.count("\n", self.scanned, last + 1)
            self.line_start = last + 1
        self.scanned = offset
        if self.ascii:
            return self.line, offset - self.line_start
        return self.line, encoded_length(text[self.line_start : offset], encoding)


def op_to_changes(op: TextOperation, base: str, encoding: Encoding) -> list[ContentChange]:
    """Express ``op`` (which applies to ``base``) as content changes in ``encoding``.

    The changes are listed from the end of the text to its start, so each one's range is valid
    both in ``base`` and in the text the previous changes produced.
    """
    out: list[ContentChange] = []
    sweep = LineSweep(base)
    for offset, deleted, inserted in op.splices():
        start = sweep.position(offset, encoding)
        end = sweep.position(offset + len(deleted), encoding) if deleted else start
        out.append(ContentChange((start, end), inserted))
    out.reverse()
    return out


def apply_changes(text: str, changes: list[ContentChange], encoding: Encoding) -> str:
    """Apply content changes to ``text`` the way a client does: splice each in turn.

    Raises:
        PositionError, InvalidChange: as :func:`changes_to_op` does.
    """
    for change in changes:
        check_text(change.text)
        if change.range is None:
            text = change.text
            continue
        (sl, sc), (el, ec) = change.range
        start = offset_at(text, sl, sc, encoding)
        end = start if (el, ec) == (sl, sc) else offset_at(text, el, ec, encoding)
        if end < start:
            raise InvalidChange("range end is before its start")
        text = text[:start] + change.text + text[end:]
    return text
