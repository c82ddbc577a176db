"""The REST API: rooms, documents, history, chat, invites, members, export, health.

Every route checks the caller's token and role the way ``room/join`` does (see
:mod:`codesphere.app.access`) and answers refusals with the protocol's error codes. Reads come
from storage, so they show exactly what has been acknowledged as durable.
"""

from __future__ import annotations

import io
import time
import zipfile

from aiohttp import web

from codesphere.api import models as m
from codesphere.api.spec import Api, Call
from codesphere.app import owners
from codesphere.app.access import ROLE_RANK, user_member_id
from codesphere.app.hub import stored_text_at
from codesphere.auth.tokens import Claims, InviteClaims, MemberClaims, UserClaims
from codesphere.core.changes import op_to_changes
from codesphere.core.operation import TextOperation
from codesphere.protocol.errors import (
    ALREADY_EXISTS,
    DOCUMENT_NOT_FOUND,
    FORBIDDEN,
    INVALID_REVISION,
    ROOM_NOT_FOUND,
    RpcError,
)
from codesphere.storage.base import (
    DocumentRecord,
    InviteRecord,
    MemberRecord,
    NotFound,
    RoomRecord,
    StoredDocument,
)

api = Api(
    "CodeSphere",
    "Rooms, documents, history, chat and invites of a CodeSphere server. Send a token as "
    "`Authorization: Bearer <token>` (protocol.md §4.1): a user token for your rooms, or a "
    "member token for its room. Errors carry the protocol's codes (protocol.md §9).",
)

#: A new room comes with one invite per role for its owner to hand out.
ROOM_INVITE_ROLES = ("editor", "viewer")


def ms(seconds: float) -> int:
    return int(seconds * 1000)


async def role_in(call: Call, room_id: str, needed: str = "viewer") -> tuple[str, str]:
    """The caller's ``(member id, role)`` in ``room_id``, if the role is at least ``needed``."""
    assert call.claims is not None
    member_id, role = await call.hub.access.membership(call.claims, room_id)
    if ROLE_RANK[role] < ROLE_RANK[needed]:
        raise RpcError(FORBIDDEN, f"the {role} role cannot do this")
    return member_id, role


def user_of(claims: Claims | None) -> UserClaims:
    if not isinstance(claims, UserClaims):
        raise RpcError(FORBIDDEN, "this needs a user token, not a room's token")
    return claims


async def room_record(call: Call, room_id: str) -> RoomRecord:
    record = await call.hub.storage.get_room(room_id)
    if record is None:  # deleted since the membership check
        raise RpcError(ROOM_NOT_FOUND, "no such room")
    return record


def invite_model(call: Call, invite: InviteRecord) -> m.Invite:
    token = owners.invite_token(call.hub, invite)
    return m.Invite(
        inviteId=invite.id,
        role=invite.role,  # type: ignore[arg-type]
        createdAt=ms(invite.created_at),
        expiresAt=ms(invite.expires_at),
        maxUses=invite.max_uses,
        uses=invite.uses,
        revoked=invite.revoked_at is not None,
        token=token,
        # The token rides in the fragment, which browsers never send to a server.
        url=None if token is None else f"{call.base_url()}/#token={token}",
    )


def members_of(call: Call, room_id: str, records: list[MemberRecord]) -> list[m.Member]:
    loaded = call.hub.rooms.get(room_id)
    online = (
        {mid for mid, member in loaded.members.items() if member.connections} if loaded else set()
    )
    return [
        m.Member(
            memberId=r.id,
            name=r.name,
            color=r.color,
            role=r.role,  # type: ignore[arg-type]
            online=r.id in online,
        )
        for r in records
    ]


def document_info(d: DocumentRecord) -> m.DocumentInfo:
    return m.DocumentInfo(documentId=d.id, path=d.path, revision=d.revision, eol=d.eol)  # type: ignore[arg-type]


async def load_document(call: Call, room_id: str, document_id: str) -> StoredDocument:
    """The stored document (its record says path, head and line ends) or DocumentNotFound."""
    try:
        return await call.hub.storage.load_document(room_id, document_id)
    except NotFound:
        raise RpcError(DOCUMENT_NOT_FOUND, f"no document {document_id!r} in this room") from None


