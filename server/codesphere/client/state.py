"""The client side of the revision rule, with no I/O: what every thin client does.

A client holds its text, the revision it is at and how many of its edits await an
acknowledgement. It applies local edits at once, and server edits only when the server computed
them knowing all of its own edits. It never transforms anything; see protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    unacked: int = 0

    def local_edit(self, changes: list[ContentChange]) -> tuple[int, list[ContentChange]]:
        """Apply the user's changes now; return ``(base, changes)`` to send to the server.

        Line ends are converted to ``\\n`` here, at the edge, as every client must.
        """
        changes = [
            ContentChange(c.range, c.text.replace("\r\n", "\n").replace("\r", "\n"))
            for c in changes
        ]
        self.text = apply_changes(self.text, changes, self.encoding)
        self.unacked += 1
        return self.revision, changes

    def on_ack(self, revision: int, catch_up: list[ContentChange]) -> None:
        """An edit of ours was committed as ``revision``."""
        self.unacked -= 1
        if self.unacked == 0:
            self.text = apply_changes(self.text, catch_up, self.encoding)
            self.revision = revision
        # Otherwise drop the catch-up: the next acknowledgement carries it again.

    def on_remote(self, revision: int, changes: list[ContentChange]) -> bool:
        """A server edit that produces ``revision``; returns whether it was applied.

        Raises:
            OutOfSync: the edit skips revisions although nothing of ours is pending.
        """
        if self.unacked or revision <= self.revision:
            return False
        if revision != self.revision + 1:
            raise OutOfSync(f"got revision {revision} at {self.revision}")
        self.text = apply_changes(self.text, changes, self.encoding)
        self.revision = revision
        return True

    def reset(self, text: str, revision: int) -> None:
        """Start over from the server's text (after a resync)."""
        self.text = text
        self.revision = revision
        self.unacked = 0
