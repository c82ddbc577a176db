"""Every JSON-RPC method, called by every kind of outsider, against a private room.

The methods are those the server registers (``HANDLERS``), so a method added later is covered
automatically, and the tests fail until it has params here and a place in the role tables.
Each principal first tries to join the target room, then calls every room-scoped method with
valid-looking params aimed at it (its real paths, invite and member ids). Nothing may succeed
that protocol.md §4 does not grant; no reply or notification may carry the room's id, name,
paths or text; and afterwards the room is exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from codesphere.app.handlers import HANDLERS
from codesphere.app.server import RunningServer
from codesphere.client import errors as codes
from tests.rawclient import RawClient, insert, pos
from tests.security.support import FILES, Target, leaks, seed_room, unverified
from tests.server.support import change, connect, create_room
from tests.tokens import TOKENS

#: A room id that does not exist: refusals must read the same for it as for the target.
MISSING_ROOM = "r-no-such-room-0000"
PATH = next(iter(FILES))
CHAT_SECRET = "Ocelot-Chat-8842-whisper"

#: Valid-looking params for every registered method, aimed at the target room.
PARAMS: dict[str, Callable[[Target], Any]] = {
    "initialize": lambda t: {"capabilities": {}, "displayName": "Again"},
    "initialized": lambda t: {},
    "shutdown": lambda t: None,
    "exit": lambda t: None,
    "$/ping": lambda t: None,
    "room/create": lambda t: {"name": "mine", "files": [{"path": "x.txt", "text": "x"}]},
    "room/join": lambda t: {"roomId": t.room_id},
    "room/leave": lambda t: {},
    "invite/create": lambda t: {"role": "owner", "expiresInSeconds": 3600, "maxUses": 5},
    "invite/list": lambda t: {},
    "invite/revoke": lambda t: {"inviteId": t.keeper_invite["inviteId"]},
    "member/remove": lambda t: {"memberId": t.keeper_member},
    "workspace/files": lambda t: {},
    "workspace/createFile": lambda t: {"path": "created-by-matrix.txt", "text": "x\n"},
    "workspace/renameFile": lambda t: {"path": PATH, "newPath": "renamed-by-matrix.txt"},
    "workspace/deleteFile": lambda t: {"path": PATH},
    "textDocument/didOpen": lambda t: {"path": PATH},
    "textDocument/didClose": lambda t: {"path": PATH},
    "textDocument/didChange": lambda t: change(PATH, 0, 1, [insert(0, 0, "pwned-by-matrix")]),
    "textDocument/checksum": lambda t: {"path": PATH},
    "presence/update": lambda t: {
        "path": PATH,
        "revision": 0,
        "selections": [{"anchor": pos(0, 0), "active": pos(0, 1)}],
    },
    "chat/send": lambda t: {"text": "hello from outside"},
    "chat/history": lambda t: {"limit": 50},
}

#: Methods that act on no room: each has its own expectations below.
NOT_ROOM_SCOPED = frozenset(
    {"initialize", "initialized", "shutdown", "exit", "$/ping", "room/create", "room/join"}
)
ROOM_SCOPED = [m for m in HANDLERS if m not in NOT_ROOM_SCOPED]
#: Room-scoped methods that need the editor or owner role (protocol.md §4, §4.2, §5, §6).
NEEDS_EDITOR = frozenset(
    {
        "textDocument/didChange",
        "workspace/createFile",
        "workspace/renameFile",
        "workspace/deleteFile",
        "invite/create",
        "invite/list",
        "invite/revoke",
        "member/remove",
    }
)
#: Room-scoped methods a viewer may call (protocol.md §4: open, read, presence, chat).
VIEWER_MAY = frozenset(
    {
        "room/leave",
        "workspace/files",
        "textDocument/didOpen",
        "textDocument/didClose",
        "textDocument/checksum",
        "presence/update",
        "chat/send",
        "chat/history",
    }
)
#: What a refused caller may be told: anything but success (or an internal error).
REFUSALS = frozenset({codes.NOT_IN_ROOM, codes.FORBIDDEN, codes.UNAUTHORIZED})


def test_every_registered_method_has_params_and_a_role() -> None:
    """A new method fails here until this file says how to call it and who may."""
    assert set(PARAMS) == set(HANDLERS), set(HANDLERS) ^ set(PARAMS)
    assert set(HANDLERS) >= NOT_ROOM_SCOPED
    assert set(NEEDS_EDITOR) | set(VIEWER_MAY) == set(ROOM_SCOPED)
    assert not NEEDS_EDITOR & VIEWER_MAY


def call_order(methods: list[str]) -> list[str]:
    """Open first (so the document methods have something to act on), close and leave last."""
    first = ["textDocument/didOpen"]
    last = ["textDocument/didClose", "room/leave"]
    middle = [m for m in methods if m not in first and m not in last]
    return [m for m in first if m in methods] + middle + [m for m in last if m in methods]


# -- principals ------------------------------------------------------------------------------


@dataclass
class Principal:
    """A connection of someone who is not (or only a viewer) in the target room."""

    client: RawClient
    #: The token it holds (None: none at all).
    token: str | None
    #: The code room/join answers; None: the join succeeds (the viewer).
    join_refusal: int | None
    #: Whether its token is a user token (which may create rooms of its own).
    user: bool = False
    #: Whether its token names the target room (so room/join may omit the roomId).
    names_target: bool = False


async def other_room_token(server: RunningServer, kind: str) -> str:
    """A valid token of Bob's, for Bob's room: an invite, or Bob's user token."""
    bob_token = TOKENS.mint_user("bob")
    bob = await connect(server.url, "Bob", token=bob_token)
    room = await create_room(bob, {"b.txt": "bob's\n"}, name="Bob's room")
    await bob.call("room/join", {"roomId": room})
    if kind == "user":
        return bob_token
    invite: str = (await bob.call("invite/create", {"role": "owner"}))["token"]
    return invite


