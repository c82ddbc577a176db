"""Schema and transaction bodies of the SQLite backend.

Everything here is synchronous and runs on one of
:class:`~codesphere.storage.sqlite.SqliteStorage`'s threads: ``w_*`` functions
on the writer thread inside a savepoint, ``r_*`` functions on the reader thread
inside a read transaction. Each takes its arguments first and the connection
last, so it can be bound with :func:`functools.partial`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

import orjson

from codesphere.storage.base import (
    AlreadyExists,
    ChatRecord,
    DocumentRecord,
    InviteRecord,
    InviteUnusable,
    MemberRecord,
    NotFound,
    OpRecord,
    RevisionConflict,
    RoomRecord,
    StoredDocument,
)

OpRow = tuple[str, str, int, str, float, str, int, str]
"""An ``ops`` table row: room_id, doc_id, revision, author, timestamp, op JSON, seq, member."""

SCHEMA_VERSION: Final = 3
"""Stored in ``PRAGMA user_version``; bump it together with a migration."""

_INVITES: Final = """
CREATE TABLE IF NOT EXISTS invites (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    id          TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    max_uses    INTEGER CHECK (max_uses > 0),
    uses        INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at  REAL,
    created_by  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invites_by_room ON invites (room_id, created_at);
"""
"""The invites table, as created new (schema 2) and by the migration from 1."""

SCHEMA: Final = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS rooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    color       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    joined_at   REAL NOT NULL,
    user_id     TEXT,
    invite_id   TEXT,
    PRIMARY KEY (room_id, id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id) WHERE user_id IS NOT NULL;
{_INVITES}
CREATE TABLE IF NOT EXISTS documents (
    room_id           TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    id                TEXT NOT NULL,
    path              TEXT NOT NULL,
    eol               TEXT NOT NULL CHECK (eol IN (char(10), char(13, 10))),
    created_at        REAL NOT NULL,
    head              INTEGER NOT NULL CHECK (head >= 0),
    snapshot_revision INTEGER NOT NULL CHECK (snapshot_revision BETWEEN 0 AND head),
    snapshot_text     TEXT NOT NULL,
    PRIMARY KEY (room_id, id),
    UNIQUE (room_id, path)
);
CREATE TABLE IF NOT EXISTS ops (
    room_id     TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision > 0),
    author      TEXT NOT NULL,
    timestamp   REAL NOT NULL,
    op          TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0,
    member      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (room_id, doc_id, revision),
    FOREIGN KEY (room_id, doc_id) REFERENCES documents (room_id, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS chat (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    id          TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    author_name TEXT NOT NULL,
    text        TEXT NOT NULL,
    timestamp   REAL NOT NULL,
    PRIMARY KEY (room_id, seq)
);
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

MIGRATIONS: Final = {
    1: f"""
BEGIN IMMEDIATE;
ALTER TABLE members ADD COLUMN user_id TEXT;
ALTER TABLE members ADD COLUMN invite_id TEXT;
CREATE INDEX members_by_user ON members (user_id) WHERE user_id IS NOT NULL;
{_INVITES}
PRAGMA user_version = 2;
COMMIT;
""",
    2: """
BEGIN IMMEDIATE;
ALTER TABLE ops ADD COLUMN member TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 3;
COMMIT;
""",
}
"""Scripts that take a database from the version (key) to the next one."""

_MAX_SEQ: Final = 2**63 - 1

_MEMBER_COLUMNS: Final = "room_id, id, name, color, role, joined_at, user_id, invite_id"
_INVITE_COLUMNS: Final = (
    "room_id, id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by"
)

_DOC_COLUMNS: Final = "room_id, id, path, eol, created_at, head"


def _exists(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> bool:
    return conn.execute(sql, params).fetchone() is not None


def _require_room(conn: sqlite3.Connection, room_id: str) -> None:
    if not _exists(conn, "SELECT 1 FROM rooms WHERE id = ?", (room_id,)):
        raise NotFound(f"room {room_id!r} not found")


def _doc_row(conn: sqlite3.Connection, room_id: str, doc_id: str, columns: str) -> Any:
    row = conn.execute(
        f"SELECT {columns} FROM documents WHERE room_id = ? AND id = ?", (room_id, doc_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"document {doc_id!r} not found in room {room_id!r}")
    return row


def _room(row: Any) -> RoomRecord:
    return RoomRecord(id=row[0], name=row[1], created_at=row[2], updated_at=row[3])


def _document(row: Any) -> DocumentRecord:
    return DocumentRecord(
        room_id=row[0], id=row[1], path=row[2], eol=row[3], created_at=row[4], revision=row[5]
    )


def _op(row: Any) -> OpRecord:
    return OpRecord(
        revision=row[0],
        author=row[1],
        timestamp=row[2],
        op=orjson.loads(row[3]),
        seq=row[4],
        member=row[5],
    )


def _chat(row: Any) -> ChatRecord:
    return ChatRecord(*row)


# --------------------------------------------------------------- writer thread


def w_create_room(room: RoomRecord, conn: sqlite3.Connection) -> None:
    """Insert a room; raise AlreadyExists if its id is taken."""
    if _exists(conn, "SELECT 1 FROM rooms WHERE id = ?", (room.id,)):
        raise AlreadyExists(f"room {room.id!r} already exists")
    conn.execute(
        "INSERT INTO rooms (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (room.id, room.name, room.created_at, room.updated_at),
    )


def w_delete_room(room_id: str, conn: sqlite3.Connection) -> None:
    """Delete a room and, by cascade, everything in it."""
    # Members, documents (and through them ops) and chat go by ON DELETE CASCADE.
    if conn.execute("DELETE FROM rooms WHERE id = ?", (room_id,)).rowcount == 0:
        raise NotFound(f"room {room_id!r} not found")


def w_touch_room(room_id: str, updated_at: float, conn: sqlite3.Connection) -> None:
    """Set a room's ``updated_at``."""
    cursor = conn.execute("UPDATE rooms SET updated_at = ? WHERE id = ?", (updated_at, room_id))
    if cursor.rowcount == 0:
        raise NotFound(f"room {room_id!r} not found")


def _member_row(member: MemberRecord) -> tuple[object, ...]:
    return (
        member.room_id,
        member.id,
        member.name,
        member.color,
        member.role,
        member.joined_at,
        member.user_id,
        member.invite_id,
    )


def w_upsert_member(member: MemberRecord, conn: sqlite3.Connection) -> None:
    """Insert a member or replace all its fields."""
    _require_room(conn, member.room_id)
    conn.execute(
        f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (room_id, id) DO UPDATE SET name = excluded.name,"
        " color = excluded.color, role = excluded.role, joined_at = excluded.joined_at,"
        " user_id = excluded.user_id, invite_id = excluded.invite_id",
        _member_row(member),
    )


def w_delete_member(room_id: str, member_id: str, conn: sqlite3.Connection) -> None:
    """Remove a member."""
    cursor = conn.execute("DELETE FROM members WHERE room_id = ? AND id = ?", (room_id, member_id))
    if cursor.rowcount == 0:
        raise NotFound(f"member {member_id!r} not found in room {room_id!r}")


def w_create_invite(invite: InviteRecord, conn: sqlite3.Connection) -> None:
    """Insert an invite."""
    _require_room(conn, invite.room_id)
    if _exists(conn, "SELECT 1 FROM invites WHERE id = ?", (invite.id,)):
        raise AlreadyExists(f"invite {invite.id!r} already exists")
    conn.execute(
        f"INSERT INTO invites ({_INVITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            invite.room_id,
            invite.id,
            invite.role,
            invite.created_at,
            invite.expires_at,
            invite.max_uses,
            invite.uses,
            invite.revoked_at,
            invite.created_by,
        ),
    )


