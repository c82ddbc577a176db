"""The one-pass conversions (broadcast, catch-up) give exactly the content changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codesphere.client.document import change_to_json
from codesphere.core.changes import ContentChange, apply_changes, op_to_changes
from codesphere.core.operation import TextOperation
from codesphere.core.positions import Encoding
from codesphere.protocol import codec

PIECES = ["a", "b", " ", "\n", "\n", "é", "e\u0301", "中", "😀", "𝄞", "👩\u200d👧"]
ENCODINGS: list[Encoding] = ["utf-8", "utf-16", "utf-32"]
texts = st.lists(st.sampled_from(PIECES), max_size=16).map("".join)


def as_json(changes: list[ContentChange]) -> list[dict[str, object]]:
    """The changes as a client writes them: the reference the one-pass conversions must match."""
    return [change_to_json(c) for c in changes]


@st.composite
def text_and_op(draw: st.DrawFn) -> tuple[str, TextOperation]:
    """A text and an operation of up to five successive splices on it."""
    text = draw(texts)
    op = TextOperation.identity(len(text))
    current = text
    for _ in range(draw(st.integers(0, 5))):
        offset = draw(st.integers(0, len(current)))
        deleted = current[offset : offset + draw(st.integers(0, 4))]
        inserted = draw(texts)
        op = op.compose(TextOperation.splice(len(current), offset, deleted, inserted))
        current = current[:offset] + inserted + current[offset + len(deleted) :]
    return text, op


@settings(max_examples=1000, deadline=None)
@given(case=text_and_op(), encodings=st.sets(st.sampled_from(ENCODINGS), min_size=1))
def test_op_changes_json_matches_op_to_changes_in_every_encoding(
    case: tuple[str, TextOperation], encodings: set[Encoding]
) -> None:
    text, op = case
    by_encoding = codec.op_changes_json(op, text, encodings)
    assert set(by_encoding) == encodings
    for encoding in encodings:
        expected = op_to_changes(op, text, encoding)
        assert by_encoding[encoding] == as_json(expected)
        parsed = codec.content_changes(by_encoding[encoding])
        assert apply_changes(text, parsed, encoding) == op.apply(text)


@settings(max_examples=1000, deadline=None)
@given(case=text_and_op(), encoding=st.sampled_from(ENCODINGS))
def test_op_json_changes_is_op_to_changes_as_json(
    case: tuple[str, TextOperation], encoding: Encoding
) -> None:
    """The acknowledgement's catch-up, written straight to JSON, says the same."""
    text, op = case
    direct = codec.op_json_changes(op, text, encoding)
    assert direct == as_json(op_to_changes(op, text, encoding))
    assert apply_changes(text, codec.content_changes(direct), encoding) == op.apply(text)
