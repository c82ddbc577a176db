"""Positions in the three encodings a client may negotiate, converted in one place.

Canonical text is a Python ``str`` (Unicode code points) whose only line break is ``\\n``. A
client addresses it as LSP does, with a zero-based ``(line, character)`` pair in which
``character`` counts the units of the negotiated encoding:

* ``utf-32``: code points (Python string indices);
* ``utf-16``: UTF-16 code units (JavaScript, VS Code, Monaco); an astral character counts 2;
* ``utf-8``: bytes (Neovim's byte columns); ``é`` counts 2, ``😀`` counts 4.

Unlike LSP, a character past the end of its line, a line past the last one, or a character
offset that falls inside a character (half a surrogate pair, the middle of a UTF-8 sequence) is
an error, never clamped: a client that sends one has a different text from ours and must resync.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from codesphere.core.errors import PositionError

Encoding = Literal["utf-8", "utf-16", "utf-32"]
ENCODINGS: tuple[Encoding, ...] = ("utf-8", "utf-16", "utf-32")

#: A position as ``(line, character)`` in some encoding.
Position = tuple[int, int]


@lru_cache(maxsize=32)
def _line_starts(text: str) -> list[int]:
    """Code-point offsets at which each line starts (cached: texts are immutable)."""
    starts = [0]
    append = starts.append
    find = text.find
    i = find("\n")
    while i != -1:
        append(i + 1)
        i = find("\n", i + 1)
    return starts


def line_starts(text: str) -> list[int]:
    """Return the offsets of the first character of every line of ``text``."""
    if len(text) < 64:
        # Short texts are cheaper to scan than to hash into the cache.
        return _line_starts.__wrapped__(text)
    return _line_starts(text)


def encoded_length(s: str, encoding: Encoding) -> int:
    """Length of ``s`` in units of ``encoding``."""
    if encoding == "utf-32" or s.isascii():
        return len(s)
    if encoding == "utf-16":
        return len(s.encode("utf-16-le", "surrogatepass")) // 2
    return len(s.encode("utf-8", "surrogatepass"))


def _units_to_code_points(line: str, units: int, encoding: Encoding) -> int:
    """Code points in the first ``units`` units of ``line``; errors if none fits exactly."""
    if encoding == "utf-32" or line.isascii():
        if units > len(line):
            raise PositionError(f"character {units} is past the end of the line ({len(line)})")
        return units
    if encoding == "utf-16":
        data = line.encode("utf-16-le", "surrogatepass")
        width = 2
        codec = "utf-16-le"
    else:
        data = line.encode("utf-8", "surrogatepass")
        width = 1
        codec = "utf-8"
    length = len(data) // width
    if units > length:
        raise PositionError(f"character {units} is past the end of the line ({length})")
    try:
        return len(data[: units * width].decode(codec))
    except UnicodeDecodeError:
        raise PositionError(f"character {units} falls inside a character ({encoding})") from None


def offset_at(text: str, line: int, character: int, encoding: Encoding) -> int:
    """Convert a client position to a code-point offset into ``text``.

    Raises:
        PositionError: the position is negative, past the end of its line or of the text, or
            inside a character. Nothing is clamped.
    """
    if line < 0 or character < 0:
        raise PositionError(f"negative position ({line}, {character})")
    if line < 32:
        # Near the top a few C-level finds beat building (or hashing into) the line index.
        start = 0
        for _ in range(line):
            start = text.find("\n", start) + 1
            if start == 0:
                raise PositionError(f"line {line} is past the last line")
    else:
        starts = line_starts(text)
        if line >= len(starts):
            raise PositionError(f"line {line} is past the last line ({len(starts) - 1})")
        start = starts[line]
    end = text.find("\n", start)
    if end == -1:
        end = len(text)
    if character == 0:
        return start
    return start + _units_to_code_points(text[start:end], character, encoding)


def position_at(text: str, offset: int, encoding: Encoding) -> Position:
    """Convert a code-point offset into ``text`` to ``(line, character)`` in ``encoding``."""
    if not 0 <= offset <= len(text):
        raise PositionError(f"offset {offset} is outside the text (length {len(text)})")
    # Counting newlines runs in C over the prefix: cheaper than building a line index for a
    # text that is converted only a few times (every commit makes a new text).
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, encoded_length(text[start:offset], encoding)


def end_position(text: str, encoding: Encoding) -> Position:
    """The position just after the last character of ``text``."""
    return position_at(text, len(text), encoding)
