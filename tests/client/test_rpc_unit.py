"""The client's JSON-RPC plumbing against a small scripted server on a real socket.

The fake server answers a few methods in ways the real one never would on purpose (out of
order, with garbage, by closing), so the client's reader is exercised on every path: responses
matched by id, error responses as ``RpcError``, notifications to subscribers and queues, failing
handlers, and a server-side close surfacing to pending requests and ``client.closed``. A few
document-level tests script the server's side of an edit to check what the client sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from codesphere.client import CodeSphereClient, ConnectionLost, NotConnected, RpcError
from codesphere.client import errors as codes
from codesphere.client.rpc import RpcConnection
from codesphere.core.changes import ContentChange

SCALE = float(os.environ.get("CODESPHERE_TIMEOUT_SCALE", "1"))

Script = Callable[[ServerConnection, dict[str, Any]], Awaitable[None]]


def t(seconds: float) -> float:
    """A timeout scaled for slow machines."""
    return seconds * SCALE


async def send(ws: ServerConnection, message: dict[str, Any]) -> None:
    """Send one JSON-RPC message."""
    await ws.send(orjson.dumps({"jsonrpc": "2.0", **message}).decode())


async def reply(ws: ServerConnection, request: dict[str, Any], result: Any) -> None:
    """Answer ``request`` with ``result``."""
    await send(ws, {"id": request["id"], "result": result})


async def fail(ws: ServerConnection, request: dict[str, Any], code: int, data: Any = None) -> None:
    """Answer ``request`` with an error."""
    error: dict[str, Any] = {"code": code, "message": f"refused ({code})"}
    if data is not None:
        error["data"] = data
    await send(ws, {"id": request["id"], "error": error})


class FakeServer:
    """Records every message it receives and answers by method, as scripted."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.scripts: dict[str, Script] = {}
        self.connections: list[ServerConnection] = []
        self.server: Server | None = None
        self.port = 0
        self.client_ids = 0

    async def start(self) -> None:
        self.server = await serve(self._serve, "127.0.0.1", 0, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def methods(self) -> list[str]:
        return [m.get("method", "<response>") for m in self.received]

    async def wait_for(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` messages of ``method`` have arrived; return them all."""
        async with asyncio.timeout(t(5)):
            while True:
                found = [m for m in self.received if m.get("method") == method]
                if len(found) >= count:
                    return found
                self.arrived.clear()
                await self.arrived.wait()

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        try:
            async for raw in ws:
                message = orjson.loads(raw)
                self.received.append(message)
                self.arrived.set()
                method = message.get("method")
                script = self.scripts.get(method) or getattr(
                    self, "on_" + str(method).replace("/", "_").replace("$", "S"), None
                )
                if script is not None:
                    await script(ws, message)
                elif "id" in message and method is not None:
                    await fail(ws, message, codes.METHOD_NOT_FOUND)
        except ConnectionClosed:
            pass

    # Default behaviour of a few methods.

    async def on_initialize(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        params = request["params"]
        self.client_ids += 1
        encodings = params["capabilities"]["general"]["positionEncodings"] or ["utf-16"]
        await reply(
            ws,
            request,
            {
                "serverInfo": {"name": "fake", "version": "0"},
                "capabilities": {"positionEncoding": encodings[0]},
                "clientId": params.get("clientId") or f"c-{self.client_ids}",
                "limits": {"requestsPerSecond": 1000},
            },
        )

    async def on_echo(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        await reply(ws, request, request.get("params"))

    async def on_S_ping(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        await reply(ws, request, {})

    async def on_shutdown(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        await reply(ws, request, None)

    async def on_exit(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        await ws.close(1000)

    async def on_room_join(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        me = {"memberId": "c-1", "name": "A", "color": "#000", "role": "editor", "online": True}
        await reply(
            ws,
            request,
            {
                "room": {"id": request["params"]["roomId"], "name": "r"},
                "you": me,
                "members": [me],
                "files": [{"path": "a.txt", "revision": 3, "eol": "\n"}],
            },
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakeServer) -> AsyncIterator[CodeSphereClient]:
    c = await CodeSphereClient.connect(fake.url, name="Ada", encodings=("utf-8", "utf-16"))
    try:
        yield c
    finally:
        await c.close(timeout=t(2))


# -- lifecycle -------------------------------------------------------------------------------


async def test_connect_initializes_and_close_says_goodbye(fake: FakeServer) -> None:
    """connect sends initialize and initialized; close sends shutdown and exit."""
    c = await CodeSphereClient.connect(
        fake.url, name="Ada", encodings=("utf-8",), client_id="me-1", client_name="tests"
    )
    assert c.client_id == "me-1"
    assert c.encoding == "utf-8"
    assert c.limits == {"requestsPerSecond": 1000}
    init = fake.received[0]
    assert init["method"] == "initialize"
    assert init["params"] == {
        "clientInfo": {"name": "tests", "version": init["params"]["clientInfo"]["version"]},
        "capabilities": {"general": {"positionEncodings": ["utf-8"]}},
        "clientId": "me-1",
        "displayName": "Ada",
    }
    await fake.wait_for("initialized")
    assert await c.ping() >= 0
    await c.close()
    await c.close()  # idempotent
    assert fake.methods()[-2:] == ["shutdown", "exit"]
    assert c.closed.done() and c.close_code == 1000
    with pytest.raises(NotConnected):
        await c.request("echo", {})


async def test_server_assigns_a_client_id(fake: FakeServer) -> None:
    """Without a clientId the client takes the one the server assigns."""
    c = await CodeSphereClient.connect(fake.url)
    try:
        assert c.client_id == "c-1"
        assert c.encoding == "utf-16"
        assert "clientId" not in fake.received[0]["params"]
    finally:
        await c.close()


# -- responses -------------------------------------------------------------------------------


async def test_responses_are_matched_by_id_even_out_of_order(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """Responses reach their requests by id, whatever order they come in."""
    held: list[dict[str, Any]] = []

    async def slow(ws: ServerConnection, request: dict[str, Any]) -> None:
        held.append(request)

    async def release(ws: ServerConnection, request: dict[str, Any]) -> None:
        await reply(ws, request, "released")
        for r in reversed(held):
            await reply(ws, r, r["params"])

    fake.scripts["slow"] = slow
    fake.scripts["release"] = release
    slow_calls = [asyncio.create_task(client.request("slow", {"n": i})) for i in range(5)]
    await fake.wait_for("slow", 5)
    assert await client.request("release") == "released"
    assert await asyncio.gather(*slow_calls) == [{"n": i} for i in range(5)]
    # Requests left in the order they were made.
    sent = [m["params"]["n"] for m in fake.received if m.get("method") == "slow"]
    assert sent == list(range(5))


async def test_many_concurrent_requests_keep_their_order(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """Concurrent requests are sent in the order they were made."""
    results = await asyncio.gather(*(client.request("echo", [i]) for i in range(300)))
    assert results == [[i] for i in range(300)]
    ids = [m["id"] for m in fake.received if m.get("method") == "echo"]
    assert ids == sorted(ids) and len(set(ids)) == 300


async def test_error_response_raises_rpc_error(fake: FakeServer, client: CodeSphereClient) -> None:
    """An error response raises RpcError with its code, message and data."""

    async def refuse(ws: ServerConnection, request: dict[str, Any]) -> None:
        await fail(ws, request, codes.RATE_LIMITED, {"retryAfterMs": 50})

    fake.scripts["refuse"] = refuse
    with pytest.raises(RpcError) as caught:
        await client.request("refuse", {})
    assert caught.value.code == codes.RATE_LIMITED == 1020
    assert caught.value.name == "RateLimited"
    assert caught.value.data == {"retryAfterMs": 50}
    with pytest.raises(RpcError) as unknown:
        await client.request("no/such/method")
    assert unknown.value.code == codes.METHOD_NOT_FOUND
    assert await client.request("echo", "still fine") == "still fine"


async def test_request_timeout(fake: FakeServer, client: CodeSphereClient) -> None:
    """A request with no answer times out."""

    async def never(ws: ServerConnection, request: dict[str, Any]) -> None:
        return None

    fake.scripts["never"] = never
    with pytest.raises(TimeoutError):
        await client.request("never", timeout=0.05)
    assert await client.request("echo", 1) == 1


async def test_garbage_from_the_server_is_ignored(
    fake: FakeServer, client: CodeSphereClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames that are not JSON-RPC are ignored and the connection goes on."""

    async def garbage(ws: ServerConnection, request: dict[str, Any]) -> None:
        await ws.send("this is not json")
        await ws.send(b"\x00binary")
        await ws.send("[1, 2]")
        await send(ws, {"id": 987654, "result": "nobody asked"})
        await send(ws, {"id": "x", "method": "server/request", "params": {}})
        await reply(ws, request, "ok")

    fake.scripts["garbage"] = garbage
    with caplog.at_level(logging.WARNING, logger="codesphere.client"):
        assert await client.request("garbage") == "ok"
    # A server-to-client request is answered with MethodNotFound.
    async with asyncio.timeout(t(5)):
        while not any(m.get("id") == "x" for m in fake.received):
            await asyncio.sleep(0.01)
    answer = next(m for m in fake.received if m.get("id") == "x")
    assert answer["error"]["code"] == codes.METHOD_NOT_FOUND
    assert client.connected


# -- notifications ---------------------------------------------------------------------------


async def _notify_script(ws: ServerConnection, request: dict[str, Any]) -> None:
    for params in request["params"]:
        await send(ws, {"method": "test/note", "params": params})
    await reply(ws, request, None)


async def test_notifications_reach_handlers_and_queues(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """Notifications reach subscribed handlers and the per-method queues."""
    fake.scripts["notifyMe"] = _notify_script
    seen: list[Any] = []
    everything: list[Any] = []
    async_seen: list[Any] = []

    async def async_handler(params: Any) -> None:
        await asyncio.sleep(0)
        async_seen.append(params)

    unsubscribe = client.on("test/note", seen.append)
    client.on("test/note", async_handler)
    client.on("*", everything.append)
    await client.request("notifyMe", [{"n": 1}, {"n": 2}, {"n": 3}])
    # Notifications sent before the response are handled before it resolves.
    assert seen == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert everything[0] == {"method": "test/note", "params": {"n": 1}}
    assert await client.next_notification("test/note", timeout=t(1)) == {"n": 1}
    assert await client.next_notification("test/note", predicate=lambda p: p["n"] == 3) == {"n": 3}
    assert client.notifications("test/note") == [{"n": 2}]
    client.clear_notifications("test/note")
    with pytest.raises(TimeoutError):
        await client.next_notification("test/note", timeout=0.05)
    unsubscribe()
    waiter = asyncio.create_task(client.next_notification("test/note", timeout=t(5)))
    await asyncio.sleep(0)
    await client.request("notifyMe", [{"n": 4}])
    assert await waiter == {"n": 4}
    assert seen == [{"n": 1}, {"n": 2}, {"n": 3}]
    async with asyncio.timeout(t(5)):
        while len(async_seen) < 4:
            await asyncio.sleep(0.01)


async def test_failing_handlers_do_not_stop_the_reader(
    fake: FakeServer, client: CodeSphereClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises, sync or async, does not stop the reader."""
    fake.scripts["notifyMe"] = _notify_script

    def broken(params: Any) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(params: Any) -> None:
        raise RuntimeError("async handler bug")

    client.on("test/note", broken)
    client.on("test/note", broken_async)
    with caplog.at_level(logging.ERROR, logger="codesphere.client"):
        await client.request("notifyMe", [{"n": 1}, {"n": 2}])
        assert await client.next_notification("test/note") == {"n": 1}
        assert await client.next_notification("test/note") == {"n": 2}
        assert await client.request("echo", "alive") == "alive"
        await asyncio.sleep(0.01)
    assert "handler bug" in caplog.text
    assert "async handler bug" in caplog.text
    assert client.connected


async def test_failing_reply_callback_does_not_stop_the_reader(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """A reply callback that raises does not stop the reader."""
    conn = client.connection
    assert conn is not None

    def broken(result: Any, error: RpcError | None) -> None:
        raise RuntimeError("callback bug")

    call = conn.send_request("echo", 5, broken)
    assert await call.reply == 5
    assert await client.request("echo", 6) == 6


# -- closing ---------------------------------------------------------------------------------


async def test_server_close_fails_pending_requests_and_resolves_closed(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """A close by the server fails pending requests and resolves closed with its code."""

    async def hang(ws: ServerConnection, request: dict[str, Any]) -> None:
        return None

    async def drop(ws: ServerConnection, request: dict[str, Any]) -> None:
        await ws.close(4002, "too slow")

    fake.scripts["hang"] = hang
    fake.scripts["drop"] = drop
    pending = asyncio.create_task(client.request("hang"))
    await fake.wait_for("hang")
    with pytest.raises(ConnectionLost) as lost:
        await client.request("drop")
    assert lost.value.code == 4002
    with pytest.raises(ConnectionLost):
        await pending
    assert await asyncio.wait_for(client.closed, t(5)) == 4002
    assert client.close_code == 4002
    assert not client.connected
    with pytest.raises(NotConnected):
        await client.request("echo", 1)
    with pytest.raises(NotConnected):
        await client.notify("echo", 1)


async def test_raw_connection_surfaces_close(fake: FakeServer) -> None:
    """The JSON-RPC connection reports the server's close code."""
    notes: list[tuple[str, Any]] = []
    closed: list[RpcConnection] = []
    conn = await RpcConnection.open(fake.url, lambda m, p: notes.append((m, p)), closed.append)
    assert await conn.request("echo", {"x": 1}) == {"x": 1}
    fake.scripts["notifyMe"] = _notify_script
    await conn.request("notifyMe", ["a"])
    assert notes == [("test/note", "a")]
    await fake.connections[-1].close(1001)
    assert await conn.wait_closed(t(5)) == 1001
    assert closed == [conn]
    with pytest.raises(ConnectionLost):
        conn.send_request("echo")
    await conn.close()


async def test_sending_rate_is_limited(fake: FakeServer) -> None:
    """The client keeps under the sending rate the server announces."""
    conn = await RpcConnection.open(fake.url, lambda m, p: None, requests_per_second=100, burst=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(conn.request("echo", i) for i in range(25)))
    # 5 at once, then 20 more at 100 per second.
    assert loop.time() - started >= 0.15
    await conn.close()


# -- documents against a scripted server -----------------------------------------------------


def _opened(text: str, revision: int) -> Script:
    async def did_open(ws: ServerConnection, request: dict[str, Any]) -> None:
        path = request["params"]["path"]
        await reply(ws, request, {"path": path, "text": text, "revision": revision, "eol": "\n"})

    return did_open


async def test_edits_are_sent_with_revision_seq_and_encoded_positions(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """Edits go out with their base revision, seq and positions in the negotiated encoding."""
    acks: list[dict[str, Any]] = []

    async def did_change(ws: ServerConnection, request: dict[str, Any]) -> None:
        acks.append(request)
        await reply(ws, request, {"revision": 3 + len(acks), "catchUp": []})

    fake.scripts["textDocument/didOpen"] = _opened("a😀\n", 3)
    fake.scripts["textDocument/didChange"] = did_change
    await client.join("r-1")
    doc = await client.open("a.txt")
    assert (doc.text, doc.revision, doc.encoding) == ("a😀\n", 3, "utf-8")
    await doc.insert(2, "é")
    await doc.settled(t(5))
    assert doc.text == "a😀é\n" and doc.revision == 4
    params = acks[0]["params"]
    assert params["revision"] == 3 and params["seq"] == 1
    # Code point 2 is byte 5 in utf-8.
    assert params["contentChanges"] == [
        {
            "range": {"start": {"line": 0, "character": 5}, "end": {"line": 0, "character": 5}},
            "text": "é",
        }
    ]
    await doc.edit([ContentChange(((1, 0), (1, 0)), "x")])
    await doc.settled(t(5))
    assert acks[1]["params"]["seq"] == 2 and acks[1]["params"]["revision"] == 4
    assert doc.text == "a😀é\nx"


async def test_refused_edit_resyncs_to_the_server_text(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """A refused edit makes the document re-open and take the server's text."""

    async def forbid(ws: ServerConnection, request: dict[str, Any]) -> None:
        await fail(ws, request, codes.FORBIDDEN)

    fake.scripts["textDocument/didOpen"] = _opened("server text", 7)
    fake.scripts["textDocument/didChange"] = forbid
    await client.join("r-1")
    doc = await client.open("a.txt")
    await doc.insert(0, "mine ")
    assert doc.text == "mine server text"
    await doc.settled(t(5))
    assert doc.text == "server text" and doc.revision == 7
    assert [e.code for e in doc.errors] == [codes.FORBIDDEN]
    assert doc.lost_edits == 1
    assert len(await fake.wait_for("textDocument/didOpen", 2)) == 2


async def test_reconnect_resends_kept_edits_exactly(fake: FakeServer) -> None:
    """A reconnect resumes at the kept revision and resends every kept edit unchanged."""
    client = await CodeSphereClient.connect(fake.url, client_id="me", encodings=("utf-32",))
    try:
        fake.scripts["textDocument/didOpen"] = _opened("abc", 5)

        async def swallow(ws: ServerConnection, request: dict[str, Any]) -> None:
            return None  # never acknowledged: the connection will drop

        fake.scripts["textDocument/didChange"] = swallow
        await client.join("r-1")
        doc = await client.open("a.txt")
        await doc.insert(3, "d")
        await fake.wait_for("textDocument/didChange")
        await fake.connections[-1].close(1001)
        await asyncio.wait_for(client.closed, t(5))
        await doc.insert(4, "e")  # while disconnected: kept, not failed
        assert doc.text == "abcde" and doc.unacked == 2

        committed: list[dict[str, Any]] = []

        async def ack(ws: ServerConnection, request: dict[str, Any]) -> None:
            committed.append(request["params"])
            await reply(ws, request, {"revision": 5 + len(committed), "catchUp": []})

        fake.scripts["textDocument/didChange"] = ack
        await client.reconnect()
        await doc.settled(t(5))
        assert doc.text == "abcde" and doc.revision == 7
        second = fake.received[[m.get("method") for m in fake.received].index("initialize", 1) :]
        methods = [m.get("method") for m in second]
        assert methods[:5] == [
            "initialize",
            "initialized",
            "room/join",
            "textDocument/didOpen",
            "textDocument/didChange",
        ]
        assert second[0]["params"]["clientId"] == "me"
        assert second[3]["params"] == {"path": "a.txt", "revision": 5}
        assert [(c["seq"], c["revision"]) for c in committed] == [(1, 5), (2, 5)]
        assert committed[0]["contentChanges"][0]["text"] == "d"
        assert committed[1]["contentChanges"][0]["text"] == "e"
    finally:
        await client.close()


async def test_resume_too_old_falls_back_to_a_plain_open(fake: FakeServer) -> None:
    """A refused resume falls back to a plain open and records the lost edits."""
    client = await CodeSphereClient.connect(fake.url, client_id="me", encodings=("utf-32",))
    try:
        fake.scripts["textDocument/didOpen"] = _opened("abc", 5)

        async def swallow(ws: ServerConnection, request: dict[str, Any]) -> None:
            return None

        fake.scripts["textDocument/didChange"] = swallow
        await client.join("r-1")
        doc = await client.open("a.txt")
        await doc.insert(0, "x")
        await fake.connections[-1].close(1001)
        await asyncio.wait_for(client.closed, t(5))

        async def too_old(ws: ServerConnection, request: dict[str, Any]) -> None:
            if "revision" in request["params"]:
                await fail(ws, request, codes.RESYNC_REQUIRED)
            else:
                await reply(
                    ws, request, {"path": "a.txt", "text": "head", "revision": 9000, "eol": "\n"}
                )

        fake.scripts["textDocument/didOpen"] = too_old
        await client.reconnect()
        await doc.settled(t(5))
        assert (doc.text, doc.revision) == ("head", 9000)
        assert [e.code for e in doc.errors] == [codes.RESYNC_REQUIRED]
        assert doc.lost_edits == 1
        opens = await fake.wait_for("textDocument/didOpen", 3)
        assert [o["params"] for o in opens[1:]] == [
            {"path": "a.txt", "revision": 5},
            {"path": "a.txt"},
        ]
        # The next edit continues the seq counter (the server knows seq 1 already).
        fake.scripts["textDocument/didChange"] = swallow
        await doc.insert(0, ">")
        changes = await fake.wait_for("textDocument/didChange", 2)
        assert (changes[-1]["params"]["seq"], changes[-1]["params"]["revision"]) == (2, 9000)
    finally:
        await client.close()


async def test_without_auto_resync_a_refused_edit_blocks_until_resync(fake: FakeServer) -> None:
    """Without auto_resync, editing after a refusal raises ResyncNeeded until resync()."""
    from codesphere.client import ResyncNeeded

    client = await CodeSphereClient.connect(fake.url, auto_resync=False)
    try:
        fake.scripts["textDocument/didOpen"] = _opened("text", 2)

        async def bad_position(ws: ServerConnection, request: dict[str, Any]) -> None:
            await fail(ws, request, codes.INVALID_POSITION)

        fake.scripts["textDocument/didChange"] = bad_position
        await client.join("r-1")
        doc = await client.open("a.txt")
        await doc.insert(4, "!")
        with pytest.raises(ResyncNeeded):
            await doc.settled(t(5))
        assert doc.needs_resync and [e.code for e in doc.errors] == [codes.INVALID_POSITION]
        with pytest.raises(ResyncNeeded):
            await doc.insert(0, "more")
        await doc.resync()
        assert not doc.needs_resync and doc.text == "text" and doc.is_settled
    finally:
        await client.close()


async def test_concurrent_opens_share_one_document(
    fake: FakeServer, client: CodeSphereClient
) -> None:
    """Two concurrent opens of one path share one document."""
    fake.scripts["textDocument/didOpen"] = _opened("same", 1)
    await client.join("r-1")
    first, second = await asyncio.gather(client.open("a.txt"), client.open("a.txt"))
    assert first is second
    assert len(await fake.wait_for("textDocument/didOpen")) == 1
    await first.close()
    assert first.closed and "a.txt" not in client.documents
    await fake.wait_for("textDocument/didClose")
