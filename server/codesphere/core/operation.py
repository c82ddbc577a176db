"""Text operations: apply, compose, transform, invert.

An operation walks the whole base text from start to end with three kinds of component:

* ``int`` ``n > 0`` — retain: keep the next ``n`` code points;
* ``str`` — insert this text here;
* :class:`Delete` — delete the next code points, which must equal this text.

Deletions carry the text they remove, so an operation is its own undo record
(:meth:`TextOperation.invert` needs no base text) and the history says what was removed, not
only how much. Components are kept canonical: no empty component, no two neighbours of one kind,
and an insert never directly follows a delete (it is moved in front of it), so two operations
that do the same thing compare equal.

Theory of operation
-------------------
The server orders all edits of a document (see ``core/sync.py``): a client's edit was made on
some older view of the text and must be moved past the edits committed since. For two edits
``a`` and ``b`` made on the same text ``S``, ``transform(a, b)`` returns ``(a', b')`` with::

              S
         a  /   \\  b
           /     \\
        S·a       S·b          apply(apply(S, a), b') == apply(apply(S, b), a')
           \\     /
         b' \\   / a'
            S·a·b'

When both insert at the same place, ``a``'s text comes first. Only this property (TP1) is
needed: there is one ordering point per document, so no two sites ever transform the same pair
independently. ``compose(a, b)`` is the single operation that does ``a`` then ``b``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from codesphere.core.errors import OperationError


class Delete(str):
    """A deletion component: the text it removes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Delete({str.__repr__(self)})"


Component = int | str | Delete


def _kind(c: Component) -> int:
    """0 for retain, 1 for insert, 2 for delete."""
    t = type(c)
    if t is int:
        return 0
    if t is str:
        return 1
    return 2


