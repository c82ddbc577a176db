"""The client side of the revision rule, with no I/O: what every thin client does.

A client holds its text, the revision it is at and how many of its edits await an
acknowledgement. It applies local edits at once, and server edits only when the server computed
them knowing all of its own edits. It never transforms anything; see protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesphere.core.changes import ContentChange, apply_changes
from codesphere.core.positions import Encoding


class OutOfSync(Exception):
    """The client received a server edit it cannot place; it must re-open the document."""


@dataclass(slots=True)
class ClientDocument:
    """One open document as a client sees it."""

    path: str
    text: str
    revision: int
    encoding: Encoding
    #: Our edits since ``revision`` last moved, oldest first, acknowledged or not: all of
    #: them are resent after a reconnect, since our text holds them all.
    pending: list[PendingEdit] = field(default_factory=list)
    #: How many of ``pending`` (the newest ones) await an acknowledgement.
    unacked: int = 0
    last_seq: int = 0
    #: Changes applied to ``text`` but not sent yet: a client that keeps one edit in flight
    #: gathers keystrokes here and sends them as one edit when the answer comes.
    unsent: list[ContentChange] = field(default_factory=list)

    def type(self, changes: list[ContentChange]) -> None:
        """Apply the user's changes now and keep them for the next :meth:`take_unsent`.

        Line ends are converted to ``\\n`` here, at the edge, as every client must.
        """
        changes = [
            ContentChange(c.range, c.text.replace("\r\n", "\n").replace("\r", "\n"))
            for c in changes
        ]
        self.text = apply_changes(self.text, changes, self.encoding)
        self.unsent.extend(changes)

    def take_unsent(self) -> PendingEdit | None:
        """The edit that sends every unsent change (``None`` when there is none)."""
        return self._send_unsent() if self.unsent else None

    def local_edit(self, changes: list[ContentChange]) -> PendingEdit:
        """Apply the user's changes now; return the edit that sends them (and any unsent)."""
        self.type(changes)
        return self._send_unsent()

    def _send_unsent(self) -> PendingEdit:
        self.last_seq += 1
        edit = PendingEdit(self.last_seq, self.revision, self.unsent)
        self.unsent = []
        self.pending.append(edit)
        self.unacked += 1
        return edit

    @property
    def in_sync_with_server(self) -> bool:
        """Whether every local change has been acknowledged (server edits then apply)."""
        return not self.unacked and not self.unsent

    def on_ack(self, revision: int, catch_up: list[ContentChange]) -> None:
        """Our oldest unacknowledged edit was committed; the head is at ``revision``."""
        self.unacked -= 1
        if self.in_sync_with_server:
            self.pending.clear()
            self.text = apply_changes(self.text, catch_up, self.encoding)
            self.revision = revision
        # Otherwise drop the catch-up: the next acknowledgement carries it again.

    def on_remote(self, revision: int, changes: list[ContentChange]) -> bool:
        """A server edit that produces ``revision``; returns whether it was applied.

        Raises:
            OutOfSync: the edit skips revisions although nothing of ours is pending.
        """
        if not self.in_sync_with_server or revision <= self.revision:
            return False
        if revision != self.revision + 1:
            raise OutOfSync(f"got revision {revision} at {self.revision}")
        self.text = apply_changes(self.text, changes, self.encoding)
        self.revision = revision
        return True

    def reset(self, text: str, revision: int) -> None:
        """Start over from the server's text (after a resync); pending edits are abandoned."""
        self.text = text
        self.revision = revision
        self.pending.clear()
        self.unacked = 0
        self.unsent = []

    def resume(self) -> list[PendingEdit]:
        """After a reconnect: every edit to resend, in order (all are unacknowledged again)."""
        self.unacked = len(self.pending)
        return list(self.pending)


@dataclass(frozen=True, slots=True)
class PendingEdit:
    """One ``textDocument/didChange`` as sent: resent unchanged after a reconnect."""

    seq: int
    base: int
    changes: list[ContentChange]
