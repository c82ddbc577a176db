"""Forged and damaged tokens against a running server, at every place a token is accepted.

Each mutation starts from a genuine token (an invite to the room, or a user token) and breaks
one thing. It is presented three ways: in ``initialize``, as ``Authorization: Bearer`` on the
WebSocket upgrade, and as ``room/join``'s ``token``. Each time it must be refused as
Unauthorized (1007, or HTTP 401 on the upgrade), never as an internal error, without the token
in the refusal, and the connection and the server must go on working: the genuine token it
came from is then accepted on the same connection (or a new upgrade), which shows that the
refusal was the mutation's doing.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from codesphere.app.server import RunningServer
from codesphere.auth.tokens import TokenError
from codesphere.client import errors as codes
from tests.rawclient import RawClient
from tests.security.support import (
    b64url,
    b64url_json,
    contains_token,
    forge,
    hmac_signature,
    refused_upgrade,
    server_still_serves,
    unverified,
)
from tests.server.support import connect, create_room
from tests.tokens import TEST_SECRET, TOKENS

OTHER_KEY = b"a-different-secret-of-a-decent-length-0123456789"


@dataclass
class Scene:
    """A room with a file, a genuine viewer invite to it, and a user who is no member."""

    owner: RawClient
    room_id: str
    invite_token: str
    user_token: str


@pytest.fixture
async def scene(server: RunningServer) -> Scene:
    owner = await connect(server.url, "Olga", token=TOKENS.mint_user("olga"))
    room_id = await create_room(owner, {"a.txt": "abc\n"})
    await owner.call("room/join", {"roomId": room_id})
    invite = await owner.call("invite/create", {"role": "viewer"})
    return Scene(owner, room_id, invite["token"], TOKENS.mint_user("mallory"))


# -- the mutations ---------------------------------------------------------------------------

Change = Callable[[dict[str, Any], dict[str, Any]], None]


def resigned(change: Change, key: bytes = TEST_SECRET, alg: str = "HS256") -> Callable[[str], str]:
    """Change the header and payload, then sign them again with ``key`` and HMAC-``alg``."""

    def mutate(token: str) -> str:
        header, payload = unverified(token)
        change(header, payload)
        return forge(header, payload, key, alg)

    return mutate


def signature_kept(change: Change) -> Callable[[str], str]:
    """Change the header and payload and keep the original signature."""

    def mutate(token: str) -> str:
        header, payload = unverified(token)
        change(header, payload)
        return f"{b64url_json(header)}.{b64url_json(payload)}.{token.split('.')[2]}"

    return mutate


def claims(**values: Any) -> Change:
    """Set payload claims (``None`` removes one)."""

    def change(header: dict[str, Any], payload: dict[str, Any]) -> None:
        for name, value in values.items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value

    return change


def alg(value: str | None) -> Change:
    """Set the header's ``alg`` (``None`` removes it)."""

    def change(header: dict[str, Any], payload: dict[str, Any]) -> None:
        if value is None:
            header.pop("alg", None)
        else:
            header["alg"] = value

    return change


def unsigned(alg_value: str, keep_signature: bool = False) -> Callable[[str], str]:
    """An ``alg: none``-style token: that header, the payload, no (or the old) signature."""

    def mutate(token: str) -> str:
        _, body, signature = token.split(".")
        header = {**unverified(token)[0], "alg": alg_value}
        return f"{b64url_json(header)}.{body}.{signature if keep_signature else ''}"

    return mutate


def header_of(raw_header: str) -> Callable[[str], str]:
    """Replace the header segment and sign the result with the right key."""

    def mutate(token: str) -> str:
        return forge(None, None, raw_segments=(raw_header, token.split(".")[1]))

    return mutate


def payload_of(raw_payload: str) -> Callable[[str], str]:
    """Replace the payload segment and sign the result with the right key."""

    def mutate(token: str) -> str:
        return forge(None, None, raw_segments=(token.split(".")[0], raw_payload))

    return mutate


def rs256_random_signature(token: str) -> str:
    body = token.split(".")[1]
    header = {**unverified(token)[0], "alg": "RS256"}
    return f"{b64url_json(header)}.{body}.{b64url(secrets.token_bytes(256))}"


def rs256_hmac_signed(token: str) -> str:
    """The algorithm-confusion attack: claim RS256, sign with HMAC and the shared secret."""
    header, payload = unverified(token)
    signing_input = f"{b64url_json({**header, 'alg': 'RS256'})}.{b64url_json(payload)}"
    return f"{signing_input}.{hmac_signature(signing_input)}"