def w_revoke_invite(room_id: str, invite_id: str, at: float, conn: sqlite3.Connection) -> None:
    """Mark an invite revoked, keeping an earlier revocation time."""
    cursor = conn.execute(
        "UPDATE invites SET revoked_at = coalesce(revoked_at, ?) WHERE room_id = ? AND id = ?",
        (at, room_id, invite_id),
    )
    if cursor.rowcount == 0:
        raise NotFound(f"invite {invite_id!r} not found in room {room_id!r}")


def w_redeem_invite(
    invite_id: str, now: float, member: MemberRecord, conn: sqlite3.Connection
) -> None:
    """Count a use of an invite and add the member it admits, or refuse."""
    row = conn.execute(
        "SELECT room_id, expires_at, max_uses, uses, revoked_at FROM invites WHERE id = ?",
        (invite_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"invite {invite_id!r} not found")
    room_id, expires_at, max_uses, uses, revoked_at = row
    if room_id != member.room_id:
        raise NotFound(f"invite {invite_id!r} not found in room {member.room_id!r}")
    if revoked_at is not None:
        raise InviteUnusable("the invite was revoked")
    if now >= expires_at:
        raise InviteUnusable("the invite has expired")
    if max_uses is not None and uses >= max_uses:
        raise InviteUnusable("the invite has been used up")
    conn.execute("UPDATE invites SET uses = uses + 1 WHERE id = ?", (invite_id,))
    w_upsert_member(member, conn)


def w_create_document(record: DocumentRecord, text: str, conn: sqlite3.Connection) -> None:
    """Insert a document with its revision-0 snapshot."""
    _require_room(conn, record.room_id)
    if _exists(
        conn, "SELECT 1 FROM documents WHERE room_id = ? AND id = ?", (record.room_id, record.id)
    ):
        raise AlreadyExists(f"document {record.id!r} already exists in room {record.room_id!r}")
    _require_free_path(conn, record.room_id, record.path)
    conn.execute(
        "INSERT INTO documents (room_id, id, path, eol, created_at, head, snapshot_revision,"
        " snapshot_text) VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
        (record.room_id, record.id, record.path, record.eol, record.created_at, text),
    )


def _require_free_path(conn: sqlite3.Connection, room_id: str, path: str) -> None:
    if _exists(conn, "SELECT 1 FROM documents WHERE room_id = ? AND path = ?", (room_id, path)):
        raise AlreadyExists(f"path {path!r} already exists in room {room_id!r}")


def w_rename_document(room_id: str, doc_id: str, new_path: str, conn: sqlite3.Connection) -> None:
    """Change a document's path, keeping paths unique in the room."""
    (path,) = _doc_row(conn, room_id, doc_id, "path")
    if path == new_path:
        return
    _require_free_path(conn, room_id, new_path)
    conn.execute(
        "UPDATE documents SET path = ? WHERE room_id = ? AND id = ?", (new_path, room_id, doc_id)
    )


def w_delete_document(room_id: str, doc_id: str, conn: sqlite3.Connection) -> None:
    """Delete a document and, by cascade, its ops."""
    # The document's ops go by ON DELETE CASCADE.
    cursor = conn.execute("DELETE FROM documents WHERE room_id = ? AND id = ?", (room_id, doc_id))
    if cursor.rowcount == 0:
        raise NotFound(f"document {doc_id!r} not found in room {room_id!r}")


def w_append_ops(
    room_id: str,
    doc_id: str,
    expected_head: int,
    rows: list[OpRow],
    conn: sqlite3.Connection,
) -> None:
    """Insert ops and move the head, if the head is ``expected_head``."""
    # The head update, guarded by the expected head, and the inserts share one savepoint on
    # the only writing connection, which makes this compare-and-set atomic: a failed insert
    # rolls the head back with it.
    moved = conn.execute(
        "UPDATE documents SET head = ? WHERE room_id = ? AND id = ? AND head = ?",
        (expected_head + len(rows), room_id, doc_id, expected_head),
    ).rowcount
    if moved != 1:
        (head,) = _doc_row(conn, room_id, doc_id, "head")  # NotFound when there is none
        raise RevisionConflict(f"document {doc_id!r} is at revision {head}, not {expected_head}")
    if rows:
        conn.executemany(
            "INSERT INTO ops (room_id, doc_id, revision, author, timestamp, op, seq, member)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def w_save_snapshot(
    room_id: str, doc_id: str, revision: int, text: str, conn: sqlite3.Connection
) -> None:
    """Replace the snapshot unless the stored one is newer."""
    head, snapshot_revision = _doc_row(conn, room_id, doc_id, "head, snapshot_revision")
    if revision > head:
        raise RevisionConflict(
            f"snapshot at revision {revision} is beyond document {doc_id!r} head {head}"
        )
    if revision < snapshot_revision:
        return  # a newer snapshot is already stored
    conn.execute(
        "UPDATE documents SET snapshot_revision = ?, snapshot_text = ?"
        " WHERE room_id = ? AND id = ?",
        (revision, text, room_id, doc_id),
    )


def w_append_chat(
    room_id: str,
    message_id: str,
    author_id: str,
    author_name: str,
    text: str,
    timestamp: float,
    conn: sqlite3.Connection,
) -> ChatRecord:
    """Insert a chat message with the room's next ``seq``."""
    _require_room(conn, room_id)
    (last,) = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM chat WHERE room_id = ?", (room_id,)
    ).fetchone()
    record = ChatRecord(room_id, last + 1, message_id, author_id, author_name, text, timestamp)
    conn.execute(
        "INSERT INTO chat (room_id, seq, id, author_id, author_name, text, timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (room_id, record.seq, message_id, author_id, author_name, text, timestamp),
    )
    return record


