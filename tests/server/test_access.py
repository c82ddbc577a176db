"""Tokens, invites and live revocation over real WebSockets against a running server."""

from __future__ import annotations

import aiohttp
import pytest

from codesphere.app.server import RunningServer
from codesphere.client import errors as codes
from tests.rawclient import insert
from tests.server.support import change, connect, create_room
from tests.tokens import TOKENS


async def owner_room(server: RunningServer) -> tuple[object, str]:
    """An owner (a plain user, not an operator) in a room of their own."""
    owner = await connect(server.url, "Olga", token=TOKENS.mint_user("olga"))
    room = await create_room(owner, {"a.txt": "abc\n"})
    await owner.call("room/join", {"roomId": room})
    return owner, room


async def test_no_token_or_a_bad_one_is_unauthorized(server: RunningServer) -> None:
    """Without a token nobody joins; a bad token is refused at initialize and at join."""
    _, room = await owner_room(server)
    guest = await connect(server.url, "Guest", token=None)
    error = await guest.error("room/join", {"roomId": room})
    assert error["code"] == codes.UNAUTHORIZED
    error = await guest.error("room/join", {"roomId": room, "token": "not.a.token"})
    assert error["code"] == codes.UNAUTHORIZED
    assert "not.a.token" not in error["message"]
    assert (await guest.error("room/create", {"name": "x"}))["code"] == codes.UNAUTHORIZED


async def test_a_user_token_opens_only_rooms_of_its_user(server: RunningServer) -> None:
    """Another user's token gets Forbidden, the same for an existing and a missing room."""
    _, room = await owner_room(server)
    other = await connect(server.url, "Oscar", token=TOKENS.mint_user("oscar"))
    here = await other.error("room/join", {"roomId": room})
    missing = await other.error("room/join", {"roomId": "r-does-not-exist"})
    assert here["code"] == missing["code"] == codes.FORBIDDEN
    assert here == missing and room not in here["message"]


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_invite_admits_with_its_role(server: RunningServer, role: str) -> None:
    """The owner flow: create an invite; a viewer cannot edit through it, an editor can."""
    owner, room = await owner_room(server)
    invite = await owner.call("invite/create", {"role": role})
    guest = await connect(server.url, "Gus", token=invite["token"])
    joined = await guest.call("room/join", {})
    assert joined["room"]["id"] == room and joined["you"]["role"] == role
    assert joined["memberToken"]
    opened = await guest.call("textDocument/didOpen", {"path": "a.txt"})
    reply = await guest.request(
        "textDocument/didChange", change("a.txt", opened["revision"], 1, [insert(0, 0, "x")])
    )
    if role == "viewer":
        assert reply["error"]["code"] == codes.FORBIDDEN
    else:
        assert reply["result"]["revision"] == 1
    # Only owners manage invites.
    assert (await guest.error("invite/list", {}))["code"] == codes.FORBIDDEN


async def test_single_use_invite_admits_once_and_the_member_token_reconnects(
    server: RunningServer,
) -> None:
    owner, room = await owner_room(server)
    invite = await owner.call("invite/create", {"role": "editor", "maxUses": 1})
    first = await connect(server.url, "One", token=invite["token"])
    member_token = (await first.call("room/join", {}))["memberToken"]
    second = await connect(server.url, "Two", token=invite["token"])
    assert (await second.error("room/join", {}))["code"] == codes.FORBIDDEN
    again = await connect(server.url, "One", token=member_token)
    assert (await again.call("room/join", {}))["room"]["id"] == room


async def test_revoking_an_invite_disconnects_its_members_and_bars_them(
    server: RunningServer,
) -> None:
    owner, _ = await owner_room(server)
    invite = await owner.call("invite/create", {"role": "editor"})
    guest = await connect(server.url, "Gus", token=invite["token"])
    member_token = (await guest.call("room/join", {}))["memberToken"]
    await owner.call("invite/revoke", {"inviteId": invite["inviteId"]})
    assert await guest.wait_closed() == 4003
    for token in (invite["token"], member_token):
        retry = await connect(server.url, "Gus", token=token)
        assert (await retry.error("room/join", {}))["code"] == codes.FORBIDDEN
    listed = (await owner.call("invite/list", {}))["invites"]
    assert listed[0]["revoked"] is True and listed[0]["token"] is None


async def test_removing_a_member_disconnects_and_bars_them(server: RunningServer) -> None:
    owner, _ = await owner_room(server)
    invite = await owner.call("invite/create", {"role": "viewer"})
    guest = await connect(server.url, "Gus", token=invite["token"])
    joined = await guest.call("room/join", {})
    await owner.call("member/remove", {"memberId": joined["you"]["memberId"]})
    assert await guest.wait_closed() == 4003
    retry = await connect(server.url, "Gus", token=joined["memberToken"])
    assert (await retry.error("room/join", {}))["code"] == codes.FORBIDDEN
    error = await owner.error("member/remove", {"memberId": joined["you"]["memberId"]})
    assert error["code"] == codes.NOT_FOUND


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # an editor or a script: no Origin, no browser headers
        ({"Origin": "SAME"}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Mode": "websocket", "Sec-Fetch-Site": "cross-site"}, False),  # no Origin
    ],
)
async def test_browser_upgrades_are_checked_against_the_origin(
    server: RunningServer, headers: dict[str, str], allowed: bool
) -> None:
    if headers.get("Origin") == "SAME":
        headers = {"Origin": server.http_url}
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(server.url, headers=headers) as ws:
                await ws.close()
            status = 101
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status
    assert (status == 101) is allowed
    if not allowed:
        assert status == 403


async def test_bad_authorization_header_is_refused_before_the_upgrade(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        for value in ("Bearer nope", "Basic abc", "Bearer "):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(server.url, headers={"Authorization": value})
            assert info.value.status == 401


@pytest.mark.parametrize("token", ["", "x" * 10_000])
async def test_an_empty_or_huge_token_is_unauthorized(server: RunningServer, token: str) -> None:
    """Whatever string comes as a token, a bad one is Unauthorized, never InvalidParams."""
    guest = await connect(server.url, "Guest", token=None)
    error = await guest.error("room/join", {"token": token})
    assert error["code"] == codes.UNAUTHORIZED
    assert len(error["message"]) < 200
