"""The hub: loaded rooms, live connections, commits and fan-out.

This is where the pure core meets asyncio. A committed edit is written to the ordering seam
(durable when it returns) before anyone hears of it; then it is framed once per position
encoding and written to every subscriber in one synchronous pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from codesphere.app.access import Access, user_member_id
from codesphere.app.connection import Connection
from codesphere.app.limits import Limits
from codesphere.app.rooms import PALETTE, DocState, Member, RoomState
from codesphere.auth.tokens import TokenService
from codesphere.core.document import DEFAULT_WINDOW, Document, LogEntry, normalize_eol
from codesphere.core.operation import TextOperation
from codesphere.core.positions import Encoding
from codesphere.core.sync import Ack, DocumentSync
from codesphere.ordering.base import Sequencer
from codesphere.protocol import codec
from codesphere.protocol.errors import ROOM_NOT_FOUND, RpcError
from codesphere.protocol.wsframe import frame_text
from codesphere.storage.base import (
    DocumentRecord,
    MemberRecord,
    NotFound,
    OpRecord,
    RoomRecord,
    Storage,
    StorageError,
    StoredDocument,
)

log = logging.getLogger("codesphere.hub")


def new_id(prefix: str) -> str:
    """A random, URL-safe id such as ``r-Yx3…``."""
    return f"{prefix}-{secrets.token_urlsafe(9)}"


def notification(method: str, params: Any) -> bytes:
    """A notification framed for the WebSocket, ready to write to many connections."""
    return frame_text(codec.dumps({"jsonrpc": "2.0", "method": method, "params": params}))


#: How often at most a room's ``updated_at`` is written while it is busy.
TOUCH_SECONDS = 10.0


class Hub:
    """Everything the server holds in memory, shared by all connections.

    Args:
        storage: where rooms, documents and chat are kept.
        sequencer: the ordering seam every commit goes through.
        limits: the limits to enforce.
        clock: seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        storage: Storage,
        sequencer: Sequencer,
        tokens: TokenService,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.sequencer = sequencer
        self.tokens = tokens
        self.access = Access(tokens, storage, clock)
        self.limits = limits or Limits()
        self.clock = clock
        self.rooms: dict[str, RoomState] = {}
        # The JSON-RPC methods, by name (``app.handlers`` fills this in; the hub does not
        # import the handlers, which import the hub).
        self.methods: dict[str, Callable[[Connection, Any], Awaitable[Any]]] = {}
        self._room_locks: dict[str, asyncio.Lock] = {}
        self.connections: set[Connection] = set()
        self.by_client: dict[str, Connection] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # -- rooms -----------------------------------------------------------------------------

    async def create_room(
        self, name: str, files: list[tuple[str, str]], owner_user: str, owner_name: str
    ) -> str:
        """Create a room owned by the user ``owner_user``; returns its id."""
        now = self.clock()
        room_id = new_id("r")
        await self.storage.create_room(RoomRecord(room_id, name, now, now))
        await self.storage.upsert_member(
            MemberRecord(
                room_id, user_member_id(owner_user), owner_name, PALETTE[0], "owner", now,
                owner_user,
            )
        )  # fmt: skip
        for path, text in files:
            canonical, eol = normalize_eol(text)
            await self.storage.create_document(
                DocumentRecord(room_id, new_id("d"), path, eol, now, 0), canonical
            )
        return room_id

    def touch(self, room: RoomState) -> None:
        """Record activity in ``room`` (its ``updated_at``), at most once per TOUCH_SECONDS.

        Edits come many a second; one write per edit just for this would double the
        storage work, and a room's last activity need not be known to the millisecond.
        """
        now = self.clock()
        if now - room.touched_at >= TOUCH_SECONDS:
            room.touched_at = now
            self.spawn(self._touch(room.id, now))

    async def _touch(self, room_id: str, now: float) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to record
            await self.storage.touch_room(room_id, now)

    async def delete_room(self, room_id: str) -> None:
        """Delete a room and everything in it; its connections are closed with 4004.

        Raises:
            NotFound: no such room.
        """
        room = self.rooms.pop(room_id, None)
        if room is not None:
            for conn in list(room.connections):
                self.leave_room(conn)
                conn.transport.close(4004, "the room was deleted")
        await self.storage.delete_room(room_id)

    def remove_members(self, room_id: str, member_ids: set[str], reason: str) -> None:
        """Take members out of a loaded room and close their connections (code 4003)."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        for member_id in member_ids:
            member = room.members.pop(member_id, None)
            if member is None:
                continue
            for conn in list(member.connections):
                self.leave_room(conn)
                conn.transport.close(4003, reason)

    async def room(self, room_id: str) -> RoomState:
        """The loaded room ``room_id``.

        Raises:
            RpcError: ``RoomNotFound``.
        """
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        lock = self._room_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(room_id)
            if room is not None:
                return room
            record = await self.storage.get_room(room_id)
            if record is None:
                raise RpcError(ROOM_NOT_FOUND, "no such room")
            room = RoomState(record.id, record.name)
            for m in await self.storage.list_members(room_id):
                room.members[m.id] = Member(m.id, m.name, m.color, m.role, m.invite_id)
            for d in await self.storage.list_documents(room_id):
                room.docs[d.path] = DocState(d.id, d.path, d.eol, d.revision, durable=d.revision)
            self.rooms[room_id] = room
            return room

    async def load(self, room: RoomState, doc: DocState) -> DocumentSync:
        """The sync engine of ``doc``, loading its text and recent history on first use."""
        if doc.sync is not None:
            return doc.sync
        async with doc.load_lock:
            if doc.sync is not None:
                return doc.sync
            stored = await self.storage.load_document(room.id, doc.id)
            since = stored.snapshot_revision - DEFAULT_WINDOW
            document = await rebuild_document(self.storage, room.id, stored, since)
            doc.snapshot_revision = stored.snapshot_revision
            doc.durable = document.revision
            doc.sync = DocumentSync(
                document, max_lag=self.limits.max_lag, max_length=self.limits.max_document_length
            )
            return doc.sync

    # -- commits ---------------------------------------------------------------------------

    async def commit(self, room: RoomState, doc: DocState, ack: Ack, author: Connection) -> None:
        """Make a fresh commit durable, then send it to every other subscriber.

        Raises:
            RpcError: storage failed; the room is unloaded and its connections closed, so
                that nobody goes on from a state storage does not have.
        """
        entry = ack.entry
        member = author.member.id if author.member is not None else entry.author
        encodings = {sub.encoding for sub in doc.subscribers if sub is not author}
        frames: dict[Encoding, bytes] = {
            encoding: notification(
                "textDocument/remoteChange",
                {
                    "path": doc.path,
                    "revision": entry.revision,
                    "memberId": member,
                    "contentChanges": changes,
                },
            )
            for encoding, changes in codec.op_changes_json(
                entry.op, ack.base_text, encodings
            ).items()
        }
        assert doc.sync is not None
        snapshot = None
        if entry.revision - doc.snapshot_revision >= self.limits.snapshot_every:
            doc.snapshot_revision = entry.revision
            snapshot = doc.sync.doc.text  # the text at exactly this revision, for now
        record = OpRecord(
            entry.revision, entry.author, entry.timestamp, entry.op.to_json(), entry.seq, member
        )
        # Until its acknowledgement, the author drops server edits, and the acknowledgement
        # brings it to this revision (protocol.md §6.3): edits up to here are not sent to it.
        doc.acking[author] = entry.revision
        try:
            await self.sequencer.append(room.id, doc.id, entry.revision - 1, [record])
        except StorageError:
            log.exception("could not store revision %d of a document", entry.revision)
            self.unload(room)
            raise RpcError(-32603, "the edit could not be stored; reconnect and resend") from None
        finally:
            # The caller sends the acknowledgement before anything else can run.
            doc.acking.pop(author, None)
        doc.mark_durable(entry.revision)
        doc.revision = entry.revision
        self.touch(room)
        if snapshot is not None:
            self.spawn(self.storage.save_snapshot(room.id, doc.id, entry.revision, snapshot))
        acking = doc.acking
        for sub in doc.subscribers:
            frame = frames.get(sub.encoding)
            if frame is not None and sub is not author and acking.get(sub, 0) < entry.revision:
                sub.transport.write_frame(frame)

    def unload(self, room: RoomState) -> None:
        """Forget a room whose memory may be ahead of storage; its clients must reconnect."""
        self.rooms.pop(room.id, None)
        for conn in list(room.connections):
            conn.transport.close(1011, "room reloaded")

    # -- fan-out ---------------------------------------------------------------------------

    def broadcast(
        self, conns: set[Connection], method: str, params: Any, exclude: Connection | None = None
    ) -> None:
        """Send one notification, encoded once, to every connection in ``conns``."""
        frame = notification(method, params)
        for conn in conns:
            if conn is not exclude:
                conn.transport.write_frame(frame)

    def presence_params(
        self, conn: Connection, doc: DocState | None, encoding: Encoding
    ) -> dict[str, Any]:
        """``presence/didChange`` params for ``conn``'s member in ``encoding``."""
        member = conn.member
        assert member is not None
        params: dict[str, Any] = {
            "memberId": member.id,
            "name": member.name,
            "color": member.color,
            "path": None,
            "revision": None,
            "selections": [],
        }
        if doc is not None and doc.sync is not None:
            params["path"] = doc.path
            params["revision"] = doc.sync.doc.revision
            params["selections"] = codec.selections_json(
                doc.sync.selections_at_head(conn.client_id, encoding)
            )
        return params

    def flush_presence(self, conn: Connection) -> None:
        """Send ``conn``'s presence now to the others in its document."""
        conn.presence_timer = None
        conn.presence_sent_at = self.clock()
        doc = conn.presence_doc
        if doc is None or conn.member is None:
            return
        frames: dict[Encoding, bytes] = {}
        for sub in doc.subscribers:
            if sub is conn:
                continue
            frame = frames.get(sub.encoding)
            if frame is None:
                params = self.presence_params(conn, doc, sub.encoding)
                frame = frames[sub.encoding] = notification("presence/didChange", params)
            sub.transport.write_frame(frame)

    def schedule_presence(self, conn: Connection) -> None:
        """Send ``conn``'s presence, at most ``presence_per_second`` times a second."""
        if conn.presence_timer is not None:
            return  # a flush is due; it will send the newest selections
        wait = conn.presence_sent_at + 1.0 / self.limits.presence_per_second - self.clock()
        if wait <= 0:
            self.flush_presence(conn)
        else:
            loop = asyncio.get_running_loop()
            conn.presence_timer = loop.call_later(wait, self.flush_presence, conn)

    # -- connections -----------------------------------------------------------------------

    def close_document(self, conn: Connection, doc: DocState) -> None:
        """Stop sending ``doc`` to ``conn``; tell the others its presence there is gone."""
        conn.open_docs.pop(doc.id, None)
        doc.subscribers.discard(conn)
        if doc.sync is not None and not any(s.client_id == conn.client_id for s in doc.subscribers):
            doc.sync.close(conn.client_id)
        if conn.presence_doc is doc:
            conn.presence_doc = None
            if conn.member is not None:
                self.broadcast(
                    doc.subscribers,
                    "presence/didChange",
                    self.presence_params(conn, None, "utf-16"),
                )

    def leave_room(self, conn: Connection) -> None:
        """Take ``conn`` out of its room."""
        room, member = conn.room, conn.member
        if room is None or member is None:
            return
        for doc in list(conn.open_docs.values()):
            self.close_document(conn, doc)
        if conn.presence_timer is not None:
            conn.presence_timer.cancel()
            conn.presence_timer = None
        room.connections.discard(conn)
        member.connections.discard(conn)
        conn.room = None
        conn.member = None
        if not member.connections:
            self.broadcast(room.connections, "room/memberLeft", {"memberId": member.id})

    async def disconnect(self, conn: Connection) -> None:
        """The connection is gone."""
        self.leave_room(conn)
        self.connections.discard(conn)
        if self.by_client.get(conn.client_id) is conn:
            del self.by_client[conn.client_id]

    # -- housekeeping ----------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        """Run a background write whose failure is logged, not lost."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background write failed: %s", t.exception())

        task.add_done_callback(done)

    async def close(self) -> None:
        """Close every connection (1001) and wait for background writes."""
        for conn in list(self.connections):
            conn.transport.close(1001, "server shutting down")
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


