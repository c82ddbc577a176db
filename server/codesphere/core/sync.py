"""The sync engine of one document: its text, its log, and a bridge per client.

Clients never transform. The rule they follow (protocol.md, "The revision rule"):

* a client keeps the revision ``rev`` it is at, and names it as ``base`` in every edit;
* it applies a server edit labelled ``r`` only when it has no unacknowledged edit of its own
  and ``r == rev + 1``; otherwise it drops it;
* the acknowledgement of an edit carries a *catch-up*: the changes that take the client's text
  (with that edit) to the committed revision. It applies them — and moves to that revision —
  only if it has no other unacknowledged edit; otherwise it drops them too.

So the server edit that every in-sync client receives is the committed operation itself: the
same bytes for all, encoded once per position encoding. Everything a client dropped, the bridge
re-sends folded into the next catch-up.

What the bridge knows about a client when an edit with ``base`` arrives::

    base >= label:  the client applied the last catch-up (if any) and the server edits up to
                    ``base``, and nothing else. Its view is the text at ``base``; the edits it
                    has not seen are the log after ``base``.

    base <  label:  the client still had an edit in flight when the last acknowledgement came,
                    so it dropped that catch-up and everything since; ``base`` is the same as in
                    its previous edit. Its view is ``view_text`` (its text after that edit);
                    the unseen edits are ``catch_up`` followed by the log after ``label``.

         view ──── client's edit E ────▶ view·E
          │                                 │
     U = unseen edits                  U' (next catch-up)
          ▼                                 ▼
        head ────────── E' ──────────▶ head + 1      (U', E') = transform(U, E)

What a bridge keeps is bounded: one composed catch-up and one text. A client that falls more
than ``max_lag`` revisions behind what it last saw — its ``base``, or its last acknowledgement
while it keeps typing without pause — gets :class:`ResyncRequired` instead of an ever longer
re-send.

Resent edits. A client that lost its connection reopens at the revision it was at and resends
its unacknowledged edits with their ``seq`` numbers. An edit whose ``(client, seq)`` is already in
the log is not committed again: the bridge recomputes what it would have become — the same
transform, which must give the committed operation back — and acknowledges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesphere.core.changes import ContentChange, changes_to_op, op_to_changes
from codesphere.core.document import Document, LogEntry
from codesphere.core.errors import (
    DocumentTooLarge,
    PositionError,
    ResyncRequired,
    RevisionError,
    SyncError,
)
from codesphere.core.operation import TextOperation, compose_all, transform, transform_offset
from codesphere.core.positions import Encoding, Position, offset_at, position_at

#: A selection as code-point offsets ``(anchor, active)``; the cursor is at ``active``.
Selection = tuple[int, int]


@dataclass(slots=True)
class Bridge:
    """What the server knows of one client's view of one document."""

    encoding: Encoding
    opened_at: int
    label: int  # the revision the client reaches by applying ``catch_up``
    view_text: str  # the client's text after its last edit (meaningful while base < label)
    catch_up: TextOperation | None = None  # view_text -> text at ``label``; None: nothing
    last_base: int = -1  # the base named by the client's last edit
    broken: str | None = None  # why the client must re-open before editing again
    selections: list[Selection] = field(default_factory=list)  # offsets at head


@dataclass(slots=True)  # not frozen, for the compiler's sake (see LogEntry)
class Ack:
    """The result of a committed edit."""

    entry: LogEntry
    base_text: str  # the head text before the commit, for converting ``entry.op``
    to_head: TextOperation  # takes the author's text (``view``) to ``revision``
    view: str  # the author's text with this edit
    encoding: Encoding  # the author's
    revision: int  # the head: where the author is once it applies the catch-up
    duplicate: bool = False  # a resent edit, committed before: nothing new to broadcast

    @property
    def catch_up(self) -> list[ContentChange]:
        """``to_head`` as content changes in the author's encoding.

        Converted on demand: the server writes them straight to JSON instead
        (``codec.op_json_changes``), and an author that keeps typing drops them anyway.
        """
        return op_to_changes(self.to_head, self.view, self.encoding)


