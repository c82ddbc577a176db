"""A bare JSON-RPC client over a real WebSocket, for tests that send exactly what they mean.

Unlike the product's client it has no rules: it sends any frame and shows every reply.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import timeout
from tests.tokens import operator_token


class RawClient:
    """One WebSocket with helpers to send requests and read what comes back."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> RawClient:
        """Connect without compression (the server never negotiates it)."""
        ws = await connect(url, compression=None, max_size=None, **kwargs)
        return cls(ws)

    async def send_raw(self, data: str | bytes) -> None:
        """Send one frame as is."""
        await self.ws.send(data)

    async def recv(self, wait: float = 5.0) -> dict[str, Any]:
        """The next message."""
        data = await asyncio.wait_for(self.ws.recv(), timeout(wait))
        message: dict[str, Any] = orjson.loads(data)
        return message

    async def request(self, method: str, params: Any = None, wait: float = 5.0) -> dict[str, Any]:
        """Send a request; return its whole response (result or error), keeping notifications."""
        id_ = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(orjson.dumps(message).decode())
        while True:
            reply = await self.recv(wait)
            if reply.get("id") == id_ and "method" not in reply:
                return reply
            self.inbox.append(reply)

    async def call(self, method: str, params: Any = None) -> Any:
        """Send a request and return its result; fail the test on an error."""
        reply = await self.request(method, params)
        assert "error" not in reply, reply
        return reply["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request and return its error object; fail the test if it succeeded."""
        reply = await self.request(method, params)
        assert "error" in reply and "result" not in reply, reply
        error: dict[str, Any] = reply["error"]
        return error

    async def wait_closed(self, wait: float = 10.0) -> int | None:
        """Read (into the inbox) until the server closes the socket; return its close code."""

        async def drain() -> None:
            try:
                while True:
                    self.inbox.append(orjson.loads(await self.ws.recv()))
            except ConnectionClosed:
                pass

        await asyncio.wait_for(drain(), timeout(wait))
        code: int | None = self.ws.close_code
        return code

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(orjson.dumps(message).decode())

    async def notification(self, method: str, wait: float = 5.0) -> dict[str, Any]:
        """The next notification called ``method`` (earlier ones are kept in the inbox)."""
        for i, m in enumerate(self.inbox):
            if m.get("method") == method:
                return self.inbox.pop(i)
        while True:
            m = await self.recv(wait)
            if m.get("method") == method:
                return m
            self.inbox.append(m)

    async def initialize(
        self, name: str = "tester", encoding: str = "utf-16", token: str | None = ""
    ) -> dict[str, Any]:
        """Initialize with one position encoding and ``token`` (default: an operator's)."""
        params: dict[str, Any] = {
            "clientInfo": {"name": "rawclient"},
            "capabilities": {"general": {"positionEncodings": [encoding]}},
            "displayName": name,
        }
        if token is not None:
            params["token"] = token or operator_token()
        result: dict[str, Any] = await self.call("initialize", params)
        await self.notify("initialized", {})
        return result

    async def close(self) -> None:
        """Close the socket."""
        await self.ws.close()


def pos(line: int, character: int) -> dict[str, int]:
    """An LSP Position."""
    return {"line": line, "character": character}


def insert(line: int, character: int, text: str) -> dict[str, Any]:
    """A content change inserting ``text`` at a position."""
    return {"range": {"start": pos(line, character), "end": pos(line, character)}, "text": text}
