"""Durable storage for rooms, members, documents, operation history and chat.

:class:`Storage` is the interface the rest of the server depends on;
:class:`SqliteStorage` is the embedded single-file implementation.
"""

from __future__ import annotations

from codesphere.storage.base import (
    EOLS,
    ROLES,
    AlreadyExists,
    ChatRecord,
    DocumentRecord,
    InviteRecord,
    InviteUnusable,
    MemberRecord,
    NotFound,
    OpRecord,
    RevisionConflict,
    Role,
    RoomRecord,
    Storage,
    StorageError,
    StoredDocument,
)
from codesphere.storage.sqlite import SqliteStorage

__all__ = [
    "EOLS",
    "ROLES",
    "AlreadyExists",
    "ChatRecord",
    "DocumentRecord",
    "InviteRecord",
    "InviteUnusable",
    "MemberRecord",
    "NotFound",
    "OpRecord",
    "RevisionConflict",
    "Role",
    "RoomRecord",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "StoredDocument",
]