class DocumentSync:
    """Orders the edits of one document and keeps every open client's bridge.

    Args:
        document: the document, at its head.
        max_lag: the most server edits an edit may be behind before a resync is asked for.
    """

    def __init__(
        self, document: Document, max_lag: int = 2048, max_length: int = 8 * 1024 * 1024
    ) -> None:
        self.doc = document
        self.max_length = max_length
        self.max_lag = min(max_lag, document.window)
        self.bridges: dict[str, Bridge] = {}
        # The newest seq committed per client, from the log kept in memory.
        self.last_seq: dict[str, int] = {}
        for entry in document.entries_since(document.oldest_available):
            if entry.seq:
                self.last_seq[entry.author] = entry.seq

    # -- opening ---------------------------------------------------------------------------

    def open(self, client: str, encoding: Encoding, resume: int | None = None) -> tuple[str, int]:
        """(Re)open the document for ``client``; returns the head text and revision.

        Args:
            client: the client's id.
            encoding: its position encoding.
            resume: the revision a reconnecting client's own text is at; it will resend its
                unacknowledged edits based on it.

        Raises:
            RevisionError: ``resume`` is ahead of the head.
            ResyncRequired: ``resume`` is more than ``max_lag`` revisions behind: the edits
                the client would resend could not be placed.
        """
        doc = self.doc
        at = doc.revision
        view = doc.text
        if resume is not None:
            if resume > doc.revision or resume < 0:
                raise RevisionError(f"revision {resume} is ahead of the document")
            if doc.revision - resume > self.max_lag:
                raise ResyncRequired(f"revision {resume} is too far behind; open without it")
            view = doc.text_at(resume)
            at = resume
        old = self.bridges.get(client)
        self.bridges[client] = Bridge(
            encoding,
            opened_at=at,
            label=at,
            view_text=view,
            selections=old.selections if old else [],
        )
        return doc.text, doc.revision

    def close(self, client: str) -> None:
        """Forget ``client``'s bridge (closing twice is harmless)."""
        self.bridges.pop(client, None)

    def is_open(self, client: str) -> bool:
        """Whether ``client`` has the document open."""
        return client in self.bridges

    # -- edits -----------------------------------------------------------------------------

    def _bridge(self, client: str) -> Bridge:
        bridge = self.bridges.get(client)
        if bridge is None:
            raise ResyncRequired("the document is not open on this connection")
        return bridge

    def _view(self, bridge: Bridge, base: int) -> tuple[str, list[TextOperation]]:
        """The client's view at ``base`` and the operations it has not seen, in order."""
        doc = self.doc
        if base > doc.revision:
            raise RevisionError(f"revision {base} is ahead of the document ({doc.revision})")
        if base < bridge.opened_at:
            raise RevisionError(f"revision {base} is older than the open ({bridge.opened_at})")
        if base >= bridge.label:
            if doc.revision - base > self.max_lag:
                raise ResyncRequired(f"revision {base} is too far behind ({doc.revision})")
            view = doc.text if base == doc.revision else doc.text_at(base)
            return view, doc.ops_since(base)
        if base != bridge.last_base:
            raise RevisionError(
                f"revision {base} was never this client's revision (expected {bridge.last_base}"
                f" or at least {bridge.label})"
            )
        # A client that never stops typing keeps naming the same old base; what it has not
        # seen is the bridge's catch-up plus the log since the last acknowledgement, so only
        # that stretch of log has to be in memory.
        if doc.revision - bridge.label > self.max_lag:
            raise ResyncRequired(f"revision {bridge.label} is too far behind ({doc.revision})")
        unseen = doc.ops_since(bridge.label)
        if bridge.catch_up is not None:
            unseen.insert(0, bridge.catch_up)
        return bridge.view_text, unseen

    def change(
        self,
        client: str,
        base: int,
        changes: list[ContentChange],
        timestamp: float,
        seq: int = 0,
    ) -> Ack:
        """Commit a client's edit made on its view at ``base``.

        A ``seq`` already committed for ``client`` is acknowledged again, not re-applied.

        Raises:
            SyncError: the edit is refused and the document is unchanged. The bridge then
                requires a resync: the client's later edits build on the refused one.
        """
        bridge = self._bridge(client)
        if bridge.broken is not None:
            raise ResyncRequired(bridge.broken)
        doc = self.doc
        duplicate: LogEntry | None = None
        try:
            if seq and seq <= self.last_seq.get(client, 0):
                duplicate = self._find(client, seq)
            view, unseen = self._view(bridge, base)
            op, new_view = changes_to_op(view, changes, bridge.encoding)
            growth = len(new_view) - len(view)
            if growth > 0 and len(doc.text) + growth > self.max_length:
                raise DocumentTooLarge(f"documents are limited to {self.max_length} characters")
            if duplicate is not None:
                # Only what came before the duplicate is unseen by the edit it answers.
                keep = len(unseen) - (doc.revision - duplicate.revision + 1)
                if keep < 0:
                    raise RevisionError(f"edit {seq} was committed before revision {base}")
                unseen = unseen[:keep]
        except SyncError as exc:
            bridge.broken = f"an earlier edit was refused: {exc}"
            raise
        if unseen:
            catch_up, committed = transform(_fold(unseen), op)
        else:
            catch_up, committed = TextOperation.identity(len(new_view)), op
        base_text = doc.text
        if duplicate is None:
            entry = doc.commit(committed, client, timestamp, seq)
            if seq:
                self.last_seq[client] = seq
            self._move_selections(entry.op, author=client)
        else:
            if committed != duplicate.op:
                bridge.broken = f"resent edit {seq} differs from the one committed"
                raise ResyncRequired(bridge.broken)
            entry = duplicate
        bridge.last_base = base
        bridge.label = entry.revision
        bridge.catch_up = None if catch_up.is_noop() else catch_up
        in_sync = bridge.catch_up is None and entry.revision == doc.revision
        bridge.view_text = doc.text if in_sync else new_view
        # The acknowledgement takes the client to the head, past anything committed since.
        later = doc.ops_since(entry.revision)
        to_head = compose_all([catch_up, *later], len(new_view))
        return Ack(
            entry,
            base_text,
            to_head,
            new_view,
            bridge.encoding,
            doc.revision,
            duplicate is not None,
        )

    def _find(self, client: str, seq: int) -> LogEntry:
        """The log entry of ``client``'s edit ``seq``, which must still be in memory."""
        for entry in reversed(self.doc.entries_since(self.doc.oldest_available)):
            if entry.author == client and entry.seq == seq:
                return entry
        raise ResyncRequired(f"edit {seq} is too old to be recognised")

    # -- presence --------------------------------------------------------------------------

    def _move_selections(self, op: TextOperation, author: str) -> None:
        for name, bridge in self.bridges.items():
            if bridge.selections:
                own = name == author
                bridge.selections = [
                    (
                        transform_offset(op, a, before_inserts=not own),
                        transform_offset(op, b, before_inserts=not own),
                    )
                    for a, b in bridge.selections
                ]

    def set_selections(
        self, client: str, base: int, selections: list[tuple[Position, Position]]
    ) -> list[Selection]:
        """Record a client's selections, given in its encoding at ``base``; offsets at head.

        Raises:
            SyncError: a position or revision is wrong; nothing is recorded.
        """
        bridge = self._bridge(client)
        view, unseen = self._view(bridge, base)
        enc = bridge.encoding
        offsets = [
            (offset_at(view, *anchor, enc), offset_at(view, *active, enc))
            for anchor, active in selections
        ]
        for op in unseen:
            offsets = [
                (
                    transform_offset(op, a, before_inserts=True),
                    transform_offset(op, b, before_inserts=True),
                )
                for a, b in offsets
            ]
        if any(
            not (0 <= a <= len(self.doc.text) and 0 <= b <= len(self.doc.text)) for a, b in offsets
        ):
            raise PositionError("selection outside the document")
        bridge.selections = offsets
        return offsets

    def selections_at_head(
        self, client: str, encoding: Encoding
    ) -> list[tuple[Position, Position]]:
        """``client``'s selections as positions in ``encoding`` at the head revision."""
        bridge = self.bridges.get(client)
        if bridge is None:
            return []
        text = self.doc.text
        return [
            (position_at(text, a, encoding), position_at(text, b, encoding))
            for a, b in bridge.selections
        ]


def _fold(unseen: list[TextOperation]) -> TextOperation:
    """Compose the edits a client has not seen.

    The first may be a bridge's kept catch-up, which grows while its client types without
    pause and is then much bigger than the rest: those are folded together first, so that
    the big one is walked once rather than once per round of :func:`compose_all`.
    """
    first, rest = unseen[0], unseen[1:]
    return first.compose(compose_all(rest, first.target_length)) if rest else first
