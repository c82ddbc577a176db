"""What a room's owners do to invites and members, for the JSON-RPC methods and the REST API.

Both take effect at once: revoking an invite or removing a member closes the affected
connections with 4003, and :mod:`codesphere.app.access` refuses their tokens from then on.
"""

from __future__ import annotations

from codesphere.app.hub import Hub, new_id
from codesphere.protocol.errors import FORBIDDEN, NOT_FOUND, RpcError
from codesphere.storage.base import InviteRecord, NotFound


async def create_invite(
    hub: Hub, room_id: str, role: str, seconds: float, max_uses: int | None, by: str
) -> InviteRecord:
    """Store a new invite to ``room_id`` made by member ``by``."""
    now = hub.clock()
    invite = InviteRecord(room_id, new_id("i"), role, now, now + seconds, max_uses, 0, None, by)
    await hub.storage.create_invite(invite)
    return invite


def invite_token(hub: Hub, invite: InviteRecord) -> str | None:
    """A token for ``invite`` (minted afresh: tokens are not kept), or None once revoked."""
    if invite.revoked_at is not None:
        return None
    return hub.tokens.mint_invite(
        invite.room_id, invite.role, invite.id, expires_at=invite.expires_at
    )


async def revoke_invite(hub: Hub, room_id: str, invite_id: str) -> None:
    """Revoke an invite and disconnect everyone who joined through it.

    Raises:
        RpcError: ``NotFound``.
    """
    try:
        await hub.storage.revoke_invite(room_id, invite_id, hub.clock())
    except NotFound:
        raise RpcError(NOT_FOUND, f"no invite {invite_id!r} in this room") from None
    room = hub.rooms.get(room_id)
    if room is not None:
        joined = {mid for mid, member in room.members.items() if member.invite_id == invite_id}
        hub.remove_members(room_id, joined, "the invite was revoked")


async def remove_member(hub: Hub, room_id: str, member_id: str, by: str) -> None:
    """Remove a member (not oneself) and disconnect them; the others are told.

    Raises:
        RpcError: ``Forbidden`` for oneself, ``NotFound``.
    """
    if member_id == by:
        raise RpcError(FORBIDDEN, "an owner cannot remove themselves; leave the room instead")
    try:
        await hub.storage.delete_member(room_id, member_id)
    except NotFound:
        raise RpcError(NOT_FOUND, f"no member {member_id!r} in this room") from None
    room = hub.rooms.get(room_id)
    if room is None:
        return
    removed = room.members.get(member_id)
    if removed is None or not removed.connections:  # else their leaving announces it
        hub.broadcast(room.connections, "room/memberLeft", {"memberId": member_id})
    hub.remove_members(room_id, {member_id}, "removed from the room")
