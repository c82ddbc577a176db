"""The JSON-RPC methods of protocol v1 (protocol.md), one function each.

Each handler checks its params through ``protocol.codec``, checks the caller's role, acts, and
returns the result. Raising :class:`RpcError` refuses the request and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

from codesphere import __version__
from codesphere.app import owners
from codesphere.app.access import ROLE_RANK
from codesphere.app.connection import Connection
from codesphere.app.hub import new_id
from codesphere.app.rooms import PALETTE, DocState, Member, RoomState, role_allows
from codesphere.auth.tokens import UserClaims
from codesphere.core.document import normalize_eol
from codesphere.core.errors import RevisionError, SyncError
from codesphere.core.positions import ENCODINGS, Encoding
from codesphere.protocol import codec
from codesphere.protocol.errors import (
    ALREADY_EXISTS,
    DOCUMENT_NOT_FOUND,
    DOCUMENT_NOT_OPEN,
    FORBIDDEN,
    INVALID_REQUEST,
    NOT_IN_ROOM,
    TOO_LARGE,
    UNAUTHORIZED,
    RpcError,
    from_sync_error,
    invalid_params,
)
from codesphere.storage.base import AlreadyExists, DocumentRecord, InviteRecord, NotFound

Handler = Callable[[Connection, Any], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``name``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def in_room(conn: Connection, needed: str = "viewer") -> tuple[RoomState, Member]:
    """The caller's room and member, if its role is at least ``needed``."""
    if conn.room is None or conn.member is None:
        raise RpcError(NOT_IN_ROOM, "join a room first")
    if not role_allows(conn.role, needed):
        raise RpcError(FORBIDDEN, f"the {conn.role} role cannot do this")
    return conn.room, conn.member


def find_doc(room: RoomState, path: str) -> DocState:
    """The room's document at ``path``."""
    doc = room.docs.get(path)
    if doc is None:
        raise RpcError(DOCUMENT_NOT_FOUND, f"no document at {path!r}")
    return doc


def open_doc(conn: Connection, path: str) -> DocState:
    """A document the caller has open."""
    room, _ = in_room(conn)
    doc = find_doc(room, path)
    if doc.id not in conn.open_docs or doc.sync is None:
        raise RpcError(DOCUMENT_NOT_OPEN, f"open {path!r} first")
    return doc


# -- lifecycle -------------------------------------------------------------------------------


@method("initialize")
async def initialize(conn: Connection, params: Any) -> Any:
    if conn.initialized:
        raise RpcError(INVALID_REQUEST, "already initialized")
    p = codec.obj(params)
    info = codec.obj(p.get("clientInfo"), "clientInfo")
    if info:
        codec.string(info, "name", min_len=1, max_len=200)
    caps = codec.obj(p.get("capabilities"), "capabilities")
    general = codec.obj(caps.get("general"), "capabilities.general")
    offered = general.get("positionEncodings") or []
    if not isinstance(offered, list) or not all(isinstance(e, str) for e in offered):
        raise invalid_params("'positionEncodings' must be an array of strings")
    # The client's first preference that we support, as LSP 3.17 negotiates it.
    chosen = cast(Encoding, next((o for o in offered if o in ENCODINGS), "utf-16"))
    client_id = codec.opt_string(p, "clientId")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise invalid_params("'clientId' must be 1-64 characters of [A-Za-z0-9_.-]")
    name = codec.opt_string(p, "displayName", min_len=1, max_len=64)
    token = codec.opt_string(p, "token")
    hub = conn.hub
    if token is not None:
        conn.claims = hub.access.verify(token)
    conn.client_id = client_id or new_id("c")
    conn.display_name = name or "guest"
    conn.encoding = chosen
    conn.initialized = True
    previous = hub.by_client.get(conn.client_id)
    if previous is not None and previous is not conn:
        # A client reconnecting before its old socket was noticed dead takes over.
        hub.leave_room(previous)
        previous.transport.close(4001, "replaced by a newer connection")
    hub.by_client[conn.client_id] = conn
    hub.connections.add(conn)
    return {
        "serverInfo": {"name": "codesphere", "version": __version__},
        "capabilities": {"positionEncoding": chosen},
        "clientId": conn.client_id,
        "limits": hub.limits.to_json(),
    }


@method("initialized")
async def initialized(conn: Connection, params: Any) -> Any:
    return None


@method("shutdown")
async def shutdown(conn: Connection, params: Any) -> Any:
    conn.hub.leave_room(conn)
    conn.shut_down = True
    return None


@method("exit")
async def exit_(conn: Connection, params: Any) -> Any:
    conn.transport.close(1000, "exit")
    return None


@method("$/ping")
async def ping(conn: Connection, params: Any) -> Any:
    return {}


# -- rooms -----------------------------------------------------------------------------------