async def former_member_token(server: RunningServer, target: Target, how: str) -> str:
    """The member token of an editor the owner then shut out (by revoking or removing)."""
    invite = await target.owner.call("invite/create", {"role": "editor"})
    ex = await connect(server.url, "Ex", token=invite["token"])
    joined = await ex.call("room/join", {})
    if how == "revoked":
        await target.owner.call("invite/revoke", {"inviteId": invite["inviteId"]})
    else:
        await target.owner.call("member/remove", {"memberId": joined["you"]["memberId"]})
    assert await ex.wait_closed() == 4003
    token: str = joined["memberToken"]
    return token


async def make_principal(server: RunningServer, target: Target, name: str) -> Principal:
    if name == "no-token":
        return Principal(await connect(server.url, "Anon", token=None), None, codes.UNAUTHORIZED)
    if name in ("other-room-invite", "other-room-user"):
        token = await other_room_token(server, name.removeprefix("other-room-"))
        client = await connect(server.url, "Outsider", token=token)
        return Principal(client, token, codes.FORBIDDEN, user=name == "other-room-user")
    if name == "viewer":
        invite = await target.owner.call("invite/create", {"role": "viewer"})
        client = await connect(server.url, "Vera", token=invite["token"])
        return Principal(client, invite["token"], None, names_target=True)
    token = await former_member_token(server, target, name)
    client = await connect(server.url, "Ex", token=token)
    return Principal(client, token, codes.FORBIDDEN, names_target=True)


PRINCIPALS = ["no-token", "other-room-invite", "other-room-user", "viewer", "revoked", "removed"]


# -- checks ----------------------------------------------------------------------------------


def mirror(params: dict[str, Any], room_id: str) -> dict[str, Any]:
    """The same join aimed at a room that does not exist."""
    if "roomId" in params:
        return {**params, "roomId": MISSING_ROOM}
    if "token" in params:
        member = unverified(params["token"])[1]["sub"]
        return {"token": TOKENS.mint_member(MISSING_ROOM, member)}
    return params


async def check_join_refused(principal: Principal, target: Target) -> None:
    """Every way of joining is refused, saying nothing a missing room would not say."""
    client, token = principal.client, principal.token
    attempts: list[dict[str, Any]] = [{"roomId": target.room_id}]
    if token is not None:
        attempts.append({"roomId": target.room_id, "token": token})
    if token is None or principal.names_target:
        attempts.append({} if token is None else {"token": token})
    for params in attempts:
        error = await client.error("room/join", params)
        assert error["code"] == principal.join_refusal, (params, error)
        # The room id may only come back as an echo of what was sent (or is in the token):
        # the same refusal a room that does not exist gets.
        assert not [s for s in leaks(error, target.leaked) if s != target.room_id], error
        elsewhere = await client.error("room/join", mirror(params, target.room_id))
        assert elsewhere["code"] == error["code"]
        assert error["message"].replace(target.room_id, "<room>") == elsewhere["message"].replace(
            MISSING_ROOM, "<room>"
        )
    assert (await client.error("workspace/files", {}))["code"] == codes.NOT_IN_ROOM


