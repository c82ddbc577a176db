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
from typing import Any, Final

from mypy_extensions import mypyc_attr

from codesphere.core.errors import OperationError


# A subclass of str cannot be a compiled (native) class; it stays a plain Python class.
@mypyc_attr(native_class=False)
class Delete(str):
    """A deletion component: the text it removes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Delete({str.__repr__(self)})"


Component = int | str | Delete


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
    #
    # apply, invert, compose and transform run for every edit the server takes, so they walk
    # component lists directly: components are told apart by exact type (``type(c) is int``)
    # once per step, hot locals are typed ``Any`` because mypy cannot narrow through a saved
    # ``type(c)``, and results are assembled as finished canonical lists (see _close_gap)
    # rather than through retain / insert / delete calls.

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
        comps: list[Any] = self.components
        pieces: list[str] = []
        pos = 0
        for c in comps:
            t = type(c)
            if t is int:
                end = pos + c
                pieces.append(text[pos:end])
                pos = end
            elif t is str:
                pieces.append(c)
            else:
                end = pos + len(c)
                if text[pos:end] != c:
                    raise OperationError("deleted text does not match the document")
                pos = end
        return "".join(pieces)

    def invert(self) -> TextOperation:
        """The operation that undoes this one (applies to this operation's result)."""
        comps: list[Any] = self.components
        out: list[Component] = []
        append = out.append
        # Retains stay, inserts become deletes and deletes inserts. In canonical form a gap
        # between retains is (insert I, delete D), whose inverse (insert D, delete I) must
        # again put the insert first: an inverted insert is held back until the gap ends.
        held: Delete | None = None
        for c in comps:
            t = type(c)
            if t is int:
                if held is not None:
                    append(held)
                    held = None
                append(c)
            elif t is str:
                held = Delete(c)
            else:
                append(str(c))
                if held is not None:
                    append(held)
                    held = None
        if held is not None:
            append(held)
        return _make(out, self.target_length, self.base_length)

    def compose(self, other: TextOperation) -> TextOperation:
        """The single operation equivalent to this one followed by ``other``."""
        if self.target_length != other.base_length:
            raise OperationError("compose: the second operation does not follow the first")
        # ``other`` walks the text ``self`` produces: each of its retains and deletes uses up
        # that many code points of self's retains and inserts, while self's deletes produce
        # nothing and pass straight through. So the loop runs over other's components and
        # pulls self's along: ``kind`` and ``a_n`` (a retain) or ``a_s`` (an insert's or a
        # delete's text) are what is left of self's current component.
        ca = self.components
        cb = other.components
        kind, a_n, a_s = _component(ca, 0)
        i = 1  # index of self's next component
        # When self has many more components than other, other's retains span many of them:
        # those are copied over as one slice (see _output_span) instead of one at a time.
        copy_runs = len(ca) > _COPY_RUN_RATIO * len(cb)
        # The result so far: finished components in ``out``, then either a pending retain
        # ``r`` or a pending gap of inserted text ``gi`` and deleted text ``gd``, never both.
        out: list[Component] = []
        r = 0
        gi = ""
        gd = ""
        for b in cb:
            if isinstance(b, int):
                # other keeps ``n`` code points: self's components there carry over as they
                # are (an insert of self's text stays an insert).
                n = b
                while True:
                    if kind == _RETAIN:
                        if gi or gd:
                            _close_gap(out, gi, gd)
                            gi = gd = ""
                        if a_n > n:
                            r += n
                            a_n -= n
                            break
                        r += a_n
                        n -= a_n
                        if copy_runs and n:
                            end, used = _output_span(ca, i, n)
                            if end > i:
                                out.append(r)
                                out.extend(ca[i : end - 1])
                                r = _retained(ca[end - 1])
                                n -= used
                                i = end
                    elif kind == _INSERT:
                        if r:
                            out.append(r)
                            r = 0
                        la = len(a_s)
                        if la > n:
                            gi += a_s[:n]
                            a_s = a_s[n:]
                            break
                        gi += a_s
                        n -= la
                    elif kind == _DELETE:
                        if r:
                            out.append(r)
                            r = 0
                        gd = gd + a_s if gd else a_s
                    else:
                        raise OperationError("compose: operations have different lengths")
                    kind, a_n, a_s = _component(ca, i)
                    i += 1
                    if not n:
                        break
            elif type(b) is str:
                if r:
                    out.append(r)
                    r = 0
                gi += b
            else:
                # other deletes ``n`` code points, from offset ``k`` of its deleted text on:
                # what self kept there is now deleted, what self inserted there never was.
                n = len(b)
                k = 0
                while True:
                    if kind == _RETAIN:
                        if r:
                            out.append(r)
                            r = 0
                        if a_n > n:
                            piece = b[k:] if k else b
                            gd = gd + piece if gd else piece
                            a_n -= n
                            break
                        piece = b[k : k + a_n]
                        gd = gd + piece if gd else piece
                        n -= a_n
                        k += a_n
                    elif kind == _INSERT:
                        la = len(a_s)
                        if la > n:
                            a_s = a_s[n:]
                            break
                        n -= la
                        k += la
                    elif kind == _DELETE:
                        if r:
                            out.append(r)
                            r = 0
                        gd = gd + a_s if gd else a_s
                    else:
                        raise OperationError("compose: operations have different lengths")
                    kind, a_n, a_s = _component(ca, i)
                    i += 1
                    if not n:
                        break
        # What other did not reach can only be self's final deletes.
        while kind == _DELETE:
            if r:
                out.append(r)
                r = 0
            gd = gd + a_s if gd else a_s
            kind, a_n, a_s = _component(ca, i)
            i += 1
        if kind != _END:
            raise OperationError("compose: operations have different lengths")
        if r:
            out.append(r)
        elif gi or gd:
            _close_gap(out, gi, gd)
        return _make(out, self.base_length, other.target_length)


#: The kinds of component, as :func:`_component` tells them apart.
_RETAIN: Final = 0
_INSERT: Final = 1
_DELETE: Final = 2
_END: Final = 3


def _component(comps: list[Component], i: int) -> tuple[int, int, str]:
    """Component ``i`` of ``comps`` as ``(kind, retained length, text)``; ``_END`` past the last.

    compose and transform keep what is left of the current component in one variable per
    kind rather than one of several types, which the compiled core holds unboxed; a delete's
    text stays the :class:`Delete` itself, so that a whole one can be reused.
    """
    if i >= len(comps):
        return _END, 0, ""
    c = comps[i]
    if isinstance(c, int):
        return _RETAIN, c, ""
    return (_INSERT if type(c) is str else _DELETE), 0, c


def _retained(c: Component) -> int:
    """The length of a component known to be a retain."""
    assert isinstance(c, int)
    return c


#: compose and transform copy whole runs of the first operation's components when it has more
#: than this many times as many components as the second (typically then a single splice,
#: whose retains span most of the first). With operations of similar size a retain rarely
#: spans more than a component or two, and looking ahead for a run would only cost time.
_COPY_RUN_RATIO = 4


def _output_span(comps: list[Component], i: int, n: int) -> tuple[int, int]:
    """The run of whole components from ``comps[i]`` on that produces at most ``n`` code points.

    compose copies such a run unchanged under one of the second operation's retains. It ends
    with a retain, so that what follows in the result can merge with it as usual.

    Returns:
        ``(end, used)``: the run is ``comps[i:end]`` (``end == i`` when there is none) and
        produces ``used`` code points (its retains and inserts).
    """
    end = i
    used = total = 0
    for j in range(i, len(comps)):
        c = comps[j]
        if isinstance(c, int):
            total += c
            if total > n:
                break
            end = j + 1
            used = total
        elif type(c) is str:
            total += len(c)
            if total > n:
                break
    return end, used


def _base_span(comps: list[Component], i: int, n: int) -> tuple[int, int, int]:
    """The run of whole components from ``comps[i]`` on that covers at most ``n`` of the base.

    transform copies such a run of ``a`` unchanged into ``a'`` under one of ``b``'s retains. It
    ends with a retain, so that what follows in the result can merge with it as usual.

    Returns:
        ``(end, used, kept)``: the run is ``comps[i:end]`` (``end == i`` when there is none),
        covers ``used`` code points of the base (its retains and deletes) and produces ``kept``
        (its retains and inserts), all of which ``b'`` retains.
    """
    end = i
    used = kept = total = keep = 0
    for j in range(i, len(comps)):
        c = comps[j]
        if isinstance(c, int):
            total += c
            if total > n:
                break
            keep += c
            end = j + 1
            used = total
            kept = keep
        elif type(c) is str:
            keep += len(c)
        else:
            total += len(c)
            if total > n:
                break
    return end, used, kept


def _make(components: list[Component], base_length: int, target_length: int) -> TextOperation:
    """An operation from already canonical components and their lengths."""
    op = TextOperation()
    op.components = components
    op.base_length = base_length
    op.target_length = target_length
    return op


def _close_gap(out: list[Component], inserted: str, deleted: str) -> None:
    """Write out a finished gap between retains: its insert, then its delete.

    compose and transform build a result as finished components followed by either a
    pending retain or a pending gap: the text inserted and the text deleted since the last
    retain. Pieces of one kind merge as they arrive and the gap is written insert first when
    the next retain starts it, which is exactly the canonical form :meth:`TextOperation.insert`
    and friends keep. ``deleted`` may still be one of the inputs' own :class:`Delete`
    components, which is reused rather than copied.
    """
    if inserted:
        out.append(inserted)
    if deleted:
        out.append(deleted if type(deleted) is Delete else Delete(deleted))


def transform(a: TextOperation, b: TextOperation) -> tuple[TextOperation, TextOperation]:
    """Transform two operations made on the same text; see the module docstring.

    Returns:
        ``(a', b')`` such that ``a`` then ``b'`` equals ``b`` then ``a'``. On a tie between two
        insertions at one place, ``a``'s text ends up first.
    """
    if a.base_length != b.base_length:
        raise OperationError("transform: operations apply to different texts")
    # Both walk the same base text. The loop runs over b's components and pulls a's along;
    # ``kind`` and ``x_n`` or ``x_s`` are what is left of a's current component (see
    # compose). An insert on either side becomes a retain on the other; a's insert goes first
    # when both insert at one place, so a's pending insert is always handled before anything
    # of b's at the same place.
    ca = a.components
    cb = b.components
    kind, x_n, x_s = _component(ca, 0)
    i = 1  # index of a's next component
    # As in compose: when a has many more components than b, a's components under one of b's
    # retains are copied into a' as one slice (see _base_span).
    copy_runs = len(ca) > _COPY_RUN_RATIO * len(cb)
    # a' and b' are built as in compose (see _close_gap): finished components, then a pending
    # retain or a pending gap.
    out_a: list[Component] = []
    out_b: list[Component] = []
    ra = rb = 0
    ia = da = ib = db = ""
    both = 0  # code points both delete, which the result lacks only once
    for y in cb:
        if isinstance(y, int):
            # b keeps ``n`` code points: a's components there carry over into a' as they are,
            # and b' keeps whatever a kept or inserted there (``keep``, added at the end).
            n = y
            keep = 0
            while True:
                if kind == _RETAIN:
                    if ia or da:
                        _close_gap(out_a, ia, da)
                        ia = da = ""
                    if x_n > n:
                        ra += n
                        keep += n
                        x_n -= n
                        break
                    ra += x_n
                    keep += x_n
                    n -= x_n
                    if copy_runs and n:
                        end, used, kept = _base_span(ca, i, n)
                        if end > i:
                            out_a.append(ra)
                            out_a.extend(ca[i : end - 1])
                            ra = _retained(ca[end - 1])
                            n -= used
                            keep += kept
                            i = end
                elif kind == _INSERT:
                    if ra:
                        out_a.append(ra)
                        ra = 0
                    ia += x_s
                    keep += len(x_s)
                elif kind == _DELETE:
                    if ra:
                        out_a.append(ra)
                        ra = 0
                    lx = len(x_s)
                    if lx > n:
                        da += x_s[:n]
                        x_s = x_s[n:]
                        break
                    da = da + x_s if da else x_s
                    n -= lx
                else:
                    raise OperationError("transform: operations have different lengths")
                kind, x_n, x_s = _component(ca, i)
                i += 1
                if not n:
                    break
            if keep:
                if ib or db:
                    _close_gap(out_b, ib, db)
                    ib = db = ""
                rb += keep
        elif type(y) is str:
            while kind == _INSERT:
                # a' inserts x, b' keeps it (then y goes after it).
                if ra:
                    out_a.append(ra)
                    ra = 0
                ia += x_s
                if ib or db:
                    _close_gap(out_b, ib, db)
                    ib = db = ""
                rb += len(x_s)
                kind, x_n, x_s = _component(ca, i)
                i += 1
            # a' keeps y, b' inserts it.
            if ia or da:
                _close_gap(out_a, ia, da)
                ia = da = ""
            ra += len(y)
            if rb:
                out_b.append(rb)
                rb = 0
            ib += y
        else:
            # b deletes ``n`` code points, from offset ``k`` of its deleted text on: b' deletes
            # what a kept there, a' drops what a deleted there too, and a's inserts survive.
            n = len(y)
            k = 0
            while True:
                if kind == _RETAIN:
                    if rb:
                        out_b.append(rb)
                        rb = 0
                    if x_n > n:
                        piece = y[k:] if k else y
                        db = db + piece if db else piece
                        x_n -= n
                        break
                    piece = y[k : k + x_n]
                    db = db + piece if db else piece
                    n -= x_n
                    k += x_n
                elif kind == _INSERT:
                    if ra:
                        out_a.append(ra)
                        ra = 0
                    ia += x_s
                    if ib or db:
                        _close_gap(out_b, ib, db)
                        ib = db = ""
                    rb += len(x_s)
                elif kind == _DELETE:
                    lx = len(x_s)
                    if lx > n:
                        both += n
                        x_s = x_s[n:]
                        break
                    both += lx
                    n -= lx
                    k += lx
                else:
                    raise OperationError("transform: operations have different lengths")
                kind, x_n, x_s = _component(ca, i)
                i += 1
                if not n:
                    break
    # What b did not reach can only be a's final insert.
    while kind == _INSERT:
        if ra:
            out_a.append(ra)
            ra = 0
        ia += x_s
        if ib or db:
            _close_gap(out_b, ib, db)
            ib = db = ""
        rb += len(x_s)
        kind, x_n, x_s = _component(ca, i)
        i += 1
    if kind != _END:
        raise OperationError("transform: operations have different lengths")
    if ra:
        out_a.append(ra)
    elif ia or da:
        _close_gap(out_a, ia, da)
    if rb:
        out_b.append(rb)
    elif ib or db:
        _close_gap(out_b, ib, db)
    result = a.target_length + b.target_length - a.base_length + both
    return _make(out_a, b.target_length, result), _make(out_b, a.target_length, result)


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
    comps: list[Any] = op.components
    pos = 0  # in the base text
    shift = 0  # result offset minus base offset so far
    for c in comps:
        t = type(c)
        if t is int:
            pos += c
            if pos > offset:
                break  # nothing further on moves the cursor
        elif t is str:
            if pos < offset or not before_inserts:
                shift += len(c)
        else:
            n = len(c)
            if pos + n > offset:
                shift -= offset - pos  # the cursor lands where the deletion was
                break
            shift -= n
            pos += n
    return offset + shift
