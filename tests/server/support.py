"""Shared helpers for the end-to-end server tests: connecting, rooms, edits and checksums."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.rawclient import RawClient
from tests.tokens import operator_token


def sha256(text: str) -> str:
    """The checksum protocol.md §6.4 defines: SHA-256 of the UTF-8 text, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def connect(
    url: str,
    name: str = "tester",
    encoding: str = "utf-16",
    client_id: str | None = None,
    token: str | None = "",
) -> RawClient:
    """A connected and initialized client (one position encoding, optional clientId).

    ``token`` defaults to an operator token of a user of its own; ``None`` sends none.
    """
    client = await RawClient.connect(url, max_queue=None)
    params: dict[str, Any] = {
        "clientInfo": {"name": "rawclient"},
        "capabilities": {"general": {"positionEncodings": [encoding]}},
        "displayName": name,
    }
    if client_id is not None:
        params["clientId"] = client_id
    if token is not None:
        params["token"] = token or operator_token(client_id)
    result = await client.call("initialize", params)
    assert result["capabilities"]["positionEncoding"] == encoding
    if client_id is not None:
        assert result["clientId"] == client_id
    await client.notify("initialized", {})
    return client


async def create_room(client: RawClient, files: dict[str, str], name: str = "room") -> str:
    """Create a room holding ``files`` (path -> text); returns its id."""
    params = {"name": name, "files": [{"path": p, "text": t} for p, t in files.items()]}
    result = await client.call("room/create", params)
    room_id: str = result["roomId"]
    return room_id


def change(path: str, revision: int, seq: int, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """``textDocument/didChange`` params."""
    return {"path": path, "revision": revision, "seq": seq, "contentChanges": changes}
