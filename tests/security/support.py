"""Helpers for the security tests: forged JWTs, raw upgrades, a seeded room, a server process.

Every helper talks to a real server over loopback and is bounded in time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from codesphere.app.server import RunningServer
from tests.conftest import timeout
from tests.rawclient import RawClient
from tests.server.support import connect, create_room
from tests.tokens import TEST_SECRET, TOKENS

HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


# -- forging tokens --------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in a compact JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    """A JSON value as a JWS segment."""
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def hmac_signature(signing_input: str, key: bytes = TEST_SECRET, alg: str = "HS256") -> str:
    """The HMAC signature segment of ``signing_input`` (``header.payload``)."""
    return b64url(hmac.new(key, signing_input.encode("ascii"), HASHES[alg]).digest())


def forge(
    header: Any,
    payload: Any,
    key: bytes = TEST_SECRET,
    alg: str = "HS256",
    *,
    raw_segments: tuple[str, str] | None = None,
) -> str:
    """A compact JWS of ``header`` and ``payload`` signed by hand with HMAC-``alg``.

    ``raw_segments`` replaces the encoded header and payload with segments as given (for
    malformed ones).
    """
    head, body = raw_segments or (b64url_json(header), b64url_json(payload))
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{hmac_signature(signing_input, key, alg)}"


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A token's header and payload, read without any check."""
    head, body, _ = token.split(".")
    decoded = [json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in (head, body)]
    return decoded[0], decoded[1]


#: The shortest piece of a signature that counts as showing it.
SIGNATURE_WINDOW = 16


def token_fragments(token: str) -> list[str]:
    """The parts of a token that would betray it if they showed up somewhere.

    The whole token, its payload segment, and every run of ``SIGNATURE_WINDOW`` characters
    of its signature (which is what makes a token work: a log line with half of it leaks
    too). The header of every token the server mints is the same, so it is no secret; nor
    are short pieces of the payload, which are shared by all tokens of a kind.
    """
    parts = token.split(".")
    fragments = [token]
    if len(parts) == 3:
        payload, signature = parts[1], parts[2]
        if len(payload) >= SIGNATURE_WINDOW:
            fragments.append(payload)
        fragments += [
            signature[i : i + SIGNATURE_WINDOW]
            for i in range(len(signature) - SIGNATURE_WINDOW + 1)
        ]
    return fragments


def contains_token(text: str, token: str) -> bool:
    """Whether ``text`` holds ``token`` or a telling fragment of it."""
    return any(fragment in text for fragment in token_fragments(token))


# -- raw upgrades ----------------------------------------------------------------------------


async def upgrade_status(url: str, headers: dict[str, str]) -> int:
    """Try a WebSocket upgrade with ``headers``: 101 if it was accepted, else the HTTP status.

    An accepted socket is checked to be usable (``initialize`` without a token, then
    ``$/ping``) before it is closed.
    """
    async with asyncio.timeout(timeout(10)), aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        try:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
            assert "result" in await ws.receive_json(), "initialize failed on an accepted socket"
            await ws.send_json({"jsonrpc": "2.0", "id": 2, "method": "$/ping"})
            assert (await ws.receive_json()).get("result") == {}
        finally:
            await ws.close()
        return 101


async def refused_upgrade(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """Send an upgrade request that is expected to be refused; its status and body.

    A plain GET with the upgrade headers, so that the refusal's body can be read.
    """
    http_url = url.replace("ws://", "http://", 1)
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode("ascii"),
        **headers,
    }
    async with (
        asyncio.timeout(timeout(10)),
        aiohttp.ClientSession() as session,
        session.get(http_url, headers=upgrade) as response,
    ):
        assert response.status != 101, "the upgrade was accepted"
        return response.status, await response.text()


async def server_still_serves(url: str) -> None:
    """A fresh client can still initialize and ping: the process is usable."""
    client = await connect(url, "probe", token=None)
    try:
        assert await client.call("$/ping", None) == {}
    finally:
        await client.close()


# -- a seeded room ---------------------------------------------------------------------------

#: Strings that appear in the target room and nowhere else: a reply to someone without access
#: containing any of them leaks the room.
ROOM_NAME = "Zebra-Vault-Q7x9"
FILES = {
    "secret/plans-K2v8.py": "LAUNCH_CODE = 'Pelican-31415-Umbra'\n",
    "notes-Wq4z.md": "# Marmalade Heron 2718\nQuokka-5772 rests here\n",
}


@dataclass
class Target:
    """A room owned by a plain user, with a live invite and a member who joined through it."""

    owner: RawClient
    room_id: str
    keeper_invite: dict[str, Any]
    keeper: RawClient
    keeper_member: str
    #: Every string that identifies the room or its content.
    leaked: list[str] = field(default_factory=list)


async def seed_room(server: RunningServer, owner_user: str = "olga") -> Target:
    """Create the target room (distinctive name, files and texts) with an invited editor."""
    owner = await connect(server.url, "Olga", token=TOKENS.mint_user(owner_user))
    room_id = await create_room(owner, FILES, name=ROOM_NAME)
    await owner.call("room/join", {"roomId": room_id})
    keeper_invite = await owner.call("invite/create", {"role": "editor"})
    keeper = await connect(server.url, "Kim", token=keeper_invite["token"])
    keeper_member = (await keeper.call("room/join", {}))["you"]["memberId"]
    leaked = [room_id, ROOM_NAME, *FILES, *FILES.values()]
    # Lines of the texts too, so that part of a document is caught as well.
    leaked += [line for text in FILES.values() for line in text.splitlines() if line.strip()]
    leaked += [keeper_invite["inviteId"], keeper_member]
    return Target(owner, room_id, keeper_invite, keeper, keeper_member, leaked)


def leaks(reply: Any, needles: Iterable[str]) -> list[str]:
    """The ``needles`` found anywhere in ``reply``, as is or JSON-escaped."""
    text = json.dumps(reply, ensure_ascii=False)
    return [s for s in needles if s in text or json.dumps(s, ensure_ascii=False)[1:-1] in text]
