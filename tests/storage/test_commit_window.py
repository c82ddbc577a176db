"""Group commit under load: writes wait for company only while the server is busy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from codesphere.storage import DocumentRecord, OpRecord, RoomRecord, SqliteStorage
from codesphere.storage.commit_window import BUSY_ABOVE, HOLD_S, PERIOD_S, CommitWindow


class Meter:
    """A fake clock and a fake process CPU clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.cpu = 5.0

    def spend(self, seconds: float, busy: float) -> None:
        self.now += seconds
        self.cpu += seconds * busy


def window(meter: Meter) -> CommitWindow:
    return CommitWindow(0.002, clock=lambda: meter.now, cpu=lambda: meter.cpu)


def switched_on(meter: Meter, busy: float = 1.0) -> CommitWindow:
    """A window that a sample of a server ``busy`` cores busy has just switched on."""
    w = window(meter)
    w.observe()
    meter.spend(PERIOD_S * 1.2, busy)
    w.observe()
    assert w.seconds == 0.002
    return w


def test_grouping_turns_on_when_busy_and_lasts_a_hold_after_the_last_busy_sample() -> None:
    meter = Meter()
    w = window(meter)
    w.observe()  # the first sample only records where the CPU clock is
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 1.2, BUSY_ABOVE - 0.1)
    w.observe()
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 1.2, BUSY_ABOVE + 0.1)
    w.observe()
    assert w.seconds == 0.002
    # Grouping lowers the load: samples under the threshold do not end it within the hold...
    meter.spend(HOLD_S / 2, BUSY_ABOVE / 2)
    w.observe()
    assert w.seconds == 0.002
    # ...a busy sample renews it...
    meter.spend(PERIOD_S * 1.2, BUSY_ABOVE + 0.1)
    w.observe()
    meter.spend(HOLD_S * 0.9, BUSY_ABOVE / 2)
    w.observe()
    assert w.seconds == 0.002
    # ...and once it is over, the next sample under the threshold ends it.
    meter.spend(HOLD_S * 0.2, BUSY_ABOVE / 2)
    w.observe()
    assert w.seconds == 0.0


def test_moderate_load_after_a_busy_moment_does_not_keep_grouping_on() -> None:
    """Many clients connecting at once, then a steady load well under the threshold."""
    meter = Meter()
    w = switched_on(meter)
    for _ in range(int(2 * HOLD_S / PERIOD_S)):
        meter.spend(PERIOD_S * 1.1, 0.45)
        w.observe()
    assert w.seconds == 0.0


def test_a_server_still_busy_without_grouping_turns_it_back_on_at_the_next_sample() -> None:
    meter = Meter()
    w = switched_on(meter, busy=0.8)
    meter.spend(HOLD_S * 1.1, 0.45)  # grouping on: the load falls
    w.observe()
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 1.2, 0.8)  # without it, the server is busy again
    w.observe()
    assert w.seconds == 0.002


def test_a_quiet_spell_between_writes_counts_as_idle() -> None:
    meter = Meter()
    w = switched_on(meter)
    meter.spend(5.0, 0.0)  # no writes for five seconds
    meter.spend(0.01, 1.0)
    w.observe()
    assert w.seconds == 0.0


def test_the_load_is_sampled_once_per_period() -> None:
    meter = Meter()
    w = window(meter)
    w.observe()
    meter.spend(PERIOD_S * 0.6, 1.0)
    w.observe()  # too soon: not a sample, so this busy stretch is not lost either
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 0.6, 1.0)
    w.observe()
    assert w.seconds == 0.002


async def test_writes_that_arrive_while_busy_share_one_commit(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite")
    await storage.open()
    try:
        await storage.create_room(RoomRecord("r", "room", 1.0, 1.0))
        for i in range(12):
            doc = DocumentRecord("r", f"d{i}", f"{i}.txt", "\n", 1.0, 0)
            await storage.create_document(doc, "")
        # A server that is always busy: its CPU clock runs with the wall clock.
        storage.commit_window = CommitWindow(0.25, cpu=time.monotonic)
        storage.commit_window.observe()
        await asyncio.sleep(PERIOD_S * 1.2)
        before = storage.commit_count

        async def edit(i: int) -> None:
            await storage.append_ops("r", f"d{i}", 0, [OpRecord(1, "u", 1.0, [str(i)])])

        tasks = []
        for i in range(12):
            tasks.append(asyncio.create_task(edit(i)))
            await asyncio.sleep(0.002)  # each in a later loop turn than the one before
        await asyncio.gather(*tasks)
        # The first write commits at once; the writer then waits a quarter second, and the
        # other eleven share the next commit (or two, on a machine that stalls this test).
        assert 2 <= storage.commit_count - before <= 3
        for i in range(12):
            assert (await storage.load_document("r", f"d{i}")).record.revision == 1
    finally:
        await storage.close()


async def test_an_idle_server_commits_each_write_at_once(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite")
    await storage.open()
    try:
        await storage.create_room(RoomRecord("r", "room", 1.0, 1.0))
        await storage.create_document(DocumentRecord("r", "d", "a.txt", "\n", 1.0, 0), "")
        storage.commit_window = CommitWindow(30.0)  # would stall every write if it applied
        await asyncio.sleep(PERIOD_S * 1.2)  # a quiet server: the next sample finds it idle
        before = storage.commit_count
        for revision in range(1, 6):
            await asyncio.wait_for(
                storage.append_ops("r", "d", revision - 1, [OpRecord(revision, "u", 1.0, ["x"])]),
                timeout=10,
            )
        assert storage.commit_count - before == 5
    finally:
        await storage.close()