def _now() -> int:
    return math.floor(time.time())


def expired(header: dict[str, Any], payload: dict[str, Any]) -> None:
    payload.update(iat=_now() - 3600, nbf=_now() - 3600, exp=_now() - 60)


def expires_now(header: dict[str, Any], payload: dict[str, Any]) -> None:
    payload.update(exp=_now())


def not_yet_valid(header: dict[str, Any], payload: dict[str, Any]) -> None:
    payload.update(nbf=_now() + 3600)


def issued_in_future(header: dict[str, Any], payload: dict[str, Any]) -> None:
    payload.update(iat=_now() + 3600)


def far_expiry(header: dict[str, Any], payload: dict[str, Any]) -> None:
    payload.update(exp=_now() + 10 * 365 * 86400)


@dataclass(frozen=True)
class Mutation:
    """How to break a genuine token; ``base`` says which one ("invite" or "user")."""

    mutate: Callable[[str], str]
    base: str = "invite"
    #: A word the refusal's message must contain: protocol.md §9 says it tells which flaw.
    says: str | None = None


MUTATIONS: dict[str, Mutation] = {
    # The algorithm: only HS256 is accepted, whatever the header claims.
    "alg-none": Mutation(unsigned("none"), says="algorithm"),
    "alg-None": Mutation(unsigned("None"), says="algorithm"),
    "alg-NONE-signature-kept": Mutation(unsigned("NONE", keep_signature=True), says="algorithm"),
    "alg-missing": Mutation(resigned(alg(None)), says="algorithm"),
    "alg-hs256-lowercase": Mutation(resigned(alg("hs256")), says="algorithm"),
    "alg-swap-HS384": Mutation(resigned(alg("HS384"), alg="HS384"), says="algorithm"),
    "alg-swap-HS512": Mutation(resigned(alg("HS512"), alg="HS512"), says="algorithm"),
    "alg-RS256-hmac-signed": Mutation(rs256_hmac_signed, says="algorithm"),
    "alg-RS256-random-signature": Mutation(rs256_random_signature, says="algorithm"),
    # The key.
    "wrong-key": Mutation(resigned(claims(), key=OTHER_KEY), says="signature"),
    "empty-key": Mutation(resigned(claims(), key=b""), says="signature"),
    # Time.
    "expired": Mutation(resigned(expired), says="expired"),
    "expires-now": Mutation(resigned(expires_now), says="expired"),
    "not-yet-valid": Mutation(resigned(not_yet_valid), says="not yet valid"),
    "issued-in-the-future": Mutation(resigned(issued_in_future), says="future"),
    "missing-exp": Mutation(resigned(claims(exp=None)), says="exp"),
    "exp-not-a-number": Mutation(resigned(claims(exp="tomorrow")), says="exp"),
    # Audience and issuer.
    "wrong-audience": Mutation(resigned(claims(aud="not-codesphere")), says="audience"),
    "audience-list": Mutation(resigned(claims(aud=["codesphere", "other"])), says="audience"),
    "missing-audience": Mutation(resigned(claims(aud=None)), says="aud"),
    "wrong-issuer": Mutation(resigned(claims(iss="evil-issuer")), says="issuer"),
    "missing-issuer": Mutation(resigned(claims(iss=None)), says="iss"),
    # A payload changed under its signature.
    "tampered-role": Mutation(signature_kept(claims(role="owner")), says="signature"),
    "tampered-room": Mutation(signature_kept(claims(room="r-another-room")), says="signature"),
    "tampered-expiry": Mutation(signature_kept(far_expiry), says="signature"),
    "tampered-admin": Mutation(signature_kept(claims(adm=True)), base="user", says="signature"),
    "tampered-user": Mutation(signature_kept(claims(sub="olga")), base="user", says="signature"),
    # Cut short or malformed.
    "truncated-signature": Mutation(lambda t: t[:-3]),
    "truncated-by-one": Mutation(lambda t: t[:-1]),
    "truncated-half": Mutation(lambda t: t[: len(t) // 2]),
    "signature-removed": Mutation(lambda t: t.rsplit(".", 1)[0] + "."),
    "two-segments": Mutation(lambda t: t.rsplit(".", 1)[0]),
    "extra-segment": Mutation(lambda t: t + ".e30"),
    "header-not-json": Mutation(header_of(b64url(b"{not json")), says="malformed"),
    "header-not-an-object": Mutation(header_of(b64url_json(["HS256"])), says="malformed"),
    "header-bad-base64": Mutation(lambda t: "!!" + t, says="malformed"),
    "payload-not-json": Mutation(payload_of(b64url(b"\x00garbage")), says="malformed"),
    "payload-not-an-object": Mutation(payload_of(b64url_json([1, 2, 3])), says="malformed"),
}


def genuine(scene: Scene, mutation: Mutation) -> str:
    return scene.invite_token if mutation.base == "invite" else scene.user_token


def check_refusal(error: dict[str, Any], token: str, says: str | None) -> None:
    """An Unauthorized refusal that does not repeat the token."""
    assert error["code"] == codes.UNAUTHORIZED, error
    assert not contains_token(str(error), token), error
    if says is not None:
        assert says in error["message"], error


async def check_admitted_with(client: RawClient, scene: Scene, mutation: Mutation) -> None:
    """The genuine token works on this connection (an invite joins; a user is no member)."""
    if mutation.base == "invite":
        joined = await client.call("room/join", {})
        assert joined["room"]["id"] == scene.room_id and joined["you"]["role"] == "viewer"
    else:
        error = await client.error("room/join", {"roomId": scene.room_id})
        assert error["code"] == codes.FORBIDDEN


def test_the_mutations_differ_from_their_genuine_tokens() -> None:
    """Each mutation really changes the token (else its test would prove nothing)."""
    invite = TOKENS.mint_invite("r-x", "viewer", "i-x", expires_at=time.time() + 60)
    user = TOKENS.mint_user("mallory")
    for name, mutation in MUTATIONS.items():
        base = invite if mutation.base == "invite" else user
        mutated = mutation.mutate(base)
        assert mutated != base, name
        with pytest.raises(TokenError):
            TOKENS.verify(mutated)


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_in_initialize(server: RunningServer, scene: Scene, name: str) -> None:
    """The refusal leaves the connection uninitialized and usable."""
    mutation = MUTATIONS[name]
    base = genuine(scene, mutation)
    token = mutation.mutate(base)
    client = await RawClient.connect(server.url)
    init = {"capabilities": {}, "displayName": "Mal", "token": token}
    check_refusal(await client.error("initialize", init), token, mutation.says)
    # Still uninitialized: nothing but initialize is served.
    assert (await client.error("$/ping"))["code"] == codes.SERVER_NOT_INITIALIZED
    assert (await client.error("room/join", {}))["code"] == codes.SERVER_NOT_INITIALIZED
    await client.call("initialize", {**init, "token": base})
    await check_admitted_with(client, scene, mutation)
    await client.close()


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_in_the_authorization_header(server: RunningServer, scene: Scene, name: str) -> None:
    """HTTP 401 before the upgrade, a body without the token; the server goes on serving."""
    mutation = MUTATIONS[name]
    base = genuine(scene, mutation)
    token = mutation.mutate(base)
    status, body = await refused_upgrade(server.url, {"Authorization": f"Bearer {token}"})
    assert status == 401, (status, body)
    assert not contains_token(body, token), body
    if mutation.says is not None:
        assert mutation.says in body, body
    await server_still_serves(server.url)
    client = await RawClient.connect(
        server.url, additional_headers={"Authorization": f"Bearer {base}"}
    )
    await client.call("initialize", {"capabilities": {}})
    await check_admitted_with(client, scene, mutation)
    await client.close()


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_on_the_rest_api(server: RunningServer, scene: Scene, name: str) -> None:
    """A 401 with the protocol's Unauthorized code, never a 500, and nothing of the room."""
    mutation = MUTATIONS[name]
    base = genuine(scene, mutation)
    token = mutation.mutate(base)
    async with aiohttp.ClientSession(base_url=server.http_url) as http:
        for method, path in (("GET", "/api/rooms"), ("GET", f"/api/rooms/{scene.room_id}")):
            headers = {"Authorization": f"Bearer {token}"}
            async with http.request(method, path, headers=headers) as r:
                body = await r.text()
                assert r.status == 401, (r.status, body)
                assert r.headers.get("WWW-Authenticate") == "Bearer"
                check_refusal((await r.json())["error"], token, mutation.says)
                assert scene.room_id not in body
        # The genuine token is answered (a user token lists no rooms; an invite must be
        # redeemed first), so the 401 was the mutation's doing.
        async with http.get("/api/rooms", headers={"Authorization": f"Bearer {base}"}) as r:
            assert r.status == (403 if mutation.base == "invite" else 200)


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_in_room_join(server: RunningServer, scene: Scene, name: str) -> None:
    """Refused with or without a roomId; the connection is in no room and still serves."""
    mutation = MUTATIONS[name]
    base = genuine(scene, mutation)
    token = mutation.mutate(base)
    client = await connect(server.url, "Mal", token=None)
    for params in ({"token": token}, {"roomId": scene.room_id, "token": token}):
        check_refusal(await client.error("room/join", params), token, mutation.says)
    assert (await client.error("workspace/files", {}))["code"] == codes.NOT_IN_ROOM
    assert await client.call("$/ping") == {}
    if mutation.base == "invite":
        joined = await client.call("room/join", {"token": base})
        assert joined["room"]["id"] == scene.room_id and joined["you"]["role"] == "viewer"
    else:
        error = await client.error("room/join", {"roomId": scene.room_id, "token": base})
        assert error["code"] == codes.FORBIDDEN
    await client.close()


# -- valid tokens that do not open the room --------------------------------------------------


async def check_forbidden(client: RawClient, params: dict[str, Any], token: str) -> None:
    error = await client.error("room/join", params)
    assert error["code"] == codes.FORBIDDEN, error
    assert not contains_token(str(error), token), error
    assert (await client.error("workspace/files", {}))["code"] == codes.NOT_IN_ROOM


async def test_a_valid_token_for_another_room_is_forbidden(
    server: RunningServer, scene: Scene
) -> None:
    """Bob's room's invite, member and user tokens do not open Olga's room."""
    bob = await connect(server.url, "Bob", token=TOKENS.mint_user("bob"))
    other_room = await create_room(bob, {"b.txt": "b\n"})
    await bob.call("room/join", {"roomId": other_room})
    other_invite = (await bob.call("invite/create", {"role": "owner"}))["token"]
    member = await connect(server.url, "Bo", token=other_invite)
    other_member = (await member.call("room/join", {}))["memberToken"]
    forged_member = TOKENS.mint_member(other_room, "olga")  # Olga's id, the wrong room
    for token in (other_invite, other_member, TOKENS.mint_user("bob"), forged_member):
        client = await connect(server.url, "Mal", token=None)
        await check_forbidden(client, {"roomId": scene.room_id, "token": token}, token)
        await client.close()
        client = await connect(server.url, "Mal", token=token)
        await check_forbidden(client, {"roomId": scene.room_id}, token)
        # The connection is fine: the room's own invite opens it.
        joined = await client.call("room/join", {"token": scene.invite_token})
        assert joined["room"]["id"] == scene.room_id
        await client.close()


async def test_a_revoked_invite_is_forbidden(server: RunningServer, scene: Scene) -> None:
    invite = await scene.owner.call("invite/create", {"role": "editor"})
    await scene.owner.call("invite/revoke", {"inviteId": invite["inviteId"]})
    client = await connect(server.url, "Mal", token=None)
    await check_forbidden(client, {"token": invite["token"]}, invite["token"])
    await check_forbidden(
        client, {"roomId": scene.room_id, "token": invite["token"]}, invite["token"]
    )
    assert (await client.call("room/join", {"token": scene.invite_token}))["you"][
        "role"
    ] == "viewer"
    members = await server.storage.list_members(scene.room_id)
    assert [m.role for m in members].count("editor") == 0  # nobody got in through it


async def test_a_used_up_single_use_invite_is_forbidden(
    server: RunningServer, scene: Scene
) -> None:
    invite = await scene.owner.call("invite/create", {"role": "editor", "maxUses": 1})
    first = await connect(server.url, "First", token=None)
    joined = await first.call("room/join", {"token": invite["token"]})
    assert joined["you"]["role"] == "editor"
    for name in ("First", "Second"):  # neither the one who used it nor anyone else
        client = await connect(server.url, name, token=None)
        await check_forbidden(client, {"token": invite["token"]}, invite["token"])
        await client.close()
    # Joining again with the invite on the same connection uses it again: refused too.
    error = await first.error("room/join", {"token": invite["token"]})
    assert error["code"] == codes.FORBIDDEN
    members = await server.storage.list_members(scene.room_id)
    assert [m.role for m in members].count("editor") == 1
    await server_still_serves(server.url)