class TextOperation:
    """A sequence of retain / insert / delete components spanning the whole base text."""

    __slots__ = ("base_length", "components", "target_length")

    def __init__(self) -> None:
        self.components: list[Component] = []
        self.base_length = 0
        self.target_length = 0

    # -- building -------------------------------------------------------------------------

    def retain(self, n: int) -> TextOperation:
        """Append a retain of ``n`` code points (no-op for 0)."""
        if n <= 0:
            if n < 0:
                raise OperationError("retain must be positive")
            return self
        self.base_length += n
        self.target_length += n
        comps = self.components
        if comps and type(comps[-1]) is int:
            comps[-1] += n
        else:
            comps.append(n)
        return self

    def insert(self, s: str) -> TextOperation:
        """Append an insertion of ``s`` (kept in front of a directly preceding delete)."""
        if not s:
            return self
        s = str(s)
        self.target_length += len(s)
        comps = self.components
        if not comps:
            comps.append(s)
            return self
        last = comps[-1]
        if type(last) is str:
            comps[-1] = last + s
        elif type(last) is Delete:
            if len(comps) >= 2 and type(comps[-2]) is str:
                comps[-2] = comps[-2] + s
            else:
                comps.insert(len(comps) - 1, s)
        else:
            comps.append(s)
        return self

    def delete(self, s: str) -> TextOperation:
        """Append a deletion of the text ``s``."""
        if not s:
            return self
        self.base_length += len(s)
        comps = self.components
        if comps and type(comps[-1]) is Delete:
            comps[-1] = Delete(comps[-1] + s)
        else:
            comps.append(Delete(s))
        return self

    @classmethod
    def splice(cls, length: int, offset: int, deleted: str, inserted: str) -> TextOperation:
        """The operation that replaces ``deleted`` at ``offset`` with ``inserted``.

        Args:
            length: length of the base text in code points.
            offset: where the replaced text starts.
            deleted: the text being removed (exactly what the base holds there).
            inserted: the text put in its place.
        """
        op = cls()
        comps = op.components
        if offset:
            comps.append(offset)
        if inserted:
            comps.append(inserted)
        if deleted:
            comps.append(Delete(deleted))
        rest = length - offset - len(deleted)
        if rest < 0 or offset < 0:
            raise OperationError("splice does not fit the text")
        if rest:
            if comps and type(comps[-1]) is int:
                comps[-1] += rest
            else:
                comps.append(rest)
        op.base_length = length
        op.target_length = length - len(deleted) + len(inserted)
        return op

    @classmethod
    def identity(cls, length: int) -> TextOperation:
        """The operation that changes nothing in a text of ``length`` code points."""
        return cls().retain(length)

    # -- inspection -----------------------------------------------------------------------

    def is_noop(self) -> bool:
        """True when applying this operation leaves every text unchanged."""
        return all(type(c) is int for c in self.components)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextOperation):
            return NotImplemented
        return (
            self.base_length == other.base_length
            and self.components == other.components
            and [type(c) for c in self.components] == [type(c) for c in other.components]
        )

    def __hash__(self) -> int:  # pragma: no cover - operations are not used as keys
        raise TypeError("TextOperation is mutable and unhashable")

    def __repr__(self) -> str:
        return f"TextOperation({self.components!r})"

    def splices(self) -> Iterator[tuple[int, str, str]]:
        """Yield ``(offset, deleted, inserted)`` replacements in base-text offsets, in order."""
        pos = 0
        pending_at = -1
        deleted = ""
        inserted = ""
        for c in self.components:
            t = type(c)
            if t is int:
                if pending_at >= 0:
                    yield pending_at, deleted, inserted
                    pending_at, deleted, inserted = -1, "", ""
                pos += c  # type: ignore[operator]
            else:
                if pending_at < 0:
                    pending_at = pos
                if t is str:
                    inserted += c  # type: ignore[operator]
                else:
                    deleted += c  # type: ignore[operator]
                    pos += len(c)  # type: ignore[arg-type]
        if pending_at >= 0:
            yield pending_at, deleted, inserted

    # -- serialisation --------------------------------------------------------------------

    def to_json(self) -> list[Any]:
        """Components as JSON values: retain ``n``, insert ``"text"``, delete ``["text"]``."""
        return [[str(c)] if type(c) is Delete else c for c in self.components]

    @classmethod
    def from_json(cls, data: Iterable[Any]) -> TextOperation:
        """Inverse of :meth:`to_json`.

        Raises:
            OperationError: a component is not one of the three forms.
        """
        op = cls()
        for c in data:
            if type(c) is int and c > 0:
                op.retain(c)
            elif type(c) is str:
                op.insert(c)
            elif type(c) is list and len(c) == 1 and type(c[0]) is str and c[0]:
                op.delete(c[0])
            else:
                raise OperationError(f"bad operation component {c!r}")
        return op

    # -- the algebra ----------------------------------------------------------------------

    def apply(self, text: str) -> str:
        """Return ``text`` with this operation applied.

        Raises:
            OperationError: the text's length is not the base length, or a deletion does not
                match the text it would remove.
        """
        if len(text) != self.base_length:
            raise OperationError(
                f"operation base length {self.base_length} != text length {len(text)}"
            )
        pieces: list[str] = []
        pos = 0
        for c in self.components:
            t = type(c)
            if t is int:
                pieces.append(text[pos : pos + c])  # type: ignore[operator]
                pos += c  # type: ignore[operator]
            elif t is str:
                pieces.append(c)  # type: ignore[arg-type]
            else:
                end = pos + len(c)  # type: ignore[arg-type]
                if text[pos:end] != c:
                    raise OperationError("deleted text does not match the document")
                pos = end
        return "".join(pieces)

    def invert(self) -> TextOperation:
        """The operation that undoes this one (applies to this operation's result)."""
        inv = TextOperation()
        for c in self.components:
            t = type(c)
            if t is int:
                inv.retain(c)  # type: ignore[arg-type]
            elif t is str:
                inv.delete(c)  # type: ignore[arg-type]
            else:
                inv.insert(str(c))
        return inv

    def compose(self, other: TextOperation) -> TextOperation:
        """The single operation equivalent to this one followed by ``other``."""
        if self.target_length != other.base_length:
            raise OperationError("compose: the second operation does not follow the first")
        out = TextOperation()
        it1 = iter(self.components)
        it2 = iter(other.components)
        a: Component | None = next(it1, None)
        b: Component | None = next(it2, None)
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
            ka, kb = _kind(a), _kind(b)
            la = a if ka == 0 else len(a)  # type: ignore[arg-type]
            lb = b if kb == 0 else len(b)  # type: ignore[arg-type]
            n: int = min(la, lb)  # type: ignore[assignment]
            if ka == 0 and kb == 0:
                out.retain(n)
            elif ka == 1 and kb == 2:
                pass  # other deletes what self inserted: both vanish
            elif ka == 1 and kb == 0:
                out.insert(a[:n])  # type: ignore[index]
            else:  # retain then delete
                out.delete(b[:n])  # type: ignore[index]
            a = _rest(a, ka, n, la)  # type: ignore[arg-type]
            if a is None:
                a = next(it1, None)
            b = _rest(b, kb, n, lb)  # type: ignore[arg-type]
            if b is None:
                b = next(it2, None)
        return out