# -- health ----------------------------------------------------------------------------------


@api.operation("GET", "/healthz", summary="Liveness", tag="health", response=m.Health, auth=False)
async def healthz(call: Call) -> m.Health:
    """The process is up and answering."""
    return m.Health(status="ok")


@api.operation(
    "GET", "/readyz", summary="Readiness", tag="health", response=m.Readiness, auth=False,
    errors=(503,),
)  # fmt: skip
async def readyz(call: Call) -> web.StreamResponse:
    """Storage answers a read; 503 with the reason when it does not."""
    start = time.perf_counter()
    error = None
    try:
        await call.hub.storage.get_room("readiness-probe")
    except Exception as exc:  # whatever storage raises, readiness reports it
        error = type(exc).__name__
    state = m.StorageState(
        backend=type(call.hub.storage).__name__.removesuffix("Storage").lower(),
        ok=error is None,
        latencyMs=round((time.perf_counter() - start) * 1000, 3),
        error=error,
    )
    body = m.Readiness(status="ready" if error is None else "unavailable", storage=state)
    return web.json_response(body.model_dump(mode="json"), status=200 if error is None else 503)


# -- rooms -----------------------------------------------------------------------------------


@api.operation(
    "POST", "/api/rooms", summary="Create a room", tag="rooms", body=m.RoomCreate,
    response=m.RoomCreated, status=201, errors=(409,),
)  # fmt: skip
async def create_room(call: Call) -> m.RoomCreated:
    """Needs a user token; that user owns the room. Answers with a member token for the owner
    and a fresh invite (one week, unlimited uses) per role to hand out."""
    user = user_of(call.claims)
    body: m.RoomCreate = call.body
    paths = [f.path for f in body.files]
    if len(set(paths)) != len(paths):
        raise RpcError(ALREADY_EXISTS, "two files have the same path")
    room_id = await call.hub.create_room(
        body.name, [(f.path, f.text) for f in body.files], user.user, user.name or user.user
    )
    owner = user_member_id(user.user)
    invites = {
        role: invite_model(
            call, await owners.create_invite(call.hub, room_id, role, 7 * 86400, None, owner)
        )
        for role in ROOM_INVITE_ROLES
    }
    return m.RoomCreated(
        roomId=room_id,
        name=body.name,
        ownerToken=call.hub.tokens.mint_member(room_id, owner),
        invites=invites,
    )


@api.operation("GET", "/api/rooms", summary="Your rooms", tag="rooms", response=m.RoomList)
async def list_rooms(call: Call) -> m.RoomList:
    """A user token lists the user's rooms (an operator's: every room); a member token, its
    room."""
    claims = call.claims
    storage = call.hub.storage
    rooms: list[m.RoomSummary] = []
    if isinstance(claims, UserClaims) and claims.admin:
        for r in await storage.list_rooms():
            rooms.append(_summary(r, "owner"))
    elif isinstance(claims, UserClaims):
        for r, member in await storage.rooms_of_user(claims.user):
            rooms.append(_summary(r, member.role))
    elif isinstance(claims, MemberClaims):
        _, role = await role_in(call, claims.room)
        rooms.append(_summary(await room_record(call, claims.room), role))
    elif isinstance(claims, InviteClaims):
        raise RpcError(FORBIDDEN, "an invite token must first be redeemed by joining the room")
    return m.RoomList(rooms=rooms)


def _summary(r: RoomRecord, role: str) -> m.RoomSummary:
    return m.RoomSummary(
        roomId=r.id,
        name=r.name,
        role=role,  # type: ignore[arg-type]
        createdAt=ms(r.created_at),
        updatedAt=ms(r.updated_at),
    )


