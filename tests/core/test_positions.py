"""Positions in utf-8, utf-16 and utf-32: conversions, unit counts and strict errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesphere.core.errors import PositionError
from codesphere.core.positions import (
    ENCODINGS,
    Encoding,
    encoded_length,
    end_position,
    line_starts,
    offset_at,
    position_at,
)

FAMILY = "👩\u200d👩\u200d👧"  # a ZWJ sequence: five code points, one glyph
PIECES = [
    "a", "b", "x", " ", "\t", "\n", "\n", "\n\n", "é", "e\u0301", "中", "文字", "😀", "𝄞",
    FAMILY, "ｶ", "ä", "{}", "\u00a0", "\U0010ffff",
]  # fmt: skip

texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
encodings = st.sampled_from(ENCODINGS)
CODECS = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}

SAMPLES = [
    "",
    "\n",
    "\n\n\n",
    "abc",
    "abc\n",
    "a😀b\n\ne\u0301\tx\n中文字",
    f"{FAMILY}\n𝄞 clef\n",
    "\tindented\n\t\ttwice\n",
    "no newline at end 😀",
]


def units(s: str, encoding: Encoding) -> int:
    """Length of ``s`` in ``encoding``, computed with the codecs directly."""
    codec, width = CODECS[encoding]
    return len(s.encode(codec)) // width


def expected_position(text: str, offset: int, encoding: Encoding) -> tuple[int, int]:
    """The position of ``offset`` worked out from first principles."""
    before = text[:offset]
    line = before.count("\n")
    return line, units(before[before.rfind("\n") + 1 :], encoding)


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("text", SAMPLES)
def test_every_offset_of_sample_texts_round_trips(text: str, encoding: Encoding) -> None:
    """Every code-point offset maps to the expected position and back to itself."""
    for offset in range(len(text) + 1):
        line, character = position_at(text, offset, encoding)
        assert (line, character) == expected_position(text, offset, encoding)
        assert offset_at(text, line, character, encoding) == offset


@settings(max_examples=500, deadline=None)
@given(text=texts, encoding=encodings)
def test_offsets_round_trip_through_positions(text: str, encoding: Encoding) -> None:
    """offset -> position -> offset is the identity, and positions match the codecs."""
    for offset in range(len(text) + 1):
        line, character = position_at(text, offset, encoding)
        assert (line, character) == expected_position(text, offset, encoding)
        assert offset_at(text, line, character, encoding) == offset


@settings(max_examples=300, deadline=None)
@given(text=texts, encoding=encodings)
def test_only_character_boundaries_are_positions(text: str, encoding: Encoding) -> None:
    """On every line, each unit count is accepted exactly when it ends a whole character."""
    for line_no, line in enumerate(text.split("\n")):
        start = sum(len(x) + 1 for x in text.split("\n")[:line_no])
        boundaries = {units(line[:i], encoding): start + i for i in range(len(line) + 1)}
        for character in range(units(line, encoding) + 2):
            if character in boundaries:
                assert offset_at(text, line_no, character, encoding) == boundaries[character]
            else:
                with pytest.raises(PositionError):
                    offset_at(text, line_no, character, encoding)


# -- exact unit counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("a😀b", 2, {"utf-8": 5, "utf-16": 3, "utf-32": 2}),
        ("a😀b", 3, {"utf-8": 6, "utf-16": 4, "utf-32": 3}),
        ("é", 1, {"utf-8": 2, "utf-16": 1, "utf-32": 1}),
        ("e\u0301x", 2, {"utf-8": 3, "utf-16": 2, "utf-32": 2}),
        ("中文", 2, {"utf-8": 6, "utf-16": 2, "utf-32": 2}),
        ("𝄞", 1, {"utf-8": 4, "utf-16": 2, "utf-32": 1}),
        (FAMILY, 5, {"utf-8": 18, "utf-16": 8, "utf-32": 5}),
        ("\t\tx", 2, {"utf-8": 2, "utf-16": 2, "utf-32": 2}),
    ],
)
def test_unit_counts_on_the_first_line(text: str, offset: int, expected: dict[str, int]) -> None:
    """The character of a position counts bytes, UTF-16 units or code points."""
    for encoding in ENCODINGS:
        assert position_at(text, offset, encoding) == (0, expected[encoding])
        assert offset_at(text, 0, expected[encoding], encoding) == offset


def test_unit_counts_restart_on_each_line() -> None:
    """The character count starts from zero after every newline."""
    text = "😀\n😀b\n\nz"
    assert position_at(text, 3, "utf-16") == (1, 2)
    assert position_at(text, 4, "utf-8") == (1, 5)
    assert position_at(text, 5, "utf-32") == (2, 0)
    assert position_at(text, 6, "utf-16") == (3, 0)
    assert offset_at(text, 1, 3, "utf-16") == 4
    assert offset_at(text, 2, 0, "utf-8") == 5


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_end_position_with_and_without_final_newline(encoding: Encoding) -> None:
    """A final newline starts an empty last line; without one the end is on the last line."""
    assert end_position("", encoding) == (0, 0)
    assert end_position("ab\n", encoding) == (1, 0)
    assert end_position("ab\n😀", encoding) == (1, units("😀", encoding))
    assert end_position("\n\n", encoding) == (2, 0)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("position", [(-1, 0), (0, -1), (-1, -1), (1, -5)])
def test_negative_positions_are_refused(encoding: Encoding, position: tuple[int, int]) -> None:
    """A negative line or character raises PositionError."""
    with pytest.raises(PositionError):
        offset_at("ab\ncd", *position, encoding)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("text", "line"), [("", 1), ("abc", 1), ("abc\n", 2), ("a\nb", 2), ("a\nb", 10**9)]
)
def test_lines_past_the_last_are_refused(text: str, line: int, encoding: Encoding) -> None:
    """A line number past the last line raises PositionError, even with character 0."""
    with pytest.raises(PositionError):
        offset_at(text, line, 0, encoding)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("text", "line", "character"),
    [
        ("abc\ndef", 0, 4),  # would be the start of the next line if it ran on
        ("abc\ndef", 0, 100),  # LSP clamps this to the end of the line; we refuse it
        ("abc\ndef", 1, 4),
        ("abc\n", 1, 1),
        ("", 0, 1),
        ("😀", 0, 5),
        ("中\n", 0, 4),
    ],
)
def test_characters_past_the_end_of_a_line_are_refused(
    text: str, line: int, character: int, encoding: Encoding
) -> None:
    """A character past the end of its line raises PositionError: nothing is clamped."""
    with pytest.raises(PositionError):
        offset_at(text, line, character, encoding)


@pytest.mark.parametrize(("text", "character"), [("😀", 1), ("a𝄞b", 2), (f"x{FAMILY}", 2)])
def test_utf16_inside_a_surrogate_pair_is_refused(text: str, character: int) -> None:
    """A UTF-16 character count that splits a surrogate pair raises PositionError."""
    with pytest.raises(PositionError, match="inside"):
        offset_at(text, 0, character, "utf-16")


@pytest.mark.parametrize(
    ("text", "character"),
    [("é", 1), ("中", 1), ("中", 2), ("😀", 1), ("😀", 2), ("😀", 3), ("ae\u0301", 3)],
)
def test_utf8_inside_a_multibyte_sequence_is_refused(text: str, character: int) -> None:
    """A UTF-8 byte count that splits a multi-byte sequence raises PositionError."""
    with pytest.raises(PositionError, match="inside"):
        offset_at(text, 0, character, "utf-8")


def test_combining_marks_are_separate_positions() -> None:
    """Between a base letter and its combining mark is a position (code points, not glyphs)."""
    assert offset_at("e\u0301", 0, 1, "utf-8") == 1
    assert offset_at("e\u0301", 0, 1, "utf-16") == 1
    assert position_at("e\u0301", 1, "utf-8") == (0, 1)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("offset", [-1, 4, 100])
def test_offsets_outside_the_text_are_refused(offset: int, encoding: Encoding) -> None:
    """position_at raises PositionError for an offset before 0 or past the end."""
    with pytest.raises(PositionError):
        position_at("abc", offset, encoding)


# -- encoded_length ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=texts, encoding=encodings)
def test_encoded_length_matches_the_codecs(text: str, encoding: Encoding) -> None:
    """encoded_length equals the length of the encoded text in units."""
    assert encoded_length(text, encoding) == units(text, encoding)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, 0, 0)),
        ("abc\n", (4, 4, 4)),
        ("a😀b", (6, 4, 3)),
        (FAMILY, (18, 8, 5)),
        ("e\u0301", (3, 2, 2)),
        ("中文字", (9, 3, 3)),
    ],
)
def test_encoded_length_examples(text: str, expected: tuple[int, int, int]) -> None:
    """encoded_length counts bytes, UTF-16 units and code points exactly."""
    assert tuple(encoded_length(text, e) for e in ENCODINGS) == expected


# -- line_starts and its cache -------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 63, 64, 500])
def test_line_starts_is_not_stale_for_texts_of_equal_length(size: int) -> None:
    """Texts of equal length but different newlines get their own line starts, every time."""
    variants = ["x" * size]
    for at in (0, size // 3, size - 1):
        variants.append("x" * at + "\n" + "x" * (size - at - 1))
    for _ in range(2):  # the second pass is served from the cache for long texts
        for text in variants:
            expected = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
            assert line_starts(text) == expected
            assert offset_at(text, len(expected) - 1, 0, "utf-16") == expected[-1]


def test_positions_follow_a_text_that_changes_between_calls() -> None:
    """Converting in successive versions of a long text uses each version's own lines."""
    text = "a" * 100
    for i in range(1, 40):
        text = text[: i * 2] + "\n" + text[i * 2 + 1 :]
        assert position_at(text, len(text), "utf-8") == (i, 100 - 2 * i - 1)
        assert offset_at(text, i, 0, "utf-32") == 2 * i + 1


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_line_starts_matches_split(text: str) -> None:
    """line_starts gives the offset after every newline, plus 0."""
    expected = [0]
    for part in text.split("\n")[:-1]:
        expected.append(expected[-1] + len(part) + 1)
    assert line_starts(text) == expected
    assert line_starts(text * 5) == [0] + [i + 1 for i, ch in enumerate(text * 5) if ch == "\n"]
