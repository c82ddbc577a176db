"""LocalSequencer: append-if-head-is-revision over a real SQLite storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codesphere.ordering import LocalSequencer, Sequencer
from codesphere.storage import (
    DocumentRecord,
    NotFound,
    OpRecord,
    RevisionConflict,
    RoomRecord,
    SqliteStorage,
)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    """An open SQLite storage with room ``r`` holding an empty document ``d``."""
    store = SqliteStorage(tmp_path / "seq.db")
    await store.open()
    await store.create_room(RoomRecord("r", "room", 0.0, 0.0))
    await store.create_document(DocumentRecord("r", "d", "main.py", "\n", 0.0, 0), "")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def sequencer(storage: SqliteStorage) -> LocalSequencer:
    """A LocalSequencer over the storage fixture."""
    return LocalSequencer(storage)


def op(revision: int, author: str = "u1") -> OpRecord:
    return OpRecord(revision, author, float(revision), ["ins", revision, author])


def test_local_sequencer_implements_protocol(sequencer: LocalSequencer) -> None:
    """LocalSequencer satisfies the Sequencer protocol."""
    typed: Sequencer = sequencer
    assert isinstance(typed, Sequencer)


async def test_append_then_read_since(sequencer: LocalSequencer) -> None:
    """Appended ops are returned by read_since in revision order after the given revision."""
    await sequencer.append("r", "d", 0, [op(1), op(2)])
    await sequencer.append("r", "d", 2, [op(3)])
    assert await sequencer.read_since("r", "d", 0) == [op(1), op(2), op(3)]
    assert await sequencer.read_since("r", "d", 2) == [op(3)]
    assert await sequencer.read_since("r", "d", 3) == []


async def test_append_is_durable_in_storage(
    sequencer: LocalSequencer, storage: SqliteStorage
) -> None:
    """Once append returns, the ops and the new head are in storage."""
    await sequencer.append("r", "d", 0, [op(1), op(2)])
    loaded = await storage.load_document("r", "d")
    assert (loaded.record.revision, loaded.ops) == (2, [op(1), op(2)])


async def test_append_at_stale_head_conflicts(sequencer: LocalSequencer) -> None:
    """Appending on a head that has moved raises RevisionConflict and appends nothing."""
    await sequencer.append("r", "d", 0, [op(1)])
    with pytest.raises(RevisionConflict):
        await sequencer.append("r", "d", 0, [op(1, "u2")])
    with pytest.raises(RevisionConflict):
        await sequencer.append("r", "d", 1, [op(3)])
    assert await sequencer.read_since("r", "d", 0) == [op(1)]


async def test_unknown_document_raises_not_found(sequencer: LocalSequencer) -> None:
    """Both methods raise NotFound for a document that does not exist."""
    with pytest.raises(NotFound):
        await sequencer.append("r", "missing", 0, [op(1)])
    with pytest.raises(NotFound):
        await sequencer.read_since("r", "missing", 0)


async def test_concurrent_appends_on_same_head_have_one_winner(
    sequencer: LocalSequencer,
) -> None:
    """Concurrent appends based on the same head: exactly one wins, the rest conflict."""
    results = await asyncio.gather(
        *(sequencer.append("r", "d", 0, [op(1, f"u{i}")]) for i in range(10)),
        return_exceptions=True,
    )
    assert sum(result is None for result in results) == 1
    assert all(isinstance(result, RevisionConflict) for result in results if result is not None)
    assert len(await sequencer.read_since("r", "d", 0)) == 1


async def test_retrying_writers_produce_one_total_order(sequencer: LocalSequencer) -> None:
    """Writers that catch up with read_since and retry on conflict yield one gap-free history."""
    per_writer = 15

    async def writer(name: str) -> None:
        head = 0
        written = 0
        while written < per_writer:
            try:
                await sequencer.append("r", "d", head, [op(head + 1, name)])
            except RevisionConflict:
                head += len(await sequencer.read_since("r", "d", head))
                continue
            head += 1
            written += 1
            await asyncio.sleep(0)

    names = [f"w{i}" for i in range(5)]
    await asyncio.gather(*(writer(name) for name in names))

    history = await sequencer.read_since("r", "d", 0)
    assert [o.revision for o in history] == list(range(1, 5 * per_writer + 1))
    for name in names:
        assert sum(o.author == name for o in history) == per_writer
    assert all(o.op == ["ins", o.revision, o.author] for o in history)