# --------------------------------------------------------------- reader thread


def r_get_room(room_id: str, conn: sqlite3.Connection) -> RoomRecord | None:
    """Return a room or ``None``."""
    row = conn.execute(
        "SELECT id, name, created_at, updated_at FROM rooms WHERE id = ?", (room_id,)
    ).fetchone()
    return None if row is None else _room(row)


def r_list_rooms(conn: sqlite3.Connection) -> list[RoomRecord]:
    """Return all rooms by creation time."""
    rows = conn.execute(
        "SELECT id, name, created_at, updated_at FROM rooms ORDER BY created_at, id"
    )
    return [_room(row) for row in rows]


def r_list_members(room_id: str, conn: sqlite3.Connection) -> list[MemberRecord]:
    """Return a room's members by join time."""
    _require_room(conn, room_id)
    rows = conn.execute(
        f"SELECT {_MEMBER_COLUMNS} FROM members WHERE room_id = ? ORDER BY joined_at, id",
        (room_id,),
    )
    return [MemberRecord(*row) for row in rows]


def r_get_member(room_id: str, member_id: str, conn: sqlite3.Connection) -> MemberRecord | None:
    """Return one member or None."""
    row = conn.execute(
        f"SELECT {_MEMBER_COLUMNS} FROM members WHERE room_id = ? AND id = ?",
        (room_id, member_id),
    ).fetchone()
    return None if row is None else MemberRecord(*row)


