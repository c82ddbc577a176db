"""SqliteStorage copies its write-ahead log into the database file off the commit path."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from codesphere.storage import DocumentRecord, OpRecord, RoomRecord, SqliteStorage
from codesphere.storage.sqlite import CHECKPOINT_INTERVAL_S


async def test_commits_reach_the_database_file_without_checkpointing_in_a_commit(
    tmp_path: Path,
) -> None:
    """Commits leave their pages in the WAL (no checkpoint inside a commit, which would hold
    up the writes behind it); the checkpoint thread copies them into the database file within
    a few intervals."""
    path = tmp_path / "db.sqlite"
    storage = SqliteStorage(path)
    await storage.open()
    try:
        await storage.create_room(RoomRecord("r", "room", 1.0, 1.0))
        await storage.create_document(DocumentRecord("r", "d", "a.txt", "\n", 1.0, 0), "")
        size_before = path.stat().st_size
        payload = ["x" * 2000]  # enough pages that the database file must grow to hold them
        for rev in range(1, 201):
            await storage.append_ops("r", "d", rev - 1, [OpRecord(rev, "u", 1.0, payload)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 * CHECKPOINT_INTERVAL_S
        while path.stat().st_size <= size_before + 200 * 2000:
            assert loop.time() < deadline, "the WAL was never copied into the database file"
            await asyncio.sleep(CHECKPOINT_INTERVAL_S / 4)
        # And everything reads back through a fresh connection.
        probe = sqlite3.connect(path, isolation_level=None)
        try:
            count = probe.execute("SELECT count(*) FROM ops").fetchone()[0]
        finally:
            probe.close()
        assert count == 200
    finally:
        await storage.close()
