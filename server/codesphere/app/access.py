"""Who may enter which room, with which role: tokens checked against what storage knows.

A token only says who is asking (:mod:`codesphere.auth.tokens`); whether they get in is decided
here, on every join, from storage, so that a removed member or a revoked invite stops working at
once even though its token has not expired:

* a **user** token admits its user to the rooms where they are a member (their member id is their
  user id). An operator's user token (``adm``) admits to every room: joining one for the first
  time makes the operator a member, an editor unless the join asks for viewer; over REST it
  acts as an owner of every room;
* an **invite** token is redeemed: if the invite is still valid and has uses left, a new member
  with the invite's role is added, and the join answers with a **member** token for later
  reconnects, so that reconnecting does not use the invite up;
* a **member** token admits while its member exists and the invite it came through (if any) is
  not revoked.

Every refusal says the same thing whether or not the room exists, so a token for one room
learns nothing about another.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from codesphere.auth.tokens import (
    Claims,
    InviteClaims,
    MemberClaims,
    TokenError,
    TokenService,
    UserClaims,
)
from codesphere.protocol.errors import (
    FORBIDDEN,
    ROOM_NOT_FOUND,
    UNAUTHORIZED,
    RpcError,
    invalid_params,
)
from codesphere.storage.base import InviteUnusable, MemberRecord, NotFound, Storage

ROLE_RANK = {"viewer": 0, "editor": 1, "owner": 2}


@dataclass(frozen=True, slots=True)
class Grant:
    """Admission to a room."""

    room_id: str
    member: MemberRecord
    #: A member token to reconnect with, when this admission redeemed an invite.
    member_token: str | None = None


def user_member_id(user: str) -> str:
    """The member id a user has in every room: the user id (invited members get ``m-…``)."""
    return user


def no_access(room_id: str | None) -> RpcError:
    """The one refusal for a valid token that does not open ``room_id``.

    It names nothing, not even the room asked for, so that no refusal carries anything of a
    room the caller may not see.
    """
    return RpcError(FORBIDDEN, "this token gives no access to that room")


class Access:
    """Checks tokens and admits their holders to rooms."""

    def __init__(self, tokens: TokenService, storage: Storage, clock: Callable[[], float]) -> None:
        self.tokens = tokens
        self.storage = storage
        self.clock = clock

    def verify(self, token: str) -> Claims:
        """The claims of a valid token.

        Raises:
            RpcError: ``Unauthorized``, saying what is wrong with the token (never the token).
        """
        try:
            return self.tokens.verify(token)
        except TokenError as exc:
            raise RpcError(UNAUTHORIZED, str(exc)) from None

    async def admit(
        self, claims: Claims, room_id: str | None, name: str, color: str, wanted: str | None
    ) -> Grant:
        """Admit the holder of ``claims`` to ``room_id`` (default: the token's room).

        ``wanted`` is the role an operator joining a room for the first time asks for
        (default editor); everyone else has the role their membership or invite gives.

        Raises:
            RpcError: ``Forbidden`` when the token does not open that room;
                ``InvalidParams`` when a user token names no room; ``RoomNotFound`` for an
                operator naming a room that does not exist.
        """
        if isinstance(claims, UserClaims):
            if room_id is None:
                raise invalid_params("'roomId' is required when joining with a user token")
            return await self._admit_user(claims, room_id, name, color, wanted or "editor")
        if room_id is not None and room_id != claims.room:
            raise no_access(room_id)
        if isinstance(claims, InviteClaims):
            return await self._redeem(claims, name, color)
        return await self._admit_member(claims)

    async def membership(self, claims: Claims, room_id: str) -> tuple[str, str]:
        """``(member id, role)`` of ``claims`` in ``room_id``, changing nothing (for REST).

        An operator counts as an owner of every room. An invite token has no membership
        until it is redeemed by joining.

        Raises:
            RpcError: ``Forbidden``; ``RoomNotFound`` for an operator naming no room.
        """
        if isinstance(claims, UserClaims):
            member = await self.storage.get_member(room_id, user_member_id(claims.user))
            if member is not None:
                return member.id, "owner" if claims.admin else member.role
            if not claims.admin:
                raise no_access(room_id)
            if await self.storage.get_room(room_id) is None:
                raise RpcError(ROOM_NOT_FOUND, "no such room")
            return user_member_id(claims.user), "owner"
        if room_id != claims.room:
            raise no_access(room_id)
        if isinstance(claims, InviteClaims):
            raise RpcError(FORBIDDEN, "an invite token must first be redeemed by joining the room")
        grant = await self._admit_member(claims)
        return grant.member.id, grant.member.role

    async def _admit_user(
        self, claims: UserClaims, room_id: str, name: str, color: str, role: str
    ) -> Grant:
        member_id = user_member_id(claims.user)
        member = await self.storage.get_member(room_id, member_id)
        if member is not None:
            return Grant(room_id, member)
        if not claims.admin:
            raise no_access(room_id)
        if await self.storage.get_room(room_id) is None:
            raise RpcError(ROOM_NOT_FOUND, "no such room")
        member = MemberRecord(room_id, member_id, name, color, role, self.clock(), claims.user)
        await self.storage.upsert_member(member)
        return Grant(room_id, member)

    async def _redeem(self, claims: InviteClaims, name: str, color: str) -> Grant:
        invite = await self.storage.get_invite(claims.invite)
        if invite is None or invite.room_id != claims.room or invite.role != claims.role:
            raise no_access(claims.room)
        member = MemberRecord(
            claims.room,
            f"m-{secrets.token_hex(6)}",
            name,
            color,
            invite.role,
            self.clock(),
            None,
            invite.id,
        )
        try:
            await self.storage.redeem_invite(invite.id, self.clock(), member)
        except InviteUnusable as exc:
            raise RpcError(FORBIDDEN, str(exc)) from None
        except NotFound:
            raise no_access(claims.room) from None
        token = self.tokens.mint_member(claims.room, member.id)
        return Grant(claims.room, member, token)

    async def _admit_member(self, claims: MemberClaims) -> Grant:
        member = await self.storage.get_member(claims.room, claims.member)
        if member is None:
            raise no_access(claims.room)
        if member.invite_id is not None:
            invite = await self.storage.get_invite(member.invite_id)
            if invite is None or invite.revoked_at is not None:
                raise no_access(claims.room)
        return Grant(claims.room, member)