def _rest(c: Component, kind: int, n: int, length: int) -> Component | None:
    """What remains of component ``c`` after its first ``n`` units, or None."""
    if n == length:
        return None
    if kind == 0:
        return length - n
    if kind == 1:
        return c[n:]  # type: ignore[index]
    return Delete(c[n:])  # type: ignore[index]


def transform(a: TextOperation, b: TextOperation) -> tuple[TextOperation, TextOperation]:
    """Transform two operations made on the same text; see the module docstring.

    Returns:
        ``(a', b')`` such that ``a`` then ``b'`` equals ``b`` then ``a'``. On a tie between two
        insertions at one place, ``a``'s text ends up first.
    """
    if a.base_length != b.base_length:
        raise OperationError("transform: operations apply to different texts")
    a2 = TextOperation()
    b2 = TextOperation()
    it1 = iter(a.components)
    it2 = iter(b.components)
    x: Component | None = next(it1, None)
    y: Component | None = next(it2, None)
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
        kx, ky = _kind(x), _kind(y)
        lx = x if kx == 0 else len(x)  # type: ignore[arg-type]
        ly = y if ky == 0 else len(y)  # type: ignore[arg-type]
        n: int = min(lx, ly)  # type: ignore[assignment]
        if kx == 0 and ky == 0:
            a2.retain(n)
            b2.retain(n)
        elif kx == 2 and ky == 2:
            pass  # both delete the same text
        elif kx == 2:  # a deletes what b keeps
            a2.delete(x[:n])  # type: ignore[index]
        else:  # b deletes what a keeps
            b2.delete(y[:n])  # type: ignore[index]
        x = _rest(x, kx, n, lx)  # type: ignore[arg-type]
        if x is None:
            x = next(it1, None)
        y = _rest(y, ky, n, ly)  # type: ignore[arg-type]
        if y is None:
            y = next(it2, None)
    return a2, b2


def compose_all(ops: Iterable[TextOperation], length: int) -> TextOperation:
    """Compose a sequence of operations; the identity on ``length`` code points when empty.

    Composes neighbours pairwise, round after round: composing one at a time onto a growing
    result costs time quadratic in the number of operations, this only ``n log n``.
    """
    level = list(ops)
    if not level:
        return TextOperation.identity(length)
    while len(level) > 1:
        paired = [level[i].compose(level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def transform_offset(op: TextOperation, offset: int, *, before_inserts: bool = False) -> int:
    """Move a cursor offset in the base text to the matching offset in the result.

    Args:
        op: the operation being applied.
        offset: a code-point offset into the base text.
        before_inserts: keep the cursor in front of text inserted exactly at it (a selection's
            start); by default it moves past such text, as a remote typist's cursor does.
    """
    pos = 0  # in the base text
    shift = 0  # result offset minus base offset so far
    for c in op.components:
        if pos > offset:
            break
        t = type(c)
        if t is int:
            pos += c  # type: ignore[operator]
        elif t is str:
            if pos < offset or (pos == offset and not before_inserts):
                shift += len(c)  # type: ignore[arg-type]
        else:
            n = len(c)  # type: ignore[arg-type]
            if pos + n <= offset:
                shift -= n
            else:
                shift -= offset - pos
            pos += n
    return offset + shift
