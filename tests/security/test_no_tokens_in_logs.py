"""No token, and not the secret, ever reaches the server's log, even at debug level.

``codesphere serve --log-level debug`` runs as a child process, its log (stderr) going to a
file. Real clients drive a full session through it: the owner link, a room, invites created,
listed and revoked, joins with invite and member tokens, edits, chat, a member removed, and
bad tokens in ``initialize`` and in ``Authorization`` headers, and an upgrade from a foreign
origin. Every token used or produced is collected; after the server stops, none of them (nor
the telling parts of one) may appear in the log, and the owner link's token appears on stdout
only in its ``Owner link:`` line.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from codesphere.client import errors as codes
from tests.rawclient import RawClient, insert
from tests.security.support import (
    b64url,
    contains_token,
    forge,
    refused_upgrade,
    unverified,
)
from tests.serve import ServeProcess
from tests.server.support import change, connect
from tests.tokens import TEST_SECRET, TOKENS

OWNER_LINK = r"^Owner link: (http://\S+)/#token=([A-Za-z0-9_.-]+)(?:&room=(\S+))?$"


def kind(token: str) -> str | None:
    """A token's ``typ`` claim, if it has a readable one."""
    try:
        typ = unverified(token)[1].get("typ")
    except ValueError:  # not three segments, bad base64 or JSON
        return None
    return typ if isinstance(typ, str) else None