@api.operation(
    "GET", "/api/rooms/{room_id}", summary="A room: members, documents", tag="rooms",
    response=m.RoomDetail,
)  # fmt: skip
async def get_room(call: Call) -> m.RoomDetail:
    room_id = call.params["room_id"]
    _, role = await role_in(call, room_id)
    record = await room_record(call, room_id)
    storage = call.hub.storage
    return m.RoomDetail(
        roomId=record.id,
        name=record.name,
        role=role,  # type: ignore[arg-type]
        createdAt=ms(record.created_at),
        updatedAt=ms(record.updated_at),
        members=members_of(call, room_id, await storage.list_members(room_id)),
        documents=[document_info(d) for d in await storage.list_documents(room_id)],
    )


@api.operation("DELETE", "/api/rooms/{room_id}", summary="Delete a room", tag="rooms", status=204)
async def delete_room(call: Call) -> None:
    """Owners only. Everything in the room goes; its connections are closed with 4004."""
    room_id = call.params["room_id"]
    await role_in(call, room_id, "owner")
    try:
        await call.hub.delete_room(room_id)
    except NotFound:
        raise RpcError(ROOM_NOT_FOUND, "no such room") from None


@api.operation(
    "GET", "/api/rooms/{room_id}/members", summary="Members", tag="members",
    response=m.MemberList,
)  # fmt: skip
async def list_members(call: Call) -> m.MemberList:
    room_id = call.params["room_id"]
    await role_in(call, room_id)
    records = await call.hub.storage.list_members(room_id)
    return m.MemberList(members=members_of(call, room_id, records))


@api.operation(
    "DELETE", "/api/rooms/{room_id}/members/{member_id}", summary="Remove a member",
    tag="members", status=204,
)  # fmt: skip
async def remove_member(call: Call) -> None:
    """Owners only. The member's connections close with 4003; its tokens stop working."""
    room_id, member_id = call.params["room_id"], call.params["member_id"]
    me, _ = await role_in(call, room_id, "owner")
    await owners.remove_member(call.hub, room_id, member_id, me)


# -- documents -------------------------------------------------------------------------------


@api.operation(
    "GET", "/api/rooms/{room_id}/documents", summary="Documents", tag="documents",
    response=m.DocumentList,
)  # fmt: skip
async def list_documents(call: Call) -> m.DocumentList:
    room_id = call.params["room_id"]
    await role_in(call, room_id)
    docs = await call.hub.storage.list_documents(room_id)
    return m.DocumentList(documents=[document_info(d) for d in docs])


@api.operation(
    "GET", "/api/rooms/{room_id}/documents/{document_id}", summary="A document's text",
    tag="documents", query=m.TextQuery, response=m.DocumentText,
)  # fmt: skip
async def read_document(call: Call) -> m.DocumentText:
    """The text at the head, or at any past ``revision``."""
    room_id, document_id = call.params["room_id"], call.params["document_id"]
    await role_in(call, room_id)
    stored = await load_document(call, room_id, document_id)
    record = stored.record
    query: m.TextQuery = call.query
    revision = record.revision if query.revision is None else query.revision
    if revision > record.revision:
        raise RpcError(INVALID_REVISION, f"the document is at revision {record.revision}")
    text = await stored_text_at(call.hub.storage, stored, room_id, revision)
    return m.DocumentText(
        documentId=record.id,
        path=record.path,
        revision=revision,
        eol=record.eol,  # type: ignore[arg-type]
        text=text,
    )


@api.operation(
    "GET", "/api/rooms/{room_id}/documents/{document_id}/history",
    summary="A document's edits, page by page", tag="documents", query=m.HistoryQuery,
    response=m.HistoryPage,
)  # fmt: skip
async def document_history(call: Call) -> m.HistoryPage:
    """Who changed what, when: each revision after ``after`` with its changes, as ranges of
    the text before it (UTF-16 positions)."""
    room_id, document_id = call.params["room_id"], call.params["document_id"]
    await role_in(call, room_id)
    stored = await load_document(call, room_id, document_id)
    record = stored.record
    query: m.HistoryQuery = call.query
    after = min(query.after, record.revision)
    storage = call.hub.storage
    text = await stored_text_at(storage, stored, room_id, after)
    ops = await storage.read_ops(room_id, document_id, after, limit=query.limit)
    entries = []
    for op_record in ops:
        op = TextOperation.from_json(op_record.op)
        changes = op_to_changes(op, text, "utf-16")
        text = op.apply(text)
        entries.append(
            m.HistoryEntry(
                revision=op_record.revision,
                memberId=op_record.member or op_record.author,
                timestamp=ms(op_record.timestamp),
                changes=[
                    m.Change(
                        range=m.Range(
                            start=m.Position(line=c.range[0][0], character=c.range[0][1]),
                            end=m.Position(line=c.range[1][0], character=c.range[1][1]),
                        ),
                        text=c.text,
                    )
                    for c in changes
                    if c.range is not None
                ],
            )
        )
    last = entries[-1].revision if entries else after
    return m.HistoryPage(entries=entries, next=last if last < record.revision else None)


