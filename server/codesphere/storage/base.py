"""The storage interface: durable records, errors and the ``Storage`` protocol.

Every backend (SQLite today, others later) implements :class:`Storage` and must
pass the shared conformance suite in ``tests/storage/test_conformance.py``.

Conventions shared by all backends:

* Records are immutable value objects; backends never hand out mutable state.
* A method addressing a room or document that does not exist raises
  :class:`NotFound`; creating something whose identity (room id, document id,
  or document path within a room) is taken raises :class:`AlreadyExists`.
* Document history is a gap-free sequence of operations. Operation ``n``
  produces revision ``n``; a new document is at revision 0. ``append_ops`` is a
  compare-and-set on the durable head revision and is the only way the head
  moves.
* Any other backend failure is reported as :class:`StorageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

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
    "Storage",
    "StorageError",
    "StoredDocument",
]

Role = Literal["owner", "editor", "viewer"]

ROLES: Final[frozenset[str]] = frozenset({"owner", "editor", "viewer"})
"""The valid values of :attr:`MemberRecord.role`."""

EOLS: Final[frozenset[str]] = frozenset({"\n", "\r\n"})
"""The valid values of :attr:`DocumentRecord.eol`."""


class StorageError(Exception):
    """Base class of every error raised by a storage backend."""


class RevisionConflict(StorageError):
    """A compare-and-set on a document's head revision failed.

    Raised when the expected head is not the durable head, or when the
    revisions of the operations to append do not follow it without gaps.
    """


class NotFound(StorageError):
    """The addressed room or document does not exist."""


class AlreadyExists(StorageError):
    """A room or document id, or a document path within a room, is already taken."""


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A collaboration room.

    Attributes:
        id: Unique room id.
        name: Human-readable name.
        created_at: Creation time, seconds since the epoch.
        updated_at: Last activity time, seconds since the epoch.
    """

    id: str
    name: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A user's membership of a room.

    Attributes:
        room_id: The room the member belongs to.
        id: User id, unique within the room.
        name: Display name.
        color: Cursor/selection colour, e.g. ``"#ff8800"``.
        role: One of ``"owner"``, ``"editor"``, ``"viewer"``.
        joined_at: Time the member joined, seconds since the epoch.
        user_id: The user (of a user token) this member is, if any.
        invite_id: The invite this member joined through, if any: revoking the invite
            removes the member's access.
    """

    room_id: str
    id: str
    name: str
    color: str
    role: str
    joined_at: float
    user_id: str | None = None
    invite_id: str | None = None


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """An invitation to a room with a role.

    Attributes:
        room_id: The room it admits to.
        id: Unique invite id (the ``sub`` of its token).
        role: The role it grants.
        created_at: Creation time, seconds since the epoch.
        expires_at: After this time it admits nobody.
        max_uses: How many members it may admit; ``None`` for no limit.
        uses: How many it has admitted.
        revoked_at: When the owner revoked it, if they did.
        created_by: The member who created it.
    """

    room_id: str
    id: str
    role: str
    created_at: float
    expires_at: float
    max_uses: int | None
    uses: int
    revoked_at: float | None
    created_by: str


class InviteUnusable(StorageError):
    """The invite is revoked, expired or used up (the message says which)."""


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """A document (file) in a room.

    Attributes:
        room_id: The room the document belongs to.
        id: Document id, unique within the room.
        path: File path, unique among the room's documents.
        eol: Line ending, ``"\\n"`` or ``"\\r\\n"``.
        created_at: Creation time, seconds since the epoch.
        revision: The durable head revision (0 for a new document).
    """

    room_id: str
    id: str
    path: str
    eol: str
    created_at: float
    revision: int


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One operation in a document's history.

    Attributes:
        revision: The revision this operation produces; the first operation of
            a new document produces revision 1.
        author: Id of the client that sent it.
        timestamp: Time it was accepted, seconds since the epoch.
        op: The operation itself, an opaque JSON-serialisable list.
        seq: The author's edit counter for the document (0: none); with ``author`` it
            recognises an edit resent after a reconnect.
        member: Id of the room member who made it (one member may use several clients);
            empty for edits stored before members were recorded.
    """

    revision: int
    author: str
    timestamp: float
    op: list[Any]
    seq: int = 0
    member: str = ""


@dataclass(frozen=True, slots=True)
class ChatRecord:
    """A chat message in a room.

    Attributes:
        room_id: The room the message was posted in.
        seq: Position in the room's chat, assigned by storage: 1, 2, 3, ...
        id: Message id chosen by the caller.
        author_id: Id of the member who wrote it.
        author_name: Display name of the author when it was written.
        text: Message body.
        timestamp: Time it was posted, seconds since the epoch.
    """

    room_id: str
    seq: int
    id: str
    author_id: str
    author_name: str
    text: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """Everything needed to rebuild a document's head state.

    The head text is ``snapshot_text`` with ``ops`` applied in order.

    Attributes:
        record: The document record; ``record.revision`` is the durable head.
        snapshot_revision: Revision of the newest stored snapshot.
        snapshot_text: Document text at ``snapshot_revision``.
        ops: The operations after the snapshot, in ascending revision order.
    """

    record: DocumentRecord
    snapshot_revision: int
    snapshot_text: str
    ops: list[OpRecord]