class Tokens:
    """Every token of the run, good or bad."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, token: str) -> str:
        self.seen.add(token)
        return token

    def invite(self, invite: dict[str, Any]) -> dict[str, Any]:
        if invite.get("token"):
            self.seen.add(invite["token"])
        return invite


async def join_with(client: RawClient, tokens: Tokens, params: dict[str, Any]) -> dict[str, Any]:
    joined: dict[str, Any] = await client.call("room/join", params)
    if "memberToken" in joined:
        tokens(joined["memberToken"])
    return joined


async def edit(client: RawClient, path: str, text: str) -> None:
    opened = await client.call("textDocument/didOpen", {"path": path})
    lines = opened["text"].split("\n")
    at = insert(len(lines) - 1, 0, text)
    await client.call("textDocument/didChange", change(path, opened["revision"], 1, [at]))


def bad_variants(token: str) -> list[str]:
    """Refusable versions of a genuine token: expired, badly signed, unsigned, tampered."""
    header, payload = unverified(token)
    now = int(time.time())
    signature = token.rsplit(".", 1)[1]
    return [
        forge(header, {**payload, "exp": now - 60, "iat": now - 120, "nbf": now - 120}),
        forge(header, payload, key=b"not-the-secret-but-long-enough-0123456789"),
        f"{forge({**header, 'alg': 'none'}, payload).rsplit('.', 1)[0]}.",
        f"{forge(header, {**payload, 'adm': True}).rsplit('.', 1)[0]}.{signature}",
        token[:-5],
    ]


async def drive(url: str, owner_token: str, welcome: str, tokens: Tokens) -> None:
    """A full session against the server at ``url``."""
    # The owner signs in with the link's token, in the upgrade's Authorization header.
    owner = await RawClient.connect(
        url, additional_headers={"Authorization": f"Bearer {owner_token}"}
    )
    await owner.initialize("Owner", token=None)
    joined = await owner.call("room/join", {"roomId": welcome})
    assert joined["you"]["role"] == "owner"
    files = [{"path": "main.py", "text": "print('hi')\n"}, {"path": "notes.md", "text": "# n\n"}]
    room = (await owner.call("room/create", {"name": "Project", "files": files}))["roomId"]
    await owner.call("room/join", {"roomId": room})
    editor_invite = tokens.invite(await owner.call("invite/create", {"role": "editor"}))
    viewer_invite = tokens.invite(
        await owner.call("invite/create", {"role": "viewer", "maxUses": 1})
    )
    for listed in (await owner.call("invite/list", {}))["invites"]:
        tokens.invite(listed)
    await edit(owner, "main.py", "# owner was here\n")
    await owner.call("chat/send", {"text": "welcome, everyone"})

    # An editor joins with the invite in initialize, edits and chats.
    editor = await connect(url, "Eve", token=editor_invite["token"])
    editor_joined = await join_with(editor, tokens, {})
    await edit(editor, "notes.md", "- an editor's line\n")
    await editor.call("chat/send", {"text": "hello"})
    # A viewer joins with the invite in room/join.
    viewer = await connect(url, "Vic", token=None)
    viewer_joined = await join_with(viewer, tokens, {"token": viewer_invite["token"]})
    await viewer.call("chat/history", {})
    # Both come back with their member tokens: in initialize, and in the header.
    editor_again = await connect(url, "Eve", token=editor_joined["memberToken"])
    await join_with(editor_again, tokens, {})
    await edit(editor_again, "main.py", "# and the editor again\n")
    viewer_again = await RawClient.connect(
        url, additional_headers={"Authorization": f"Bearer {viewer_joined['memberToken']}"}
    )
    await viewer_again.initialize("Vic", token=None)
    await join_with(viewer_again, tokens, {})
    # The single-use viewer invite is used up.
    late = await connect(url, "Late", token=viewer_invite["token"])
    assert (await late.error("room/join", {}))["code"] == codes.FORBIDDEN

    # The owner revokes the viewer's invite and removes the editor.
    await owner.call("invite/revoke", {"inviteId": viewer_invite["inviteId"]})
    assert await viewer.wait_closed() == 4003
    assert await viewer_again.wait_closed() == 4003
    await owner.call("member/remove", {"memberId": editor_joined["you"]["memberId"]})
    assert await editor_again.wait_closed() == 4003
    for listed in (await owner.call("invite/list", {}))["invites"]:
        tokens.invite(listed)
    retry = await connect(url, "Eve", token=editor_joined["memberToken"])
    assert (await retry.error("room/join", {}))["code"] == codes.FORBIDDEN

    # Bad tokens: in initialize, in room/join and in the Authorization header.
    stranger = tokens(TOKENS.mint_user("stranger"))
    bad = [tokens(t) for t in (*bad_variants(owner_token), *bad_variants(stranger))]
    bad.append(tokens("not-a-jwt-but-a-secret-looking-string-0123456789"))
    for token in bad:
        client = await RawClient.connect(url)
        error = await client.error("initialize", {"capabilities": {}, "token": token})
        assert error["code"] == codes.UNAUTHORIZED
        await client.initialize("Mal", token=None)
        error = await client.error("room/join", {"roomId": room, "token": token})
        assert error["code"] == codes.UNAUTHORIZED
        await client.close()
        status, _ = await refused_upgrade(url, {"Authorization": f"Bearer {token}"})
        assert status == 401
    status, _ = await refused_upgrade(url, {"Authorization": f"Basic {stranger}"})
    assert status == 401
    outsider = await connect(url, "Stranger", token=stranger)
    assert (await outsider.error("room/join", {"roomId": room}))["code"] == codes.FORBIDDEN
    # A page on another site, carrying the owner's token.
    status, _ = await refused_upgrade(
        url, {"Origin": "https://evil.example", "Authorization": f"Bearer {owner_token}"}
    )
    assert status == 403

    await drive_rest(url.removeprefix("ws://").removesuffix("/ws"), owner_token, bad, tokens)

    await owner.call("shutdown")
    await owner.notify("exit")
    assert await owner.wait_closed() == 1000


async def drive_rest(netloc: str, owner_token: str, bad: list[str], tokens: Tokens) -> None:
    """The same through the REST API: a room, invites, reads, and refused bad tokens."""
    async with aiohttp.ClientSession(base_url=f"http://{netloc}") as http:
        auth = {"Authorization": f"Bearer {owner_token}"}
        async with http.post("/api/rooms", json={"name": "Via REST"}, headers=auth) as r:
            assert r.status == 201
            created = await r.json()
        tokens(created["ownerToken"])
        for invite in created["invites"].values():
            tokens.invite(invite)
        room = created["roomId"]
        async with http.post(
            f"/api/rooms/{room}/invites", json={"role": "viewer"}, headers=auth
        ) as r:
            invite = tokens.invite(await r.json())
        async with http.get(f"/api/rooms/{room}/invites", headers=auth) as r:
            for listed in (await r.json())["invites"]:
                tokens.invite(listed)
        async with http.delete(
            f"/api/rooms/{room}/invites/{invite['inviteId']}", headers=auth
        ) as r:
            assert r.status == 204
        member = {"Authorization": f"Bearer {created['ownerToken']}"}
        async with http.get(f"/api/rooms/{room}", headers=member) as r:
            assert r.status == 200
        for token in bad:
            async with http.get("/api/rooms", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 401
            # A token where none belongs, in the query string: refused, and never logged.
            async with http.get("/api/rooms", params={"token": token}) as r:
                assert r.status == 401


async def test_no_token_or_secret_in_the_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    env = dict(os.environ, JWT_SECRET=TEST_SECRET.decode())
    # asyncio's own loop, which logs at DEBUG when it starts: proof that the level is on.
    args = ("--log-level", "debug", "--loop", "asyncio")
    server = await ServeProcess.start(data, log, *args, env=env)
    tokens = Tokens()
    try:
        url = await server.url()
        link = await server.line(OWNER_LINK)
        owner_token, welcome = tokens(link[2]), link[3]
        assert welcome, "the first start makes a Welcome room"
        await drive(url, owner_token, welcome, tokens)
    finally:
        assert await server.stop() == 0
    logged = log.read_text(encoding="utf-8", errors="replace")
    stdout = server.stdout

    # The run produced what it should have: invites and member tokens, a debug log.
    kinds = {kind(t) for t in tokens.seen}
    assert {"user", "invite", "member"} <= kinds, kinds
    assert len(tokens.seen) >= 20
    assert re.search(r" DEBUG asyncio: ", logged), logged[-2000:]

    # Counted, not shown: a failure should not print the tokens it found.
    leaked = sorted(str(kind(t)) for t in tokens.seen if contains_token(logged, t))
    assert len(leaked) == 0, f"tokens in the log, of kinds {leaked}"
    # The secret, as is or encoded.
    for form in (TEST_SECRET.decode(), TEST_SECRET.hex(), b64url(TEST_SECRET)):
        assert form not in logged and form not in stdout
    # On stdout, the owner link's token is in its line only, and no token is anywhere else.
    link_lines = [line for line in stdout.splitlines() if re.match(OWNER_LINK, line)]
    assert len(link_lines) == 1 and contains_token(link_lines[0], owner_token), stdout
    rest = "\n".join(line for line in stdout.splitlines() if line not in link_lines)
    shown = sorted(str(kind(t)) for t in tokens.seen if contains_token(rest, t))
    assert len(shown) == 0, f"tokens on stdout outside the owner link, of kinds {shown}"