@api.operation(
    "GET", "/api/rooms/{room_id}/export", summary="Export the files as a zip archive",
    tag="documents", media_type="application/zip",
)  # fmt: skip
async def export_room(call: Call) -> web.StreamResponse:
    """Every document at its head, with its own line ends, in a zip archive."""
    room_id = call.params["room_id"]
    await role_in(call, room_id)
    record = await room_record(call, room_id)
    storage = call.hub.storage
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for d in await storage.list_documents(room_id):
            stored = await storage.load_document(room_id, d.id)
            text = await stored_text_at(storage, stored, room_id, d.revision)
            archive.writestr(d.path, text.replace("\n", d.eol).encode("utf-8"))
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in record.name)[:60]
    return web.Response(
        body=buffer.getvalue(),
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{safe or "room"}.zip"'},
    )


# -- chat ------------------------------------------------------------------------------------


@api.operation(
    "GET", "/api/rooms/{room_id}/chat", summary="Chat history, page by page", tag="chat",
    query=m.ChatQuery, response=m.ChatPage,
)  # fmt: skip
async def chat_history(call: Call) -> m.ChatPage:
    """The newest ``limit`` messages before ``before``; follow ``next`` for older ones."""
    room_id = call.params["room_id"]
    await role_in(call, room_id)
    query: m.ChatQuery = call.query
    records = await call.hub.storage.chat_history(room_id, query.before, query.limit + 1)
    page = records[-query.limit :]
    more = len(records) > query.limit
    return m.ChatPage(
        messages=[
            m.ChatMessage(
                id=r.id,
                seq=r.seq,
                memberId=r.author_id,
                name=r.author_name,
                text=r.text,
                timestamp=ms(r.timestamp),
            )
            for r in page
        ],
        next=page[0].seq if more and page else None,
    )


# -- invites ---------------------------------------------------------------------------------


@api.operation(
    "POST", "/api/rooms/{room_id}/invites", summary="Create an invite", tag="invites",
    body=m.InviteCreate, response=m.Invite, status=201,
)  # fmt: skip
async def create_invite(call: Call) -> m.Invite:
    """Owners only."""
    room_id = call.params["room_id"]
    me, _ = await role_in(call, room_id, "owner")
    body: m.InviteCreate = call.body
    invite = await owners.create_invite(
        call.hub, room_id, body.role, body.expiresInSeconds, body.maxUses, me
    )
    return invite_model(call, invite)


@api.operation(
    "GET", "/api/rooms/{room_id}/invites", summary="Invites", tag="invites",
    response=m.InviteList,
)  # fmt: skip
async def list_invites(call: Call) -> m.InviteList:
    """Owners only; revoked invites included."""
    room_id = call.params["room_id"]
    await role_in(call, room_id, "owner")
    invites = await call.hub.storage.list_invites(room_id)
    return m.InviteList(invites=[invite_model(call, i) for i in invites])


@api.operation(
    "DELETE", "/api/rooms/{room_id}/invites/{invite_id}", summary="Revoke an invite",
    tag="invites", status=204,
)  # fmt: skip
async def revoke_invite(call: Call) -> None:
    """Owners only. Members who joined through it are disconnected (4003) and barred."""
    room_id, invite_id = call.params["room_id"], call.params["invite_id"]
    await role_in(call, room_id, "owner")
    await owners.revoke_invite(call.hub, room_id, invite_id)