@method("room/create")
async def room_create(conn: Connection, params: Any) -> Any:
    p = codec.obj(params)
    name = codec.string(p, "name", min_len=1, max_len=100)
    raw_files = p.get("files") or []
    if not isinstance(raw_files, list) or len(raw_files) > 1000:
        raise invalid_params("'files' must be an array of at most 1000 files")
    files: list[tuple[str, str]] = []
    for i, f in enumerate(raw_files):
        fo = codec.obj(f, f"files[{i}]")
        files.append(
            (codec.path(fo), codec.string(fo, "text", max_len=conn.hub.limits.max_document_length))
        )
    if len({path for path, _ in files}) != len(files):
        raise RpcError(ALREADY_EXISTS, "two files have the same path")
    claims = conn.claims
    if claims is None:
        raise RpcError(UNAUTHORIZED, "creating a room needs a user token (send it in initialize)")
    if not isinstance(claims, UserClaims):
        raise RpcError(FORBIDDEN, "creating a room needs a user token, not a room's token")
    room_id = await conn.hub.create_room(name, files, claims.user, conn.display_name)
    return {"roomId": room_id}


@method("room/join")
async def room_join(conn: Connection, params: Any) -> Any:
    p = codec.obj(params)
    room_id = codec.opt_string(p, "roomId", min_len=1, max_len=100)
    wanted = codec.opt_string(p, "role")
    if wanted not in (None, "editor", "viewer"):
        raise invalid_params("'role' must be 'editor' or 'viewer'")
    token = codec.opt_string(p, "token")
    hub = conn.hub
    claims = hub.access.verify(token) if token is not None else conn.claims
    if claims is None:
        raise RpcError(UNAUTHORIZED, "joining a room needs a token (in initialize or here)")
    target = room_id if room_id is not None or isinstance(claims, UserClaims) else claims.room
    loaded = hub.rooms.get(target) if target is not None else None
    color = loaded.next_color() if loaded is not None else PALETTE[0]
    grant = await hub.access.admit(claims, room_id, conn.display_name, color, wanted)
    room = await hub.room(grant.room_id)
    if conn.room is not None:
        hub.leave_room(conn)
    record = grant.member
    member = room.members.get(record.id)
    if member is None:
        # Colours are handed out here, in join order, so that members joining at the same
        # time do not all get the colour that was next when they were admitted.
        member = Member(record.id, conn.display_name, room.next_color(), record.role)
        room.members[member.id] = member
    member.role, member.invite_id = record.role, record.invite_id
    if (record.name, record.color) != (conn.display_name, member.color):
        member.name = conn.display_name
        await hub.storage.upsert_member(replace(record, name=member.name, color=member.color))
    first = not member.connections
    member.connections.add(conn)
    room.connections.add(conn)
    conn.room, conn.member = room, member
    conn.role = min(member.role, wanted or member.role, key=ROLE_RANK.__getitem__)
    if first:
        hub.broadcast(room.connections, "room/memberJoined", {"member": member.to_json()}, conn)
    result: dict[str, Any] = {
        "room": {"id": room.id, "name": room.name},
        "you": {**member.to_json(), "role": conn.role},
        "members": [m.to_json() for m in room.members.values()],
        "files": [d.info() for d in sorted(room.docs.values(), key=lambda d: d.path)],
    }
    if grant.member_token is not None:
        result["memberToken"] = grant.member_token
    return result


# -- invites and members (owners) ------------------------------------------------------------

#: An invite lasts a week unless asked otherwise, and at most a year.
DEFAULT_INVITE_SECONDS = 7 * 86400
MAX_INVITE_SECONDS = 365 * 86400


def invite_json(conn: Connection, invite: InviteRecord) -> dict[str, Any]:
    """The protocol's ``Invite``."""
    return {
        "inviteId": invite.id,
        "role": invite.role,
        "createdAt": int(invite.created_at * 1000),
        "expiresAt": int(invite.expires_at * 1000),
        "maxUses": invite.max_uses,
        "uses": invite.uses,
        "revoked": invite.revoked_at is not None,
        "token": owners.invite_token(conn.hub, invite),
    }


@method("invite/create")
async def invite_create(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn, "owner")
    p = codec.obj(params)
    role = codec.string(p, "role")
    if role not in ROLE_RANK:
        raise invalid_params("'role' must be 'owner', 'editor' or 'viewer'")
    seconds = codec.opt_integer(p, "expiresInSeconds")
    if seconds is None:
        seconds = DEFAULT_INVITE_SECONDS
    if not 60 <= seconds <= MAX_INVITE_SECONDS:
        raise invalid_params(f"'expiresInSeconds' must be between 60 and {MAX_INVITE_SECONDS}")
    max_uses = codec.opt_integer(p, "maxUses")
    if max_uses is not None and not 1 <= max_uses <= 1_000_000:
        raise invalid_params("'maxUses' must be between 1 and 1000000")
    invite = await owners.create_invite(conn.hub, room.id, role, seconds, max_uses, member.id)
    return invite_json(conn, invite)


