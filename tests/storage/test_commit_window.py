"""Group commit under load: writes wait for company only while the server is busy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from codesphere.storage import DocumentRecord, OpRecord, RoomRecord, SqliteStorage
from codesphere.storage.commit_window import BUSY_ABOVE, IDLE_BELOW, PERIOD_S, CommitWindow


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


def test_grouping_turns_on_when_the_server_is_busy_and_off_when_it_is_idle() -> None:
    meter = Meter()
    w = window(meter)
    w.observe()  # the first sample only records where the CPU clock is
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 1.2, BUSY_ABOVE + 0.1)
    w.observe()
    assert w.seconds == 0.002
    # Between the two thresholds it stays as it was: no flapping around one value.
    meter.spend(PERIOD_S * 1.2, (BUSY_ABOVE + IDLE_BELOW) / 2)
    w.observe()
    assert w.seconds == 0.002
    meter.spend(PERIOD_S * 1.2, IDLE_BELOW - 0.1)
    w.observe()
    assert w.seconds == 0.0
    meter.spend(PERIOD_S * 1.2, (BUSY_ABOVE + IDLE_BELOW) / 2)
    w.observe()
    assert w.seconds == 0.0


def test_a_quiet_spell_between_writes_counts_as_idle() -> None:
    meter = Meter()
    w = window(meter)
    w.observe()
    meter.spend(PERIOD_S * 1.2, 1.0)
    w.observe()
    assert w.seconds == 0.002
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