def r_rooms_of_user(
    user_id: str, conn: sqlite3.Connection
) -> list[tuple[RoomRecord, MemberRecord]]:
    """Return the rooms a user is a member of, with the membership."""
    member_columns = ", ".join(f"m.{c.strip()}" for c in _MEMBER_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT r.id, r.name, r.created_at, r.updated_at, {member_columns}"
        " FROM members m JOIN rooms r ON r.id = m.room_id"
        " WHERE m.user_id = ? ORDER BY r.created_at, r.id",
        (user_id,),
    )
    return [(_room(row[:4]), MemberRecord(*row[4:])) for row in rows]


def r_get_invite(invite_id: str, conn: sqlite3.Connection) -> InviteRecord | None:
    """Return one invite or None."""
    row = conn.execute(
        f"SELECT {_INVITE_COLUMNS} FROM invites WHERE id = ?", (invite_id,)
    ).fetchone()
    return None if row is None else InviteRecord(*row)


def r_list_invites(room_id: str, conn: sqlite3.Connection) -> list[InviteRecord]:
    """Return a room's invites by creation time."""
    _require_room(conn, room_id)
    rows = conn.execute(
        f"SELECT {_INVITE_COLUMNS} FROM invites WHERE room_id = ? ORDER BY created_at, id",
        (room_id,),
    )
    return [InviteRecord(*row) for row in rows]


def r_list_documents(room_id: str, conn: sqlite3.Connection) -> list[DocumentRecord]:
    """Return a room's documents by path."""
    _require_room(conn, room_id)
    rows = conn.execute(
        f"SELECT {_DOC_COLUMNS} FROM documents WHERE room_id = ? ORDER BY path", (room_id,)
    )
    return [_document(row) for row in rows]


def r_load_document(room_id: str, doc_id: str, conn: sqlite3.Connection) -> StoredDocument:
    """Return a document with its snapshot and the ops after it."""
    row = _doc_row(conn, room_id, doc_id, f"{_DOC_COLUMNS}, snapshot_revision, snapshot_text")
    snapshot_revision: int = row[6]
    ops = _select_ops(conn, room_id, doc_id, snapshot_revision, None)
    return StoredDocument(_document(row), snapshot_revision, row[7], ops)


def r_read_ops(
    room_id: str, doc_id: str, since_revision: int, limit: int | None, conn: sqlite3.Connection
) -> list[OpRecord]:
    """Return ops after ``since_revision``, ascending."""
    _doc_row(conn, room_id, doc_id, "1")
    return _select_ops(conn, room_id, doc_id, since_revision, limit)


def _select_ops(
    conn: sqlite3.Connection, room_id: str, doc_id: str, since: int, limit: int | None
) -> list[OpRecord]:
    rows = conn.execute(
        "SELECT revision, author, timestamp, op, seq, member FROM ops"
        " WHERE room_id = ? AND doc_id = ? AND revision > ? ORDER BY revision LIMIT ?",
        (room_id, doc_id, since, -1 if limit is None else limit),
    )
    return [_op(row) for row in rows]


def r_chat_history(
    room_id: str, before_seq: int | None, limit: int, conn: sqlite3.Connection
) -> list[ChatRecord]:
    """Return the newest ``limit`` messages before ``before_seq``, ascending."""
    _require_room(conn, room_id)
    rows = conn.execute(
        "SELECT room_id, seq, id, author_id, author_name, text, timestamp FROM chat"
        " WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        (room_id, _MAX_SEQ if before_seq is None else before_seq, limit),
    ).fetchall()
    return [_chat(row) for row in reversed(rows)]
