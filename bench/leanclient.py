"""A lean protocol client for load generation: the product's revision rule, minimal framing.

The product client (:mod:`codesphere.client`) spends about 60 µs of Python per message it
receives, in the ``websockets`` frame parser, routing and bookkeeping. Playing 50 clients that
receive 12,000 edits a second would then take more than the one core the load generator gets,
and the benchmark would measure the load generator. This client keeps what defines a client —
:class:`~codesphere.client.state.ClientDocument` applies local and remote edits and follows the
revision rule exactly as the product client does — and replaces the rest with an
``asyncio.Protocol`` that parses server frames (unmasked, never fragmented or compressed by
CodeSphere) in a few microseconds.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from codesphere.client.state import ClientDocument
from codesphere.core.changes import ContentChange
from codesphere.core.positions import Encoding, position_at


def _mask(payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.3), XOR done on big integers at C speed."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return header + key + masked


class LeanConnection(asyncio.Protocol):
    """One WebSocket speaking JSON-RPC; calls ``on_message`` with each decoded message."""

    def __init__(self, on_message: Callable[[dict[str, Any], float], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.handshaking = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("connection lost during the handshake"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buffer
        buf += data
        if self.handshaking:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            self.handshaking = False
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            n = buf[1] & 0x7F
            start = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                start = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                start = 10
            if len(buf) < start + n:
                return
            payload = bytes(buf[start : start + n])
            del buf[: start + n]
            if opcode == 1:
                self.on_message(orjson.loads(payload), now)
            elif opcode == 9:  # ping: answer with a pong carrying the same payload
                self._write_control(0x8A, payload)
            elif opcode == 8:
                assert self.transport is not None
                self.transport.close()
                return

    def _write_control(self, first: int, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(struct.pack("!BB", first, 0x80 | len(payload)) + b"\0\0\0\0" + payload)

    def send(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_mask(orjson.dumps(message)))


class LeanClient:
    """A JSON-RPC client with the product's :class:`ClientDocument` for each open document."""

    def __init__(self) -> None:
        self.conn: LeanConnection | None = None
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.acks: dict[int, ClientDocument] = {}
        self.reopens: dict[int, ClientDocument] = {}
        self.docs: dict[str, ClientDocument] = {}
        self.encoding: Encoding = "utf-16"
        self.on_remote: Callable[[dict[str, Any], float], None] | None = None
        #: Called with every acknowledgement's catchUp, applied or not, and when it arrived.
        self.on_catch_up: Callable[[list[dict[str, Any]], float], None] | None = None
        self.resyncing: set[str] = set()
        self.resyncs = 0

    @classmethod
    async def connect(
        cls, url: str, name: str, encoding: Encoding, token: str | None = None
    ) -> LeanClient:
        """Connect, upgrade and initialize (with ``token``, if given)."""
        self = cls()
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: LeanConnection(self._received), parts.hostname, parts.port
        )
        self.conn = conn
        key = base64.b64encode(os.urandom(16)).decode()
        assert conn.transport is not None
        conn.transport.write(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await conn.upgraded
        params: dict[str, Any] = {
            "clientInfo": {"name": "codesphere-bench"},
            "capabilities": {"general": {"positionEncodings": [encoding]}},
            "displayName": name,
        }
        if token is not None:
            params["token"] = token
        result = await self.request("initialize", params)
        self.encoding = result["capabilities"]["positionEncoding"]
        return self

    def _received(self, message: dict[str, Any], now: float) -> None:
        method = message.get("method")
        if method is None:
            id_ = message.get("id")
            doc = self.acks.pop(id_, None) if isinstance(id_, int) else None
            if doc is not None:
                if "error" in message:
                    # Refused (for instance too far behind): re-open, as every client must.
                    self._resync(doc)
                    return
                if doc.path in self.resyncing:
                    return  # an answer to an edit abandoned by the resync
                result = message["result"]
                if self.on_catch_up is not None:
                    self.on_catch_up(result["catchUp"], now)
                doc.on_ack(result["revision"], [_change(c) for c in result["catchUp"]])
                if not doc.unacked:
                    self._send_unsent(doc)  # what was typed while the edit was in flight
                return
            reopened = self.reopens.pop(id_, None) if isinstance(id_, int) else None
            if reopened is not None:
                self._reopened(reopened, message)
                return
            fut = self.waiting.pop(id_, None) if isinstance(id_, int) else None
            if fut is not None and not fut.done():
                if "error" in message:
                    fut.set_exception(RuntimeError(str(message["error"])))
                else:
                    fut.set_result(message.get("result"))
            return
        if method == "textDocument/remoteChange":
            params = message["params"]
            if self.on_remote is not None:
                self.on_remote(params, now)
            doc = self.docs.get(params["path"])
            if doc is not None and doc.path not in self.resyncing:
                doc.on_remote(params["revision"], [_change(c) for c in params["contentChanges"]])

    async def request(self, method: str, params: Any) -> Any:
        """Send a request and wait for its result."""
        assert self.conn is not None
        id_ = next(self.ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[id_] = fut
        self.conn.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        return await fut

    def _resync(self, doc: ClientDocument) -> None:
        if doc.path in self.resyncing:
            return
        self.resyncing.add(doc.path)
        self.resyncs += 1

        assert self.conn is not None
        id_ = next(self.ids)
        # Handled as the answer is read, before any later frame: a remoteChange right behind
        # it in the same read must find the document already at the answer's revision.
        self.reopens[id_] = doc
        params = {"path": doc.path}
        self.conn.send(
            {"jsonrpc": "2.0", "id": id_, "method": "textDocument/didOpen", "params": params}
        )

    def _reopened(self, doc: ClientDocument, message: dict[str, Any]) -> None:
        if "error" in message:
            raise RuntimeError(f"re-opening {doc.path} failed: {message['error']}")
        result = message["result"]
        doc.reset(result["text"], result["revision"])
        doc.last_seq = max(doc.last_seq, result["lastSeq"])
        self.resyncing.discard(doc.path)

    async def open(self, path: str) -> ClientDocument:
        """Open a document."""
        result = await self.request("textDocument/didOpen", {"path": path})
        doc = ClientDocument(
            path, result["text"], result["revision"], self.encoding, last_seq=result["lastSeq"]
        )
        self.docs[path] = doc
        return doc

    def replace(self, doc: ClientDocument, start: int, end: int, text: str) -> bool:
        """Type: replace code points ``start..end`` of ``doc`` with ``text``.

        Like most editors' clients, it keeps one edit in flight: what is typed meanwhile is
        gathered and sent when the answer comes. Nothing is typed while the document is
        being re-opened: then it returns False.
        """
        if doc.path in self.resyncing:
            return False
        rng = (position_at(doc.text, start, doc.encoding), position_at(doc.text, end, doc.encoding))
        doc.type([ContentChange(rng, text)])
        if not doc.unacked:
            self._send_unsent(doc)
        return True

    def _send_unsent(self, doc: ClientDocument) -> None:
        edit = doc.take_unsent()
        if edit is None:
            return
        assert self.conn is not None
        id_ = next(self.ids)
        self.acks[id_] = doc
        self.conn.send(
            {
                "jsonrpc": "2.0",
                "id": id_,
                "method": "textDocument/didChange",
                "params": {
                    "path": doc.path,
                    "revision": edit.base,
                    "seq": edit.seq,
                    "contentChanges": [_change_json(c) for c in edit.changes],
                },
            }
        )

    def presence(self, doc: ClientDocument, anchor: int, active: int) -> None:
        """Show a selection (fire and forget: the answer is ignored)."""
        assert self.conn is not None
        a = position_at(doc.text, anchor, doc.encoding)
        b = position_at(doc.text, active, doc.encoding)
        self.conn.send(
            {
                "jsonrpc": "2.0",
                "id": next(self.ids),
                "method": "presence/update",
                "params": {
                    "path": doc.path,
                    "revision": doc.revision,
                    "selections": [
                        {
                            "anchor": {"line": a[0], "character": a[1]},
                            "active": {"line": b[0], "character": b[1]},
                        }
                    ],
                },
            }
        )

    async def close(self) -> None:
        """Close the socket."""
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
            await self.conn.closed


def _change(raw: dict[str, Any]) -> ContentChange:
    rng = raw.get("range")
    if rng is None:
        return ContentChange(None, raw["text"])
    s, e = rng["start"], rng["end"]
    return ContentChange(((s["line"], s["character"]), (e["line"], e["character"])), raw["text"])


def _change_json(c: ContentChange) -> dict[str, Any]:
    if c.range is None:
        return {"text": c.text}
    (sl, sc), (el, ec) = c.range
    return {
        "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
        "text": c.text,
    }
