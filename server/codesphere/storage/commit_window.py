"""Group commit under load: how long a write waits for others to share its commit.

A commit costs about the same whatever it carries: the write-ahead-log append, SQLite's file
locks, handing the outcome back to the event loop. When the server has CPU to spare, a write
commits at once. When it is busy, an edit that waits a little for the next ones shares one
commit with them, and the clients, whose acknowledgements then come a little later, gather more
keystrokes into each request: both cut the CPU spent per keystroke, which is what a busy server
is short of.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["CommitWindow"]

WINDOW_S: Final = 0.004
"""How long the writer waits after a commit, while the server is busy, for the next group.

Measured in scenario (c) of ``bench/load.py`` at 6,400 edits/s: 2 ms gave about 88 µs of CPU per
edit at a p99 of 8 ms, 3 ms 79 µs at 11 ms, 4 ms 66 µs at 14 ms. A busy server is short of
CPU, not of milliseconds: people do not see the difference between 8 and 14."""

BUSY_ABOVE: Final = 0.5
"""CPU the event loop's thread used, in cores, over a sampling period, that turns grouping on.

Every request is handled on that one thread: past half of a core, edits start to queue behind
each other, and waiting for company costs less than it saves. Below that, commits do not wait,
since the wait adds a few milliseconds to every edit's way to the others. The loop's own time
is the measure, not the whole process's: the storage threads' work comes in bursts (a
checkpoint each second) that made a moderately loaded server look busy for a moment."""

HOLD_S: Final = 2.0
"""How long grouping lasts after the last sample that found the server busy.

Grouping lowers the CPU used, by a third or more when clients type fast, so while it is on
the load no longer tells whether the server would be busy without it. It is therefore switched
off after a while; if the server is still busy, the next sample switches it back on (about 5 %
of the time is spent finding out). A fixed threshold for switching off instead left grouping
on under moderate load after any busy moment, such as many clients connecting at once."""

PERIOD_S: Final = 0.1
"""How often the event loop thread's CPU use is sampled."""


class CommitWindow:
    """The writer's wait for company, following how busy the event loop is.

    :meth:`observe` runs on the event loop's thread with each write queued (``cpu`` is that
    thread's CPU clock); the writer thread only reads :attr:`seconds`.
    """

    def __init__(
        self,
        window_s: float = WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._cpu = cpu
        # The first sample is taken by the first observe().
        self._sampled_at: float | None = None
        self._sampled_cpu = 0.0
        self._busy_until = 0.0
        #: The current wait: ``window_s`` while the server is busy, else 0.
        self.seconds = 0.0

    def observe(self) -> None:
        """Sample the event loop's load, at most once per period."""
        now = self._clock()
        if self._sampled_at is not None:
            elapsed = now - self._sampled_at
            if elapsed < PERIOD_S:
                return
            busy = (self._cpu() - self._sampled_cpu) / elapsed
            if busy > BUSY_ABOVE:
                self.seconds = self.window_s
                self._busy_until = now + HOLD_S
            elif now >= self._busy_until:
                self.seconds = 0.0
        self._sampled_at, self._sampled_cpu = now, self._cpu()
