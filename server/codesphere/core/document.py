"""A document: canonical text, its revision, and the recent part of its op log.

Revision ``r`` is the text after ``r`` operations. The log entry for revision ``r`` holds the
operation that turned revision ``r - 1`` into ``r``, who made it and when (the caller supplies
the time: the core has no clock). The whole history lives in storage; in memory a document keeps
a window of recent entries, enough to move late edits forward and to rebuild recent texts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from codesphere.core.errors import OperationError, ResyncRequired
from codesphere.core.operation import TextOperation

#: Entries kept in memory per document by default.
DEFAULT_WINDOW = 4096

#: At most this many recent texts are kept to answer :meth:`Document.text_at` at once...
RECENT_TEXTS = 64
#: ...and at most this many code points of them in all, so big documents keep few or none.
RECENT_TEXT_BUDGET = 1 << 20


# Not frozen: mypyc compiles a frozen dataclass's __init__ as a call to the interpreted one.
# Nothing changes an entry once it is made.
@dataclass(slots=True)
class LogEntry:
    """One committed operation."""

    revision: int  # the revision this operation produces
    author: str  # the client id that made it
    timestamp: float
    op: TextOperation
    seq: int = 0  # the author's edit counter for this document (0: none)


def normalize_eol(text: str) -> tuple[str, str]:
    """Return ``text`` with ``\\n`` line ends and the style it mostly used (``\\n``/``\\r\\n``)."""
    crlf = text.count("\r\n")
    if "\r" not in text:
        return text, "\n"
    lf = text.count("\n") - crlf
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return normalized, ("\r\n" if crlf > lf else "\n")


class Document:
    """Canonical text plus the recent op log.

    Args:
        text: the text at ``revision``; must already use ``\\n`` line ends.
        revision: its revision.
        eol: the line-end style files of this document are written with on disk.
        window: how many recent log entries to keep in memory.
        history: log entries that led up to ``revision`` (the newest last), so that edits
            based on slightly older revisions can still be placed after a restart.
    """

    __slots__ = ("_first", "_keep", "_log", "_recent", "eol", "revision", "text", "window")

    def __init__(
        self,
        text: str = "",
        revision: int = 0,
        eol: str = "\n",
        window: int = DEFAULT_WINDOW,
        history: list[LogEntry] | None = None,
    ) -> None:
        if "\r" in text:
            raise OperationError("document text must use \\n line ends")
        self.text = text
        self.revision = revision
        self.eol = eol
        self.window = max(1, window)
        self._log: list[LogEntry] = list(history or ())[-self.window :]
        self._first = revision + 1 - len(self._log)  # revision produced by _log[0]
        if self._log and self._log[-1].revision != revision:
            raise OperationError("history does not end at the document's revision")
        # Texts of the revisions just before the head, newest last: clients a few edits behind
        # name them in every edit while others type. None are kept until one is asked for.
        self._recent: deque[str] = deque()
        self._keep = 0

    def commit(self, op: TextOperation, author: str, timestamp: float, seq: int = 0) -> LogEntry:
        """Apply ``op`` to the head and record it; returns the new log entry."""
        text = op.apply(self.text)
        recent = self._recent
        if self._keep:
            recent.append(self.text)
        self.text = text
        if recent:
            limit = min(self._keep, RECENT_TEXT_BUDGET // max(1, len(self.text)))
            while len(recent) > limit:
                recent.popleft()
        self.revision += 1
        entry = LogEntry(self.revision, author, timestamp, op, seq)
        log = self._log
        log.append(entry)
        if len(log) > 2 * self.window:
            drop = len(log) - self.window
            del log[:drop]
            self._first += drop
        return entry

    def replay(self, entry: LogEntry) -> None:
        """Re-apply a stored entry at start-up (it must be the next revision)."""
        if entry.revision != self.revision + 1:
            raise OperationError(f"replay of revision {entry.revision} at {self.revision}")
        self.commit(entry.op, entry.author, entry.timestamp, entry.seq)

    @property
    def oldest_available(self) -> int:
        """The oldest revision from which :meth:`entries_since` can still answer."""
        return self._first - 1

    def entries_since(self, revision: int) -> list[LogEntry]:
        """Log entries after ``revision`` up to the head.

        Raises:
            ResyncRequired: ``revision`` is older than the in-memory window.
        """
        if revision < self._first - 1:
            raise ResyncRequired(
                f"revision {revision} is too far behind (oldest kept: {self._first - 1})"
            )
        return self._log[revision - self._first + 1 :]

    def ops_since(self, revision: int) -> list[TextOperation]:
        """Operations taking ``revision`` to the head."""
        return [e.op for e in self.entries_since(revision)]

    def text_at(self, revision: int) -> str:
        """The text as it was at ``revision``.

        Rebuilt backwards from the oldest text kept (or the head) by undoing the log. Asking
        for a text ``k`` revisions back starts keeping the last ``k`` texts, within
        :data:`RECENT_TEXTS` and :data:`RECENT_TEXT_BUDGET`, so the next such question costs
        nothing: while others type, a client's edits keep naming a revision a few behind.
        """
        back = self.revision - revision
        if back == 0:
            return self.text
        entries = self.entries_since(revision)  # checks that the log reaches back that far
        recent = self._recent
        if 0 < back <= len(recent):
            return recent[-back]
        text = recent[0] if recent else self.text
        for entry in reversed(entries[: len(entries) - len(recent)]):
            text = entry.op.invert().apply(text)
        if back > self._keep:
            self._keep = min(back, RECENT_TEXTS, RECENT_TEXT_BUDGET // max(1, len(self.text)))
        return text