@method("invite/list")
async def invite_list(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn, "owner")
    invites = await conn.hub.storage.list_invites(room.id)
    return {"invites": [invite_json(conn, i) for i in invites]}


@method("invite/revoke")
async def invite_revoke(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn, "owner")
    invite_id = codec.string(codec.obj(params), "inviteId", min_len=1, max_len=100)
    await owners.revoke_invite(conn.hub, room.id, invite_id)
    return None


@method("member/remove")
async def member_remove(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn, "owner")
    member_id = codec.string(codec.obj(params), "memberId", min_len=1, max_len=100)
    await owners.remove_member(conn.hub, room.id, member_id, member.id)
    return None


@method("room/leave")
async def room_leave(conn: Connection, params: Any) -> Any:
    in_room(conn)
    conn.hub.leave_room(conn)
    return None


# -- workspace -------------------------------------------------------------------------------


@method("workspace/files")
async def workspace_files(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn)
    return {"files": [d.info() for d in sorted(room.docs.values(), key=lambda d: d.path)]}


@method("workspace/createFile")
async def workspace_create(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn, "editor")
    p = codec.obj(params)
    path = codec.path(p)
    limit = conn.hub.limits.max_document_length
    text, eol = normalize_eol(codec.opt_string(p, "text") or "")
    if len(text) > limit:
        raise RpcError(TOO_LARGE, f"documents are limited to {limit} characters")
    if path in room.docs:
        raise RpcError(ALREADY_EXISTS, f"{path!r} exists")
    hub = conn.hub
    record = DocumentRecord(room.id, new_id("d"), path, eol, hub.clock(), 0)
    try:
        await hub.storage.create_document(record, text)
        hub.touch(room)
    except AlreadyExists:
        raise RpcError(ALREADY_EXISTS, f"{path!r} exists") from None
    if path in room.docs:  # created concurrently by another connection while we wrote
        raise RpcError(ALREADY_EXISTS, f"{path!r} exists")
    room.docs[path] = DocState(record.id, path, eol, 0)
    hub.broadcast(
        room.connections,
        "workspace/didCreateFile",
        {"path": path, "revision": 0, "eol": eol, "memberId": member.id},
        conn,
    )
    return {"path": path, "revision": 0, "eol": eol}


@method("workspace/renameFile")
async def workspace_rename(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn, "editor")
    p = codec.obj(params)
    path, new_path = codec.path(p), codec.path(p, "newPath")
    doc = find_doc(room, path)
    if new_path in room.docs:
        raise RpcError(ALREADY_EXISTS, f"{new_path!r} exists")
    try:
        await conn.hub.storage.rename_document(room.id, doc.id, new_path)
        conn.hub.touch(room)
    except AlreadyExists:
        raise RpcError(ALREADY_EXISTS, f"{new_path!r} exists") from None
    except NotFound:
        raise RpcError(DOCUMENT_NOT_FOUND, f"no document at {path!r}") from None
    room.docs.pop(doc.path, None)
    doc.path = new_path
    room.docs[new_path] = doc
    conn.hub.broadcast(
        room.connections,
        "workspace/didRenameFile",
        {"path": path, "newPath": new_path, "memberId": member.id},
        conn,
    )
    return None


@method("workspace/deleteFile")
async def workspace_delete(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn, "editor")
    path = codec.path(codec.obj(params))
    doc = find_doc(room, path)
    try:
        await conn.hub.storage.delete_document(room.id, doc.id)
        conn.hub.touch(room)
    except NotFound:
        raise RpcError(DOCUMENT_NOT_FOUND, f"no document at {path!r}") from None
    room.docs.pop(doc.path, None)
    for sub in list(doc.subscribers):
        sub.open_docs.pop(doc.id, None)
        if sub.presence_doc is doc:
            sub.presence_doc = None
    doc.subscribers.clear()
    conn.hub.broadcast(
        room.connections, "workspace/didDeleteFile", {"path": path, "memberId": member.id}, conn
    )
    return None


# -- documents -------------------------------------------------------------------------------


@method("textDocument/didOpen")
async def did_open(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn)
    p = codec.obj(params)
    doc = find_doc(room, codec.path(p))
    resume = codec.opt_integer(p, "revision")
    hub = conn.hub
    sync = await hub.load(room, doc)
    try:
        text, revision = sync.open(conn.client_id, conn.encoding, resume)
    except SyncError as exc:
        raise from_sync_error(exc) from None
    # Another connection of the same client (an old socket) no longer owns this view.
    for other in [s for s in doc.subscribers if s.client_id == conn.client_id and s is not conn]:
        other.open_docs.pop(doc.id, None)
        doc.subscribers.discard(other)
    conn.open_docs[doc.id] = doc
    doc.subscribers.add(conn)
    result = {
        "path": doc.path,
        "text": text,
        "revision": revision,
        "eol": doc.eol,
        "lastSeq": sync.last_seq.get(conn.client_id, 0),
    }
    # The presence of everyone already there goes out just after the result that defines
    # the text those positions refer to.
    hub.spawn(_send_presence_of_others(conn, doc))
    return result


