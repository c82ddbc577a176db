"""The REST API against a running server, with real protocol clients editing alongside."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.conftest import timeout
from tests.tokens import TOKENS

from codesphere.app.server import RunningServer
from codesphere.client import CodeSphereClient
from codesphere.core.changes import ContentChange, apply_changes

ANN = TOKENS.mint_user("ann", name="Ann")


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.http_url) as session:
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str | None = ANN,
    expect: int = 200,
    **kwargs: Any,
) -> Any:
    headers = bearer(token) if token else {}
    async with http.request(method, path, headers=headers, **kwargs) as r:
        body = await r.read()
        assert r.status == expect, (r.status, body[:500])
        if r.content_type == "application/json":
            return await r.json()
        return body


async def new_room(http: aiohttp.ClientSession, files: dict[str, str] | None = None) -> Any:
    files = files if files is not None else {"main.py": "print('hi')\n", "docs/a.md": "a\r\nb\r\n"}
    body = {"name": "Parser", "files": [{"path": p, "text": t} for p, t in files.items()]}
    return await call(http, "POST", "/api/rooms", json=body, expect=201)


async def test_create_room_gives_owner_token_and_invites_that_work(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    """POST /api/rooms → owner token and one invite per role; each admits with its role."""
    created = await new_room(http)
    assert set(created["invites"]) == {"editor", "viewer"}
    for role, invite in created["invites"].items():
        assert invite["role"] == role and invite["url"].endswith(f"/#token={invite['token']}")
        guest = await CodeSphereClient.connect(server.url, name=role, token=invite["token"])
        joined = await guest.join()
        assert joined["room"]["id"] == created["roomId"] and joined["you"]["role"] == role
        await guest.close()
    owner = await CodeSphereClient.connect(server.url, name="Ann", token=created["ownerToken"])
    assert (await owner.join())["you"]["role"] == "owner"
    await owner.close()
    listed = await call(http, "GET", "/api/rooms", token=created["ownerToken"])
    assert [r["roomId"] for r in listed["rooms"]] == [created["roomId"]]


async def test_rooms_are_listed_for_their_users_only(http: aiohttp.ClientSession) -> None:
    mine = (await new_room(http))["roomId"]
    bob = TOKENS.mint_user("bob")
    theirs = (await call(http, "POST", "/api/rooms", bob, 201, json={"name": "B"}))["roomId"]
    assert [r["roomId"] for r in (await call(http, "GET", "/api/rooms"))["rooms"]] == [mine]
    listed = await call(http, "GET", "/api/rooms", bob)
    assert [(r["roomId"], r["role"]) for r in listed["rooms"]] == [(theirs, "owner")]
    operator = TOKENS.mint_user("ops", admin=True)
    every = {r["roomId"] for r in (await call(http, "GET", "/api/rooms", operator))["rooms"]}
    assert every == {mine, theirs}
    await call(http, "GET", f"/api/rooms/{theirs}", ANN, 403)


async def test_room_detail_documents_history_and_chat_follow_live_edits(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    created = await new_room(http, {"main.py": "x = 1\n"})
    room = created["roomId"]
    ada = await CodeSphereClient.connect(server.url, name="Ada", token=created["ownerToken"])
    await ada.join()
    doc = await ada.open("main.py")
    texts = [doc.text]
    for i, (at, piece) in enumerate([(0, "# 😀 start\n"), (5, "中文"), (len("# 😀"), "\n")]):
        await doc.insert(at, piece)
        await doc.settled(timeout(10))
        texts.append(doc.text)
        await ada.send_chat(f"message {i}")

    detail = await call(http, "GET", f"/api/rooms/{room}")
    assert detail["role"] == "owner"
    assert [(m["memberId"], m["online"]) for m in detail["members"]] == [("ann", True)]
    (info,) = detail["documents"]
    assert (info["path"], info["revision"]) == ("main.py", 3)
    base = f"/api/rooms/{room}/documents/{info['documentId']}"
    for revision, text in enumerate(texts):
        got = await call(http, "GET", base, params={"revision": revision})
        assert (got["revision"], got["text"]) == (revision, text)
    assert (await call(http, "GET", base))["text"] == texts[-1]
    await call(http, "GET", base, params={"revision": 4}, expect=400)

    # History, two entries per page: replaying each page's changes rebuilds every text.
    entries, after = [], 0
    while after is not None:
        page = await call(http, "GET", base + "/history", params={"after": after, "limit": 2})
        entries += page["entries"]
        after = page["next"]
    assert [e["revision"] for e in entries] == [1, 2, 3]
    assert {e["memberId"] for e in entries} == {"ann"}
    for entry, before, after_text in zip(entries, texts[:-1], texts[1:], strict=True):
        changes = [
            ContentChange(
                (
                    (c["range"]["start"]["line"], c["range"]["start"]["character"]),
                    (c["range"]["end"]["line"], c["range"]["end"]["character"]),
                ),
                c["text"],
            )
            for c in entry["changes"]
        ]
        assert apply_changes(before, changes, "utf-16") == after_text

    chat = await call(http, "GET", f"/api/rooms/{room}/chat", params={"limit": 2})
    assert [m["text"] for m in chat["messages"]] == ["message 1", "message 2"]
    older = await call(
        http, "GET", f"/api/rooms/{room}/chat", params={"before": chat["next"], "limit": 2}
    )
    assert [m["text"] for m in older["messages"]] == ["message 0"] and older["next"] is None
    await ada.close()


async def test_export_is_a_zip_of_every_file_with_its_line_ends(
    http: aiohttp.ClientSession,
) -> None:
    room = (await new_room(http))["roomId"]
    data = await call(http, "GET", f"/api/rooms/{room}/export")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["docs/a.md", "main.py"]
        assert archive.read("docs/a.md") == b"a\r\nb\r\n"
        assert archive.read("main.py") == b"print('hi')\n"


async def test_invites_over_rest_and_live_revocation(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    room = (await new_room(http))["roomId"]
    invite = await call(
        http, "POST", f"/api/rooms/{room}/invites", json={"role": "editor", "maxUses": 2},
        expect=201,
    )  # fmt: skip
    guest = await CodeSphereClient.connect(server.url, name="Gus", token=invite["token"])
    member_id = (await guest.join())["you"]["memberId"]
    listed = await call(http, "GET", f"/api/rooms/{room}/invites")
    mine = next(i for i in listed["invites"] if i["inviteId"] == invite["inviteId"])
    assert (mine["uses"], mine["maxUses"], mine["revoked"]) == (1, 2, False)
    members = await call(http, "GET", f"/api/rooms/{room}/members")
    assert {m["memberId"] for m in members["members"]} == {"ann", member_id}

    loop = asyncio.get_running_loop()
    start = loop.time()
    await call(http, "DELETE", f"/api/rooms/{room}/invites/{invite['inviteId']}", expect=204)
    async with asyncio.timeout(timeout(5)):
        while guest.connection is not None and guest.connection.is_open:
            await asyncio.sleep(0.02)
    assert loop.time() - start < 5
    # Neither the invite nor the member token it gave gets back in.
    for token in (invite["token"], str(guest.token)):
        await call(http, "GET", f"/api/rooms/{room}", token, 403)
    await call(http, "DELETE", f"/api/rooms/{room}/invites/i-nope", expect=404)


async def test_removing_a_member_over_rest(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    created = await new_room(http)
    room = created["roomId"]
    guest = await CodeSphereClient.connect(
        server.url, name="Vic", token=created["invites"]["viewer"]["token"]
    )
    member_id = (await guest.join())["you"]["memberId"]
    await call(http, "DELETE", f"/api/rooms/{room}/members/ann", expect=403)  # oneself
    await call(http, "DELETE", f"/api/rooms/{room}/members/{member_id}", expect=204)
    async with asyncio.timeout(timeout(5)):
        while guest.connection is not None and guest.connection.is_open:
            await asyncio.sleep(0.02)
    await call(http, "GET", f"/api/rooms/{room}", str(guest.token), 403)
    await call(http, "DELETE", f"/api/rooms/{room}/members/{member_id}", expect=404)


async def test_roles_on_rest_routes(http: aiohttp.ClientSession) -> None:
    """A viewer reads but manages nothing; an invite token must be redeemed first."""
    created = await new_room(http)
    room = created["roomId"]
    viewer_invite = created["invites"]["viewer"]["token"]
    await call(http, "GET", f"/api/rooms/{room}", viewer_invite, 403)
    viewer = TOKENS.mint_member(room, "not-a-member")
    await call(http, "GET", f"/api/rooms/{room}", viewer, 403)


async def test_deleting_a_room_closes_its_connections(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    created = await new_room(http)
    room = created["roomId"]
    ada = await CodeSphereClient.connect(server.url, name="Ada", token=created["ownerToken"])
    await ada.join()
    await call(http, "DELETE", f"/api/rooms/{room}", expect=204)
    async with asyncio.timeout(timeout(5)):
        while ada.connection is not None and ada.connection.is_open:
            await asyncio.sleep(0.02)
    await call(http, "GET", f"/api/rooms/{room}", expect=403)
    operator = TOKENS.mint_user("ops", admin=True)
    await call(http, "GET", f"/api/rooms/{room}", operator, 404)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "body"),
        (b'{"name": 5}', "name"),
        (b'{"name": ""}', "at least 1 character"),
        (b'{"name": "x", "nmae": "y"}', "nmae"),
        (b'{"name": "x", "files": [{"path": "../etc"}]}', "files.0.path"),
        (b'{"name": "x", "files": [{"path": "a"}, {"path": "a"}]}', "same path"),
    ],
)
async def test_bad_bodies_get_a_400_that_says_what_is_wrong(
    http: aiohttp.ClientSession, body: bytes, fragment: str
) -> None:
    headers = {**bearer(ANN), "Content-Type": "application/json"}
    async with http.post("/api/rooms", data=body, headers=headers) as r:
        assert r.status in (400, 409)
        error = (await r.json())["error"]
        assert fragment in error["message"]
    assert (await call(http, "GET", "/api/rooms"))["rooms"] == []


async def test_bad_query_and_unknown_routes(http: aiohttp.ClientSession) -> None:
    room = (await new_room(http))["roomId"]
    error = await call(http, "GET", f"/api/rooms/{room}/chat", params={"limit": "lots"}, expect=400)
    assert "limit" in error["error"]["message"]
    await call(http, "GET", f"/api/rooms/{room}/chat", params={"limit": 0}, expect=400)
    nodoc = await call(http, "GET", f"/api/rooms/{room}/documents/d-nope", expect=404)
    assert nodoc["error"]["name"] == "DocumentNotFound"
    await call(http, "GET", f"/api/rooms/{room}/documents/d-nope/history", expect=404)
    missing = await call(http, "GET", "/api/nothing-here", expect=404)
    assert missing["error"]["name"] == "NotFound"
    await call(http, "PATCH", f"/api/rooms/{room}", expect=405)


async def test_health_readiness_openapi_and_docs(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    assert await call(http, "GET", "/healthz", None) == {"status": "ok"}
    ready = await call(http, "GET", "/readyz", None)
    assert ready["status"] == "ready" and ready["storage"]["backend"] == "sqlite"
    spec = await call(http, "GET", "/openapi.json", None)
    assert spec["openapi"].startswith("3.1")
    served = {
        (route.method, route.resource.canonical)
        for route in server.runner.app.router.routes()
        if route.resource is not None
        and (
            route.resource.canonical.startswith("/api/")
            or route.resource.canonical[1:3] in ("he", "re")
        )
    }
    described = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    assert described == {s for s in served if s[0] != "HEAD"}
    for ops in spec["paths"].values():
        for op in ops.values():
            for ref in _refs(op):
                assert ref.split("/")[-1] in spec["components"]["schemas"]
    page = await call(http, "GET", "/docs/", None)
    assert b"swagger-ui-bundle.js" in page
    asset = await call(http, "GET", "/docs/static/swagger-ui-bundle.js", None)
    assert len(asset) > 100_000
    assert b"swagger-ui.css" in page
    assert len(await call(http, "GET", "/docs/static/swagger-ui.css", None)) > 10_000
    await server.storage.close()
    down = await call(http, "GET", "/readyz", None, 503)
    assert down["status"] == "unavailable" and down["storage"]["ok"] is False


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if "$ref" in value else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


async def test_activity_moves_the_rooms_updated_time(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    created = await new_room(http)
    room = created["roomId"]
    first = await call(http, "GET", f"/api/rooms/{room}")
    assert first["updatedAt"] == first["createdAt"]
    await asyncio.sleep(0.05)
    ada = await CodeSphereClient.connect(server.url, name="Ada", token=created["ownerToken"])
    await ada.join()
    await ada.send_chat("anyone here?")
    async with asyncio.timeout(timeout(5)):
        while (await call(http, "GET", f"/api/rooms/{room}"))["updatedAt"] == first["updatedAt"]:
            await asyncio.sleep(0.02)
    later = await call(http, "GET", f"/api/rooms/{room}")
    assert later["updatedAt"] >= first["createdAt"] + 50
    await ada.close()