@runtime_checkable
class Storage(Protocol):
    """Durable storage for rooms, members, documents, their history and chat.

    Implementations must be safe to call concurrently from many tasks on one
    event loop and must never block that loop on I/O.
    """

    async def open(self) -> None:
        """Connect to the backend and create or upgrade its schema."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release resources. Idempotent."""
        ...

    async def create_room(self, room: RoomRecord) -> None:
        """Create a room.

        Raises:
            AlreadyExists: A room with this id exists.
        """
        ...

    async def get_room(self, room_id: str) -> RoomRecord | None:
        """Return the room, or ``None`` if it does not exist."""
        ...

    async def list_rooms(self) -> list[RoomRecord]:
        """Return all rooms ordered by creation time, then id."""
        ...

    async def delete_room(self, room_id: str) -> None:
        """Delete a room with its members, documents, history and chat.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def touch_room(self, room_id: str, updated_at: float) -> None:
        """Set the room's ``updated_at``.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def upsert_member(self, member: MemberRecord) -> None:
        """Insert a member, or replace all fields of an existing one.

        Raises:
            NotFound: The room does not exist.
            ValueError: ``member.role`` is not a valid role.
        """
        ...

    async def list_members(self, room_id: str) -> list[MemberRecord]:
        """Return the room's members ordered by join time, then id.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def get_member(self, room_id: str, member_id: str) -> MemberRecord | None:
        """Return one member, or ``None`` if the room has no such member."""
        ...

    async def delete_member(self, room_id: str, member_id: str) -> None:
        """Remove a member from a room.

        Raises:
            NotFound: The room has no such member.
        """
        ...

    async def rooms_of_user(self, user_id: str) -> list[tuple[RoomRecord, MemberRecord]]:
        """Return the rooms ``user_id`` is a member of, with that membership, by creation."""
        ...

    async def create_invite(self, invite: InviteRecord) -> None:
        """Store a new invite.

        Raises:
            NotFound: The room does not exist.
            AlreadyExists: The invite id is taken.
            ValueError: The role is not a valid role.
        """
        ...

    async def get_invite(self, invite_id: str) -> InviteRecord | None:
        """Return an invite, or ``None``."""
        ...

    async def list_invites(self, room_id: str) -> list[InviteRecord]:
        """Return a room's invites by creation time, revoked ones included.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def revoke_invite(self, room_id: str, invite_id: str, at: float) -> None:
        """Mark an invite revoked (revoking twice keeps the first time).

        Raises:
            NotFound: The room has no such invite.
        """
        ...

    async def redeem_invite(self, invite_id: str, now: float, member: MemberRecord) -> None:
        """Atomically count one use of an invite and add ``member`` (joined through it).

        Raises:
            NotFound: No such invite.
            InviteUnusable: The invite is revoked, expired at ``now`` or used up.
        """
        ...

    async def create_document(self, record: DocumentRecord, text: str) -> None:
        """Create a document whose revision-0 snapshot is ``text``.

        Raises:
            NotFound: The room does not exist.
            AlreadyExists: The document id, or its path, is taken in the room.
            ValueError: ``record.revision`` is not 0 or ``record.eol`` is invalid.
        """
        ...

    async def rename_document(self, room_id: str, doc_id: str, new_path: str) -> None:
        """Change a document's path. Renaming to its current path is a no-op.

        Raises:
            NotFound: The document does not exist.
            AlreadyExists: Another document in the room has ``new_path``.
        """
        ...

    async def delete_document(self, room_id: str, doc_id: str) -> None:
        """Delete a document with its snapshot and history.

        Raises:
            NotFound: The document does not exist.
        """
        ...

    async def list_documents(self, room_id: str) -> list[DocumentRecord]:
        """Return the room's documents ordered by path.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def load_document(self, room_id: str, doc_id: str) -> StoredDocument:
        """Return a consistent view of the document: snapshot plus later ops.

        Raises:
            NotFound: The document does not exist.
        """
        ...

    async def append_ops(
        self, room_id: str, doc_id: str, expected_head: int, ops: list[OpRecord]
    ) -> None:
        """Atomically append ops if the durable head is ``expected_head``.

        ``ops[i].revision`` must equal ``expected_head + 1 + i``. Either all ops
        are written or none are. When this returns, the ops are durable.

        Raises:
            RevisionConflict: The head is not ``expected_head`` or the op
                revisions do not follow it without gaps.
            NotFound: The document does not exist.
        """
        ...

    async def read_ops(
        self, room_id: str, doc_id: str, since_revision: int, limit: int | None = None
    ) -> list[OpRecord]:
        """Return ops with revision greater than ``since_revision``, ascending.

        Args:
            room_id: The room id.
            doc_id: The document id.
            since_revision: Exclusive lower bound on revisions.
            limit: At most this many ops (the oldest ones); ``None`` for all.

        Raises:
            NotFound: The document does not exist.
        """
        ...

    async def save_snapshot(self, room_id: str, doc_id: str, revision: int, text: str) -> None:
        """Store ``text`` as the document's state at ``revision``.

        A snapshot older than the stored one is ignored. Ops are never removed:
        they remain the document's full history.

        Raises:
            NotFound: The document does not exist.
            RevisionConflict: ``revision`` is beyond the durable head.
        """
        ...

    async def append_chat(
        self,
        room_id: str,
        id: str,
        author_id: str,
        author_name: str,
        text: str,
        timestamp: float,
    ) -> ChatRecord:
        """Append a chat message, assigning it the room's next ``seq``.

        Raises:
            NotFound: The room does not exist.
        """
        ...

    async def chat_history(
        self, room_id: str, before_seq: int | None = None, limit: int = 50
    ) -> list[ChatRecord]:
        """Return the newest ``limit`` messages with ``seq < before_seq``, ascending.

        Args:
            room_id: The room id.
            before_seq: Exclusive upper bound on ``seq``; ``None`` for no bound.
            limit: Maximum number of messages.

        Raises:
            NotFound: The room does not exist.
        """
        ...