async def _send_presence_of_others(conn: Connection, doc: DocState) -> None:
    """After a didOpen answer: show the opener where the others are."""
    for sub in list(doc.subscribers):
        if sub is not conn and sub.presence_doc is doc and sub.member is not None:
            conn.notify("presence/didChange", conn.hub.presence_params(sub, doc, conn.encoding))


@method("textDocument/didClose")
async def did_close(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn)
    doc = find_doc(room, codec.path(codec.obj(params)))
    conn.hub.close_document(conn, doc)
    return None


@method("textDocument/didChange")
async def did_change(conn: Connection, params: Any) -> Any:
    p = codec.obj(params)
    path = codec.path(p)
    base = codec.integer(p, "revision")
    seq = codec.opt_integer(p, "seq") or 0
    changes = codec.content_changes(p.get("contentChanges"))
    room, _ = in_room(conn, "editor")
    doc = open_doc(conn, path)
    assert doc.sync is not None
    try:
        ack = doc.sync.change(conn.client_id, base, changes, conn.hub.clock(), seq)
    except SyncError as exc:
        raise from_sync_error(exc) from None
    if ack.duplicate:
        await doc.wait_durable(ack.entry.revision)
    else:
        await conn.hub.commit(room, doc, ack, conn)
    return {
        "revision": ack.revision,
        "catchUp": codec.op_json_changes(ack.to_head, ack.view, ack.encoding),
    }


@method("textDocument/checksum")
async def checksum(conn: Connection, params: Any) -> Any:
    p = codec.obj(params)
    doc = open_doc(conn, codec.path(p))
    assert doc.sync is not None
    document = doc.sync.doc
    revision = codec.opt_integer(p, "revision")
    if revision is None:
        revision = document.revision
    try:
        if revision > document.revision:
            raise RevisionError(f"revision {revision} is ahead of the document")
        text = document.text_at(revision)
    except SyncError as exc:
        raise from_sync_error(exc) from None
    return {"revision": revision, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


# -- presence --------------------------------------------------------------------------------


@method("presence/update")
async def presence_update(conn: Connection, params: Any) -> Any:
    in_room(conn)
    p = codec.obj(params)
    if p.get("path") is None:
        _leave_presence(conn)
        return None
    doc = open_doc(conn, codec.path(p))
    base = codec.integer(p, "revision")
    sels = codec.selections(p.get("selections"))
    assert doc.sync is not None
    try:
        doc.sync.set_selections(conn.client_id, base, sels)
    except SyncError as exc:
        raise from_sync_error(exc) from None
    if conn.presence_doc is not doc:
        _leave_presence(conn)  # the member looks elsewhere now: say so where it looked
    conn.presence_doc = doc
    conn.hub.schedule_presence(conn)
    return None


def _leave_presence(conn: Connection) -> None:
    """Tell those in the document ``conn`` was looking at that it no longer looks there."""
    previous, conn.presence_doc = conn.presence_doc, None
    if previous is not None:
        hub = conn.hub
        params = hub.presence_params(conn, None, "utf-16")
        hub.broadcast(previous.subscribers, "presence/didChange", params, conn)


# -- chat ------------------------------------------------------------------------------------


def _chat_json(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "seq": record.seq,
        "memberId": record.author_id,
        "name": record.author_name,
        "text": record.text,
        "timestamp": int(record.timestamp * 1000),
    }


@method("chat/send")
async def chat_send(conn: Connection, params: Any) -> Any:
    room, member = in_room(conn)
    hub = conn.hub
    text = codec.string(codec.obj(params), "text", min_len=1, max_len=hub.limits.max_chat_length)
    record = await hub.storage.append_chat(
        room.id, new_id("m"), member.id, member.name, text, hub.clock()
    )
    hub.touch(room)
    message = _chat_json(record)
    hub.broadcast(room.connections, "chat/message", {"message": message})
    return {"message": message}


@method("chat/history")
async def chat_history(conn: Connection, params: Any) -> Any:
    room, _ = in_room(conn)
    p = codec.obj(params)
    before = codec.opt_integer(p, "before", low=1)
    limit = codec.opt_integer(p, "limit", low=1, high=200) or 50
    records = await conn.hub.storage.chat_history(room.id, before, limit + 1)
    has_more = len(records) > limit
    return {"messages": [_chat_json(r) for r in records[-limit:]], "hasMore": has_more}
