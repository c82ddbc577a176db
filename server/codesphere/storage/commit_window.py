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

BUSY_ABOVE: Final = 0.6
"""CPU the server process used, in cores, over a sampling period, that turns grouping on.

The event loop runs on one core: past 60 % of it, edits start to queue behind each other, and
waiting for company costs less than it saves. Below that, commits do not wait, since the wait
adds a few milliseconds to every edit's way to the others.

Grouping must take hold whenever a server that is not grouping is that busy. With the threshold
near the most a core can do, a server whose CPU sat just below it kept committing every edit on
its own, at a third more CPU per edit than when grouping, for as long as the load lasted."""

IDLE_BELOW: Final = 0.3
"""CPU share below which grouping turns off again.

Grouping itself lowers the CPU used (by about a third), so this must be well below BUSY_ABOVE,
or grouping would turn itself off and on again."""

PERIOD_S: Final = 0.1
"""How often the process's CPU use is sampled."""


class CommitWindow:
    """The writer's wait for company, following how busy the server process is.

    :meth:`observe` runs with each write queued; the writer thread only reads :attr:`seconds`.
    """

    def __init__(
        self,
        window_s: float = WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._cpu = cpu
        # The first sample is taken by the first observe().
        self._sampled_at: float | None = None
        self._sampled_cpu = 0.0
        #: The current wait: ``window_s`` while the server is busy, else 0.
        self.seconds = 0.0

    def observe(self) -> None:
        """Sample the process's load, at most once per period."""
        now = self._clock()
        if self._sampled_at is not None:
            elapsed = now - self._sampled_at
            if elapsed < PERIOD_S:
                return
            busy = (self._cpu() - self._sampled_cpu) / elapsed
            if busy > BUSY_ABOVE:
                self.seconds = self.window_s
            elif busy < IDLE_BELOW:
                self.seconds = 0.0
        self._sampled_at, self._sampled_cpu = now, self._cpu()
