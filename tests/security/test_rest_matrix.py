"""Every REST route × every kind of caller not entitled to it: zero successes, nothing leaked.

The routes come from the API's own declarations, so a new route is covered (or this test
fails until it is given a request below).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from codesphere.api.routes import api
from codesphere.app.server import RunningServer
from codesphere.client import CodeSphereClient
from tests.tokens import TOKENS

SECRET_TEXT = "zebra-quartz-7731 secret plans"
SECRET_PATH = "hidden/plans-of-room-a.md"
SECRET_NAME = "Room A of Ursula"

#: Routes anyone may call.
PUBLIC = {"/healthz", "/readyz"}
#: Routes that need the owner role; the others need only to be a member (viewer or more).
OWNER_ONLY = {
    ("DELETE", "/api/rooms/{room_id}"),
    ("DELETE", "/api/rooms/{room_id}/members/{member_id}"),
    ("POST", "/api/rooms/{room_id}/invites"),
    ("GET", "/api/rooms/{room_id}/invites"),
    ("DELETE", "/api/rooms/{room_id}/invites/{invite_id}"),
}
#: A valid body for each route that takes one.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/rooms"): {"name": "new"},
    ("POST", "/api/rooms/{room_id}/invites"): {"role": "viewer"},
}


@dataclass
class World:
    """Room A with its secrets, and one token per kind of caller."""

    room: str
    document: str
    member: str  # a member of A that routes may target
    invite: str
    tokens: dict[str, str | None]
    owner: str


@pytest.fixture
async def world(server: RunningServer) -> AsyncIterator[World]:
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        ursula = TOKENS.mint_user("ursula", name="Ursula")
        created = await post(http, "/api/rooms", ursula, {
            "name": SECRET_NAME, "files": [{"path": SECRET_PATH, "text": SECRET_TEXT}],
        })  # fmt: skip
        room, owner = created["roomId"], created["ownerToken"]
        other = await post(http, "/api/rooms", TOKENS.mint_user("oscar"), {"name": "B"})
        doc = (await get(http, f"/api/rooms/{room}/documents", owner))["documents"][0]

        async def member_via(role: str) -> tuple[str, str, str]:
            invite = await post(http, f"/api/rooms/{room}/invites", owner, {"role": role})
            client = await CodeSphereClient.connect(server.url, name=role, token=invite["token"])
            joined = await client.join()
            await client.close()
            return str(joined["memberToken"]), str(joined["you"]["memberId"]), invite["inviteId"]

        viewer, _, _ = await member_via("viewer")
        revoked, _, revoked_invite = await member_via("editor")
        removed, removed_id, _ = await member_via("editor")
        _, target_id, target_invite = await member_via("viewer")
        await delete(http, f"/api/rooms/{room}/invites/{revoked_invite}", owner)
        await delete(http, f"/api/rooms/{room}/members/{removed_id}", owner)
        unredeemed = await post(http, f"/api/rooms/{room}/invites", owner, {"role": "editor"})
        yield World(
            room=room,
            document=doc["documentId"],
            member=target_id,
            invite=target_invite,
            owner=owner,
            tokens={
                "no token": None,
                "garbage token": "eyJhbGciOiJIUzI1NiJ9.e30.garbage",
                "other room's owner": other["ownerToken"],
                "other user": TOKENS.mint_user("mallory"),
                "unredeemed invite": unredeemed["token"],
                "revoked invite's member": revoked,
                "removed member": removed,
                "viewer": viewer,
            },
        )


async def post(http: aiohttp.ClientSession, path: str, token: str, body: Any) -> Any:
    async with http.post(path, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def get(http: aiohttp.ClientSession, path: str, token: str) -> Any:
    async with http.get(path, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def delete(http: aiohttp.ClientSession, path: str, token: str) -> None:
    async with http.delete(path, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 204, await r.text()


def url(path: str, w: World) -> str:
    values = {
        "room_id": w.room,
        "document_id": w.document,
        "member_id": w.member,
        "invite_id": w.invite,
    }
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


#: Callers with a valid token of their own elsewhere: they may list and create their own rooms.
ELSEWHERE = ("other room's owner", "other user")


def entitled(caller: str, method: str, path: str) -> bool:
    if path == "/api/rooms":
        # Listing shows one's own rooms (checked below to show nothing of room A); creating
        # needs a user token.
        return (method, caller) in {("GET", "viewer"), ("POST", "other user")}
    return caller == "viewer" and (method, path) not in OWNER_ONLY


async def test_every_route_refuses_every_caller_not_entitled(
    server: RunningServer, world: World
) -> None:
    routes = [(op.method, op.path) for op in api.operations if op.path not in PUBLIC]
    assert len(routes) >= 14
    refused = 0
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        for caller, token in world.tokens.items():
            for method, path in routes:
                if entitled(caller, method, path) or (
                    caller == "other user" and path == "/api/rooms"
                ):
                    continue
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                body = BODIES.get((method, path))
                async with http.request(method, url(path, world), json=body, headers=headers) as r:
                    text = await r.text()
                    where = f"{caller}: {method} {path} -> {r.status} {text[:200]}"
                    if (method, path) == ("GET", "/api/rooms") and caller in ELSEWHERE:
                        assert r.status == 200, where  # their own rooms, and only those
                    else:
                        expected = 401 if caller in ("no token", "garbage token") else 403
                        assert r.status == expected, where
                    for secret in (SECRET_TEXT, SECRET_PATH, SECRET_NAME, world.room, "ursula"):
                        assert secret not in text, where
                    refused += 1
        # Nothing changed: the owner still sees the room, its member, invite and text.
        headers = {"Authorization": f"Bearer {world.owner}"}
        async with http.get(f"/api/rooms/{world.room}", headers=headers) as r:
            detail = await r.json()
        assert world.member in {m["memberId"] for m in detail["members"]}
        async with http.get(url("/api/rooms/{room_id}/documents/{document_id}", world),
                            headers=headers) as r:  # fmt: skip
            assert (await r.json())["text"] == SECRET_TEXT
        async with http.get(f"/api/rooms/{world.room}/invites", headers=headers) as r:
            invites = {i["inviteId"]: i for i in (await r.json())["invites"]}
        assert invites[world.invite]["revoked"] is False
    assert refused >= 7 * len(routes)


async def test_a_viewer_reads_what_it_may(server: RunningServer, world: World) -> None:
    """The other half: the viewer's reads succeed (so the refusals above are about rights)."""
    headers = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        for op in api.operations:
            if op.path in PUBLIC or not entitled("viewer", op.method, op.path):
                continue
            assert op.method == "GET", op.path  # a viewer may change nothing
            async with http.get(url(op.path, world), headers=headers) as r:
                assert r.status == 200, (op.path, r.status, await r.text())
