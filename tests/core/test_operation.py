"""The operation algebra: apply, invert, compose, transform, serialisation, cursor moves."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesphere.core.errors import OperationError
from codesphere.core.operation import (
    Component,
    Delete,
    TextOperation,
    compose_all,
    transform,
    transform_offset,
)

PIECES = [
    "a", "b", "c", " ", "\t", "\n", "\n", "é", "e\u0301", "中", "文字", "😀", "𝄞",
    "👩\u200d👩\u200d👧", "ｶ",
]  # fmt: skip
MARKER = "\ue000"  # never produced by PIECES

texts = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
PROPERTY = settings(max_examples=1000, deadline=None)

#: A splice as ``(offset, deleted, inserted)``.
Splice = tuple[int, str, str]


@st.composite
def splice_on(draw: st.DrawFn, text: str) -> Splice:
    """One replacement that fits ``text``."""
    offset = draw(st.integers(0, len(text)))
    length = draw(st.integers(0, min(6, len(text) - offset)))
    return offset, text[offset : offset + length], draw(texts)


@st.composite
def edit_on(draw: st.DrawFn, text: str, max_splices: int = 4) -> tuple[TextOperation, str]:
    """An operation on ``text`` built from 0–``max_splices`` successive splices, and its result."""
    op = TextOperation.identity(len(text))
    current = text
    for _ in range(draw(st.integers(0, max_splices))):
        offset, deleted, inserted = draw(splice_on(current))
        op = op.compose(TextOperation.splice(len(current), offset, deleted, inserted))
        current = current[:offset] + inserted + current[offset + len(deleted) :]
    return op, current


@st.composite
def text_and_edit(draw: st.DrawFn) -> tuple[str, TextOperation, str]:
    text = draw(texts)
    op, result = draw(edit_on(text))
    return text, op, result


def kinds(op: TextOperation) -> list[type]:
    return [type(c) for c in op.components]


def size(c: Component) -> int:
    """Code points a component retains, inserts or deletes."""
    return c if isinstance(c, int) else len(c)


def assert_canonical(op: TextOperation) -> None:
    """No empty component, no two neighbours of one kind, no insert right after a delete."""
    comps: list[Component] = op.components
    for c in comps:
        assert type(c) in (int, str, Delete)
        assert size(c) > 0
    for left, right in pairwise(comps):
        assert type(left) is not type(right), comps
        assert not (type(left) is Delete and type(right) is str), comps
    base = sum(size(c) for c in comps if type(c) is not str)
    target = sum(size(c) for c in comps if type(c) is not Delete)
    assert (op.base_length, op.target_length) == (base, target)


# -- properties ----------------------------------------------------------------------------


@PROPERTY
@given(case=text_and_edit())
def test_apply_matches_splicing_and_invert_undoes_it(
    case: tuple[str, TextOperation, str],
) -> None:
    """An op does what its splices do, and its inverse restores the original text."""
    text, op, result = case
    assert op.apply(text) == result
    assert op.invert().apply(result) == text
    assert op.invert().invert() == op
    assert_canonical(op)
    assert_canonical(op.invert())


@PROPERTY
@given(data=st.data(), first=text_and_edit())
def test_compose_equals_applying_in_sequence(
    data: st.DataObject, first: tuple[str, TextOperation, str]
) -> None:
    """a.compose(b) applied once equals a then b, and stays canonical."""
    text, a, middle = first
    b, result = data.draw(edit_on(middle))
    ab = a.compose(b)
    assert ab.apply(text) == b.apply(a.apply(text)) == result
    assert (ab.base_length, ab.target_length) == (len(text), len(result))
    assert_canonical(ab)
    assert compose_all([a, b], len(text)) == ab


@PROPERTY
@given(data=st.data(), text=texts)
def test_transform_converges(data: st.DataObject, text: str) -> None:
    """TP1: a then b' equals b then a', and both transformed ops are canonical."""
    a, _ = data.draw(edit_on(text))
    b, _ = data.draw(edit_on(text))
    a2, b2 = transform(a, b)
    assert b2.apply(a.apply(text)) == a2.apply(b.apply(text))
    assert_canonical(a2)
    assert_canonical(b2)


@PROPERTY
@given(data=st.data(), text=texts, x=texts.filter(bool), y=texts.filter(bool))
def test_transform_puts_the_first_operations_insert_first(
    data: st.DataObject, text: str, x: str, y: str
) -> None:
    """Two replacements starting at one offset: a's text, then b's, and both deletions."""
    offset = data.draw(st.integers(0, len(text)))
    da = data.draw(st.integers(0, len(text) - offset))
    db = data.draw(st.integers(0, len(text) - offset))
    a = TextOperation.splice(len(text), offset, text[offset : offset + da], x)
    b = TextOperation.splice(len(text), offset, text[offset : offset + db], y)
    a2, b2 = transform(a, b)
    expected = text[:offset] + x + y + text[offset + max(da, db) :]
    assert a2.apply(b.apply(text)) == expected
    assert b2.apply(a.apply(text)) == expected


@PROPERTY
@given(case=text_and_edit())
def test_json_round_trip(case: tuple[str, TextOperation, str]) -> None:
    """from_json(to_json(op)) equals op, through real JSON text too."""
    _, op, _ = case
    data = op.to_json()
    back = TextOperation.from_json(json.loads(json.dumps(data, ensure_ascii=False)))
    assert back == op
    assert kinds(back) == kinds(op)
    assert (back.base_length, back.target_length) == (op.base_length, op.target_length)
    for value, c in zip(data, op.components, strict=True):
        assert value == ([str(c)] if type(c) is Delete else c)


def marker_oracle(text: str, op: TextOperation, offset: int, before_inserts: bool) -> int:
    """Where a marker at ``offset`` ends up when ``op``'s splices are applied around it.

    Text inserted exactly at the marker goes after it when ``before_inserts``, else before;
    a deletion that spans the marker leaves it just after the replacement text.
    """
    marked = text[:offset] + MARKER + text[offset:]
    for start, deleted, inserted in reversed(list(op.splices())):
        end = start + len(deleted)
        if end < offset or (deleted and end == offset):  # wholly before the marker
            lo, hi, new = start, end, inserted
        elif start > offset:  # wholly after it
            lo, hi, new = start + 1, end + 1, inserted
        elif start == offset and before_inserts:
            lo, hi, new = start, end + 1, MARKER + inserted
        else:  # inserting at the marker, or deleting around it
            lo, hi, new = start, end + 1, inserted + MARKER
        marked = marked[:lo] + new + marked[hi:]
    assert marked.replace(MARKER, "") == op.apply(text)
    return marked.index(MARKER)


@PROPERTY
@given(data=st.data(), case=text_and_edit(), before_inserts=st.booleans())
def test_transform_offset_follows_a_marker(
    data: st.DataObject, case: tuple[str, TextOperation, str], before_inserts: bool
) -> None:
    """A cursor moves exactly as a marker character placed at it moves through the splices."""
    text, op, _ = case
    offset = data.draw(st.integers(0, len(text)))
    moved = transform_offset(op, offset, before_inserts=before_inserts)
    assert moved == marker_oracle(text, op, offset, before_inserts)
    assert 0 <= moved <= op.target_length


# -- against straightforward reference implementations ------------------------------------
#
# compose, transform and invert build their results directly for speed. These are the plain
# versions they replaced, which build through retain / insert / delete one step at a time;
# the fast ones must give exactly the same components, not merely equivalent operations.


def reference_compose(first: TextOperation, second: TextOperation) -> TextOperation:
    if first.target_length != second.base_length:
        raise OperationError("compose: the second operation does not follow the first")
    out = TextOperation()
    it1 = iter(first.components)
    it2 = iter(second.components)
    a: Any = next(it1, None)
    b: Any = next(it2, None)
    while a is not None or b is not None:
        if a is not None and type(a) is Delete:
            out.delete(a)
            a = next(it1, None)
            continue
        if b is not None and type(b) is str:
            out.insert(b)
            b = next(it2, None)
            continue
        if a is None or b is None:
            raise OperationError("compose: operations have different lengths")
        ka, kb = reference_kind(a), reference_kind(b)
        la = a if ka == 0 else len(a)
        lb = b if kb == 0 else len(b)
        n = min(la, lb)
        if ka == 0 and kb == 0:
            out.retain(n)
        elif ka == 1 and kb == 2:
            pass  # second deletes what first inserted: both vanish
        elif ka == 1 and kb == 0:
            out.insert(a[:n])
        else:  # retain then delete
            out.delete(b[:n])
        a = reference_rest(a, ka, n, la)
        if a is None:
            a = next(it1, None)
        b = reference_rest(b, kb, n, lb)
        if b is None:
            b = next(it2, None)
    return out


def reference_transform(a: TextOperation, b: TextOperation) -> tuple[TextOperation, TextOperation]:
    if a.base_length != b.base_length:
        raise OperationError("transform: operations apply to different texts")
    a2 = TextOperation()
    b2 = TextOperation()
    it1 = iter(a.components)
    it2 = iter(b.components)
    x: Any = next(it1, None)
    y: Any = next(it2, None)
    while x is not None or y is not None:
        if x is not None and type(x) is str:
            a2.insert(x)
            b2.retain(len(x))
            x = next(it1, None)
            continue
        if y is not None and type(y) is str:
            a2.retain(len(y))
            b2.insert(y)
            y = next(it2, None)
            continue
        if x is None or y is None:
            raise OperationError("transform: operations have different lengths")
        kx, ky = reference_kind(x), reference_kind(y)
        lx = x if kx == 0 else len(x)
        ly = y if ky == 0 else len(y)
        n = min(lx, ly)
        if kx == 0 and ky == 0:
            a2.retain(n)
            b2.retain(n)
        elif kx == 2 and ky == 2:
            pass  # both delete the same text
        elif kx == 2:  # a deletes what b keeps
            a2.delete(x[:n])
        else:  # b deletes what a keeps
            b2.delete(y[:n])
        x = reference_rest(x, kx, n, lx)
        if x is None:
            x = next(it1, None)
        y = reference_rest(y, ky, n, ly)
        if y is None:
            y = next(it2, None)
    return a2, b2


def reference_invert(op: TextOperation) -> TextOperation:
    inv = TextOperation()
    for c in op.components:
        if type(c) is int:
            inv.retain(c)
        elif type(c) is str:
            inv.delete(c)
        else:
            inv.insert(str(c))
    return inv


def reference_kind(c: Component) -> int:
    """0 for retain, 1 for insert, 2 for delete."""
    return 0 if type(c) is int else 1 if type(c) is str else 2


def reference_rest(c: Any, kind: int, n: int, length: int) -> Component | None:
    """What remains of component ``c`` after its first ``n`` units, or None."""
    if n == length:
        return None
    if kind == 0:
        return length - n
    if kind == 1:
        return c[n:]
    return Delete(c[n:])


def assert_identical(got: TextOperation, expected: TextOperation) -> None:
    """Same components of the same exact types, and the same lengths."""
    assert got.components == expected.components
    assert kinds(got) == kinds(expected)
    assert (got.base_length, got.target_length) == (expected.base_length, expected.target_length)


#: Longer texts and edits than the properties above, so that operations have many components.
long_texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
#: Most splices in one operation: many-against-one cases take compose's and transform's
#: shortcuts for operations of very different sizes.
LOPSIDED = st.sampled_from([1, 10, 16])


@PROPERTY
@given(data=st.data(), text=long_texts)
def test_compose_matches_the_reference(data: st.DataObject, text: str) -> None:
    """compose gives exactly the components the step-by-step reference gives."""
    a, middle = data.draw(edit_on(text, max_splices=data.draw(LOPSIDED)))
    b, _ = data.draw(edit_on(middle, max_splices=data.draw(LOPSIDED)))
    assert_identical(a.compose(b), reference_compose(a, b))


@PROPERTY
@given(data=st.data(), text=long_texts)
def test_transform_matches_the_reference(data: st.DataObject, text: str) -> None:
    """transform gives exactly the components the step-by-step reference gives."""
    a, _ = data.draw(edit_on(text, max_splices=data.draw(LOPSIDED)))
    b, _ = data.draw(edit_on(text, max_splices=data.draw(LOPSIDED)))
    a2, b2 = transform(a, b)
    ref_a2, ref_b2 = reference_transform(a, b)
    assert_identical(a2, ref_a2)
    assert_identical(b2, ref_b2)


@PROPERTY
@given(data=st.data(), text=long_texts)
def test_invert_matches_the_reference(data: st.DataObject, text: str) -> None:
    """invert gives exactly the components the step-by-step reference gives."""
    op, _ = data.draw(edit_on(text, max_splices=10))
    assert_identical(op.invert(), reference_invert(op))


# -- examples ------------------------------------------------------------------------------


def test_splice_builds_canonical_components() -> None:
    """splice puts the insertion before the deletion and omits empty parts."""
    op = TextOperation.splice(10, 2, "cd", "XY")
    assert op.components == [2, "XY", Delete("cd"), 6]
    assert kinds(op) == [int, str, Delete, int]
    assert TextOperation.splice(3, 0, "", "") == TextOperation.identity(3)
    assert TextOperation.splice(0, 0, "", "").components == []
    assert TextOperation.splice(3, 3, "", "z").components == [3, "z"]


def test_builders_keep_components_canonical() -> None:
    """retain/insert/delete merge neighbours and move an insert in front of a delete."""
    op = TextOperation().retain(1).retain(2).delete("ab").insert("x").insert("y").delete("c")
    assert op.components == [3, "xy", Delete("abc")]
    assert kinds(op) == [int, str, Delete]
    assert (op.base_length, op.target_length) == (6, 5)
    assert TextOperation().retain(0).insert("").delete("").components == []


def test_insert_and_delete_of_same_text_are_not_equal() -> None:
    """Equality tells an insert of "a" from a delete of "a"."""
    assert TextOperation().insert("a") != TextOperation().delete("a")
    assert TextOperation().delete("a") == TextOperation().delete("a")


def test_splices_reports_replacements_in_base_offsets() -> None:
    """splices() lists each replacement once, with base-text offsets."""
    op = TextOperation().retain(1).insert("X").delete("bc").retain(2).delete("f").insert("Z")
    assert list(op.splices()) == [(1, "bc", "X"), (5, "f", "Z")]
    assert op.apply("abcdef") == "aXdeZ"


def test_is_noop() -> None:
    """Only all-retain operations are no-ops."""
    assert TextOperation.identity(5).is_noop()
    assert TextOperation().is_noop()
    assert not TextOperation.splice(1, 0, "a", "a").is_noop()


def test_compose_all_of_nothing_is_the_identity() -> None:
    """compose_all with no operations returns the identity on the given length."""
    assert compose_all([], 7) == TextOperation.identity(7)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "ab", "abcd"])
def test_apply_to_text_of_wrong_length_raises(text: str) -> None:
    """apply refuses a text whose length is not the base length."""
    with pytest.raises(OperationError):
        TextOperation.splice(3, 1, "b", "x").apply(text)


def test_apply_with_mismatched_deleted_text_raises() -> None:
    """apply refuses to delete text that differs from what the op carries."""
    op = TextOperation.splice(3, 1, "b", "x")
    with pytest.raises(OperationError, match="deleted text"):
        op.apply("aXc")


@pytest.mark.parametrize(("offset", "deleted"), [(-1, ""), (4, ""), (2, "cd")])
def test_splice_that_does_not_fit_raises(offset: int, deleted: str) -> None:
    """splice refuses an offset or deletion outside the text."""
    with pytest.raises(OperationError):
        TextOperation.splice(3, offset, deleted, "x")


def test_negative_retain_raises() -> None:
    """retain refuses a negative count."""
    with pytest.raises(OperationError):
        TextOperation().retain(-1)


def test_compose_with_length_mismatch_raises() -> None:
    """compose refuses a second op whose base is not the first op's result."""
    a = TextOperation.splice(3, 0, "", "x")  # 3 -> 4
    with pytest.raises(OperationError):
        a.compose(TextOperation.identity(3))
    with pytest.raises(OperationError):
        a.compose(TextOperation.identity(5))


def test_transform_with_length_mismatch_raises() -> None:
    """transform refuses two ops on texts of different lengths."""
    with pytest.raises(OperationError):
        transform(TextOperation.identity(3), TextOperation.identity(4))
    with pytest.raises(OperationError):
        transform(TextOperation.splice(2, 0, "a", ""), TextOperation.identity(1))


@pytest.mark.parametrize(
    "component",
    [0, -1, [""], [], ["a", "b"], [1], [["a"]], {"d": "a"}, None, 1.5, True, b"ab"],
)
def test_from_json_rejects_bad_components(component: Any) -> None:
    """from_json refuses anything but positive ints, strings and one-string lists."""
    with pytest.raises(OperationError):
        TextOperation.from_json([1, component, "x"])


def test_from_json_accepts_and_canonicalises_the_three_forms() -> None:
    """from_json merges neighbours and reorders an insert after a delete."""
    op = TextOperation.from_json([1, 2, ["ab"], "x", ["c"], "", 3])
    assert op.components == [3, "x", Delete("abc"), 3]
    assert kinds(op) == [int, str, Delete, int]
