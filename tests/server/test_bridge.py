"""``codesphere bridge`` as a child process between LSP-framed stdio and a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from codesphere.app.server import RunningServer
from tests.conftest import timeout
from tests.serve import codesphere_executable
from tests.tokens import operator_token


class Bridge:
    """A running bridge: write framed messages, read framed ones."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ids = 0

    @classmethod
    async def start(cls, url: str) -> Bridge:
        process = await asyncio.create_subprocess_exec(
            codesphere_executable(), "bridge", url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, ensure_ascii=False).encode()
        await self.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout(10)):
            header = await self.process.stdout.readuntil(b"\r\n\r\n")
            length = int(header.split(b":")[1].split(b"\r\n")[0])
            message: dict[str, Any] = json.loads(await self.process.stdout.readexactly(length))
            return message

    async def call(self, method: str, params: Any) -> Any:
        self.ids += 1
        await self.send({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params})
        while True:
            message = await self.read()
            if message.get("id") == self.ids:
                assert "error" not in message, message
                return message["result"]

    async def finish(self) -> tuple[int, str]:
        """Close stdin, wait for the exit; the status and what went to stderr."""
        assert self.process.stdin is not None and self.process.stderr is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        async with asyncio.timeout(timeout(10)):
            status = await self.process.wait()
            err = (await self.process.stderr.read()).decode()
        return status, err


@pytest.fixture
async def bridge(server: RunningServer) -> AsyncIterator[Bridge]:
    running = await Bridge.start(server.url)
    try:
        yield running
    finally:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.wait()


def init_params(name: str = "Nvim") -> dict[str, Any]:
    return {
        "clientInfo": {"name": "test"},
        "capabilities": {"general": {"positionEncodings": ["utf-8"]}},
        "displayName": name,
        "token": operator_token(),
    }


async def test_a_session_through_the_bridge(bridge: Bridge) -> None:
    """Requests, answers and notifications cross in both directions; EOF ends it cleanly."""
    result = await bridge.call("initialize", init_params())
    assert result["capabilities"]["positionEncoding"] == "utf-8"
    await bridge.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    room = await bridge.call("room/create", {"name": "r", "files": [{"path": "a", "text": ""}]})
    await bridge.call("room/join", {"roomId": room["roomId"]})
    opened = await bridge.call("textDocument/didOpen", {"path": "a"})
    text = "😀 中文 " * 20_000  # a large paste: several hundred kilobytes in one message
    change = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
              "text": text}  # fmt: skip
    params = {"path": "a", "revision": opened["revision"], "seq": 1, "contentChanges": [change]}
    assert (await bridge.call("textDocument/didChange", params))["revision"] == 1
    await bridge.call("chat/send", {"text": "hi"})
    assert await bridge.finish() == (0, "")


async def test_split_and_batched_writes_and_extra_headers(bridge: Bridge) -> None:
    """Framing, not write boundaries, separates messages; Content-Type is allowed."""
    first = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": init_params()}).encode()  # fmt: skip
    second = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "$/ping"}).encode()
    data = (
        b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n%s"
        % (len(first), first)
        + b"Content-Length: %d\r\n\r\n%s" % (len(second), second)
    )
    for i in range(0, len(data), 7):
        await bridge.write(data[i : i + 7])
    assert (await bridge.read())["id"] == 1
    assert (await bridge.read())["id"] == 2
    assert (await bridge.finish())[0] == 0


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"Content-Length: nine\r\n\r\n{}", "bad Content-Length"),
        (b"Content-Type: x\r\n\r\n{}", "without Content-Length"),
        (b'{"jsonrpc": "2.0"}\r\n\r\n', "not a header line"),
        (b"Content-Length: 99999999999\r\n\r\n", "over the limit"),
        (b"Content-Length: 10\r\n\r\n{}", "ended inside a message"),
        (b"Content-Length: 2\r\n\r\n\xff\xfe", "not UTF-8"),
    ],
)
async def test_bad_framing_is_reported_and_ends_the_bridge(
    bridge: Bridge, data: bytes, says: str
) -> None:
    await bridge.write(data)
    assert bridge.process.stdin is not None
    bridge.process.stdin.close()
    status, err = await bridge.finish()
    assert status == 2 and says in err


async def test_the_server_closing_ends_the_bridge_with_its_reason(server: RunningServer) -> None:
    bridge = await Bridge.start(server.url)
    await bridge.call("initialize", init_params())
    for conn in list(server.hub.connections):
        conn.transport.close(4003, "removed from the room")
    status, err = await bridge.finish()
    assert status == 1 and "4003" in err and "removed from the room" in err


async def test_an_unreachable_server_is_reported() -> None:
    bridge = await Bridge.start("ws://127.0.0.1:9/ws")
    status, err = await bridge.finish()
    assert status == 1 and "cannot connect" in err