async def rebuild_document(
    storage: Storage,
    room_id: str,
    stored: StoredDocument,
    since: int,
    window: int = DEFAULT_WINDOW,
) -> Document:
    """A stored document at its durable head, its log from revision ``since`` on in memory.

    The snapshot gives the text; the ops before it become the log (so older texts and late
    edits can still be placed), the ops after it are replayed.
    """
    snap = stored.snapshot_revision
    since = max(0, min(since, snap))
    older = await storage.read_ops(room_id, stored.record.id, since, limit=snap - since)
    document = Document(
        stored.snapshot_text,
        snap,
        stored.record.eol,
        window=window,
        history=[entry_from_record(r) for r in older],
    )
    for record in stored.ops:
        document.replay(entry_from_record(record))
    return document


async def stored_text_at(
    storage: Storage, stored: StoredDocument, room_id: str, revision: int
) -> str:
    """The text of a stored document at any revision from 0 to its head."""
    keep = max(1, stored.record.revision - revision)  # enough log to walk back to ``revision``
    document = await rebuild_document(storage, room_id, stored, revision, window=keep)
    return document.text_at(revision)


def entry_from_record(record: OpRecord) -> LogEntry:
    """The core's log entry for a stored op."""
    return LogEntry(
        record.revision,
        record.author,
        record.timestamp,
        TextOperation.from_json(record.op),
        record.seq,
    )