async def call_every_room_method(principal: Principal, target: Target) -> None:
    """Zero successes for what the principal may not do, and no leak in any refusal."""
    client = principal.client
    viewer = principal.join_refusal is None
    for method in call_order(ROOM_SCOPED):
        reply = await client.request(method, PARAMS[method](target))
        entitled = viewer and method in VIEWER_MAY
        if entitled:
            assert "result" in reply, (method, reply)
            continue
        assert "error" in reply and "result" not in reply, (method, reply)
        code = reply["error"]["code"]
        assert code == (codes.FORBIDDEN if viewer else code) and code in REFUSALS, (method, reply)
        assert not leaks(reply, target.leaked), (method, reply)


async def check_lifecycle(principal: Principal, server: RunningServer, target: Target) -> None:
    """The methods outside rooms: harmless ones work, room/create needs a user token."""
    client = principal.client
    assert await client.call("$/ping", PARAMS["$/ping"](target)) == {}
    again = await client.error("initialize", PARAMS["initialize"](target))
    assert again["code"] == codes.INVALID_REQUEST
    assert await client.call("initialized", PARAMS["initialized"](target)) is None
    rooms_before = len(await server.storage.list_rooms())
    reply = await client.request("room/create", PARAMS["room/create"](target))
    if principal.user:  # a user may make rooms of their own, never touching the target
        assert reply["result"]["roomId"] not in (target.room_id, MISSING_ROOM)
        assert len(await server.storage.list_rooms()) == rooms_before + 1
    else:
        expected = codes.UNAUTHORIZED if principal.token is None else codes.FORBIDDEN
        assert reply.get("error", {}).get("code") == expected, reply
        assert len(await server.storage.list_rooms()) == rooms_before
    assert not leaks(reply, target.leaked), reply
    assert await client.call("shutdown", PARAMS["shutdown"](target)) is None
    for method in ("room/join", *ROOM_SCOPED):
        params = PARAMS[method](target)
        assert (await client.error(method, params))["code"] == codes.INVALID_REQUEST, method
    await client.notify("exit", PARAMS["exit"](target))
    assert await client.wait_closed() == 1000


async def membership(server: RunningServer, room_id: str) -> tuple[list[Any], list[Any]]:
    """The room's stored invites and members."""
    storage = server.storage
    return await storage.list_invites(room_id), await storage.list_members(room_id)


async def check_room_untouched(
    server: RunningServer,
    target: Target,
    principal: Principal,
    before: tuple[list[Any], list[Any]],
) -> None:
    """The documents, invites, members and chat are as the owner left them."""
    owner = target.owner
    files = (await owner.call("workspace/files", {}))["files"]
    assert [(f["path"], f["revision"]) for f in files] == [(p, 0) for p in sorted(FILES)]
    for path, text in FILES.items():
        opened = await owner.call("textDocument/didOpen", {"path": path})
        assert (opened["text"], opened["revision"]) == (text, 0)
    invites, members = await membership(server, target.room_id)
    assert (invites, members) == before
    keeper_invite = next(i for i in invites if i.id == target.keeper_invite["inviteId"])
    assert keeper_invite.revoked_at is None
    roles = {m.id: m.role for m in members}
    assert roles.get(target.keeper_member) == "editor"
    assert list(roles.values()).count("owner") == 1
    chat = await server.storage.chat_history(target.room_id, None, 100)
    viewer = principal.join_refusal is None
    assert [m.text for m in chat] == [CHAT_SECRET] + (["hello from outside"] if viewer else [])
    assert await target.keeper.call("$/ping") == {}  # never disconnected


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_outsiders_get_nothing(server: RunningServer, who: str) -> None:
    target = await seed_room(server)
    principal = await make_principal(server, target, who)
    if principal.join_refusal is None:
        joined = await principal.client.call("room/join", {"roomId": target.room_id})
        assert joined["you"]["role"] == "viewer"
    else:
        await check_join_refused(principal, target)
    before = await membership(server, target.room_id)
    # Life goes on in the room while the principal is connected.
    await target.owner.call("chat/send", {"text": CHAT_SECRET})
    await target.owner.call("textDocument/didOpen", {"path": PATH})
    await target.owner.call("presence/update", PARAMS["presence/update"](target))
    await call_every_room_method(principal, target)
    await check_lifecycle(principal, server, target)
    if principal.join_refusal is not None:
        # Not a single notification from the room reached the outsider.
        assert not [m for m in principal.client.inbox if "method" in m], principal.client.inbox
        assert not leaks(principal.client.inbox, [*target.leaked, CHAT_SECRET])
    await check_room_untouched(server, target, principal, before)
