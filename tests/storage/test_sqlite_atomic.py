"""A lone write that fails half-way leaves nothing behind: its transaction rolls back whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codesphere.storage import DocumentRecord, OpRecord, RoomRecord, SqliteStorage, StorageError


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
