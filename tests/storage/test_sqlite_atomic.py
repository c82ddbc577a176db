"""A write that fails half-way leaves nothing behind, alone or sharing a commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from codesphere.storage import (
    DocumentRecord,
    OpRecord,
    RevisionConflict,
    RoomRecord,
    SqliteStorage,
    StorageError,
)


async def test_a_failed_insert_rolls_back_the_head_it_moved(tmp_path: Path) -> None:
    """append_ops moves the head first, then inserts: an insert that fails must undo the move."""
    path = tmp_path / "db.sqlite"
    storage = SqliteStorage(path)
    await storage.open()
    try:
        await storage.create_room(RoomRecord("r", "room", 1.0, 1.0))
        await storage.create_document(DocumentRecord("r", "d", "a.txt", "\n", 1.0, 0), "")
        await storage.append_ops("r", "d", 0, [OpRecord(1, "u", 1.0, ["a"])])
        # A stray row where revision 3 will go: the second insert of the next append fails.
        stray = sqlite3.connect(path, isolation_level=None)
        try:
            stray.execute(
                "INSERT INTO ops (room_id, doc_id, revision, author, timestamp, op, seq, member)"
                " VALUES ('r', 'd', 3, 'x', 1.0, '[1]', 0, 'x')"
            )
        finally:
            stray.close()
        with pytest.raises(StorageError):
            await storage.append_ops(
                "r", "d", 1, [OpRecord(2, "u", 1.0, [1, "b"]), OpRecord(3, "u", 1.0, [2, "c"])]
            )
        loaded = await storage.load_document("r", "d")
        assert loaded.record.revision == 1
        assert [o.revision for o in await storage.read_ops("r", "d", 0, limit=1)] == [1]
        # The writer goes on: the next good append lands.
        await storage.append_ops("r", "d", 1, [OpRecord(2, "u", 1.0, [1, "b"])])
        assert (await storage.load_document("r", "d")).record.revision == 2
    finally:
        await storage.close()


async def test_a_write_failing_inside_a_batch_fails_alone(tmp_path: Path) -> None:
    """Writes that share a commit run without savepoints; one failing reruns them guarded.

    The writer is held while the writes queue, so they are taken as one batch: good appends,
    an append at a stale head, and one whose second insert fails after it moved the head.
    """
    path = tmp_path / "db.sqlite"
    storage = SqliteStorage(path)
    await storage.open()
    try:
        await storage.create_room(RoomRecord("r", "room", 1.0, 1.0))
        for d in ("d1", "d2", "d3"):
            await storage.create_document(DocumentRecord("r", d, f"{d}.txt", "\n", 1.0, 0), "")
        stray = sqlite3.connect(path, isolation_level=None)
        try:  # a row where d3's revision 2 will go
            stray.execute(
                "INSERT INTO ops (room_id, doc_id, revision, author, timestamp, op, seq, member)"
                " VALUES ('r', 'd3', 2, 'x', 1.0, '[1]', 0, 'x')"
            )
        finally:
            stray.close()
        release = threading.Event()
        held = asyncio.ensure_future(storage._write(lambda conn: release.wait(5)))
        await asyncio.sleep(0.05)  # the writer is now inside the holding write
        commits = storage.commit_count
        writes = [
            storage.append_ops("r", "d1", 0, [OpRecord(1, "u", 1.0, ["a"])]),
            storage.append_ops("r", "d2", 5, [OpRecord(6, "u", 1.0, ["b"])]),  # stale head
            storage.append_ops(
                "r", "d3", 0, [OpRecord(1, "u", 1.0, ["c"]), OpRecord(2, "u", 1.0, [1, "d"])]
            ),  # moves the head, then its second insert fails
            storage.append_ops("r", "d2", 0, [OpRecord(1, "u", 1.0, ["e"])]),
        ]
        tasks = [asyncio.ensure_future(w) for w in writes]
        await asyncio.sleep(0.05)  # all four are queued behind the holding write
        release.set()
        await held
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0] is None and results[3] is None
        assert isinstance(results[1], RevisionConflict)
        assert isinstance(results[2], StorageError)
        assert storage.commit_count - commits == 2  # the holding write's, then the batch's
        assert [o.op for o in await storage.read_ops("r", "d1", 0)] == [["a"]]
        assert [o.op for o in await storage.read_ops("r", "d2", 0)] == [["e"]]
        assert (await storage.load_document("r", "d3")).record.revision == 0
    finally:
        await storage.close()
