"""A database written by an older CodeSphere opens, migrated, with its data intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from codesphere.storage import InviteRecord, MemberRecord, RoomRecord, SqliteStorage


def downgrade_to_version_1(path: Path) -> None:
    """Turn a fresh database back into the first schema: no invites, no member links."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(
            """
            DROP TABLE invites;
            DROP INDEX members_by_user;
            ALTER TABLE members DROP COLUMN user_id;
            ALTER TABLE members DROP COLUMN invite_id;
            ALTER TABLE ops DROP COLUMN member;
            PRAGMA user_version = 1;
            """
        )
    finally:
        conn.close()


async def test_version_1_database_is_migrated_keeping_its_members(tmp_path: Path) -> None:
    path = tmp_path / "codesphere.db"
    store = SqliteStorage(path)
    await store.open()
    await store.create_room(RoomRecord("r1", "Room", 1.0, 1.0))
    await store.upsert_member(MemberRecord("r1", "m1", "Ann", "#123", "owner", 2.0))
    await store.close()
    downgrade_to_version_1(path)

    store = SqliteStorage(path)
    await store.open()
    try:
        assert await store.list_members("r1") == [
            MemberRecord("r1", "m1", "Ann", "#123", "owner", 2.0)
        ]
        invite = InviteRecord("r1", "i1", "viewer", 3.0, 9.0, 1, 0, None, "m1")
        await store.create_invite(invite)
        assert await store.list_invites("r1") == [invite]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        conn.close()
