"""The WebSocket endpoint at ``/ws`` (aiohttp), feeding frames to a :class:`Connection`.

aiohttp reads and answers control frames (ping, pong, close) and enforces the message size
limit (close code 1009). Outgoing text frames are built by ``protocol.wsframe`` and written
straight to the socket's transport: aiohttp writes uncompressed frames synchronously too, so the
two never interleave inside a frame.

Frames for one connection are gathered during one turn of the event loop and written with one
system call at its end: under load, the edits committed by one storage batch and the presence
that follows them reach each client in a single write. One callback per turn flushes every
connection that has something to write.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from codesphere.app.connection import Connection
from codesphere.app.hub import Hub
from codesphere.protocol.errors import RpcError

log = logging.getLogger("codesphere.websocket")

HUB_KEY = web.AppKey("hub", Hub)
#: Origins, besides the server's own, whose pages may open a WebSocket.
ORIGINS_KEY = web.AppKey("allowed_origins", frozenset[str])

#: Headers only browsers send: an upgrade carrying one came from a web page.
_BROWSER_HEADERS = ("Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Cookie")


def origin_refusal(request: web.Request) -> str | None:
    """Why a browser's upgrade may not proceed (``None``: it may).

    A page on another site could otherwise open a socket with its visitor's browser (cross-site
    WebSocket hijacking). Browsers always send ``Origin`` on an upgrade; a browser-style request
    without one, or with ``null`` (sandboxed frames, ``file:`` pages), is refused. Editors and
    other programs send no ``Origin`` and none of the browser-only headers, and authenticate with
    their token like everyone else.
    """
    origin = request.headers.get("Origin")
    browser = origin is not None or any(h in request.headers for h in _BROWSER_HEADERS)
    if not browser:
        return None
    if origin is None or origin.strip().lower() == "null":
        return "a browser upgrade must come with the page's Origin"
    normalized = origin.strip().rstrip("/").lower()
    own = f"{request.scheme}://{request.host}".lower()
    if normalized == own or normalized in request.app[ORIGINS_KEY]:
        return None
    return "this origin may not connect (see --allowed-origin)"


class _Flusher:
    """Writes out, at the end of the current loop turn, every transport with queued frames."""

    def __init__(self) -> None:
        self.dirty: list[WebSocketTransport] = []

    def add(self, transport: WebSocketTransport) -> None:
        if not self.dirty:
            asyncio.get_running_loop().call_soon(self.run)
        self.dirty.append(transport)

    def run(self) -> None:
        dirty, self.dirty = self.dirty, []
        for transport in dirty:
            transport.flush()


#: One flusher per event loop: a flush pending on a loop that stopped (a server closed in one
#: thread, another started in a new loop) must not hold up another loop's writes.
_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher_of_running_loop() -> _Flusher:
    loop = asyncio.get_running_loop()
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher()
    return flusher


class WebSocketTransport:
    """A :class:`~codesphere.app.connection.Transport` over an aiohttp WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, max_buffer: int):
        self.ws = ws
        self.transport = transport
        self.max_buffer = max_buffer
        self.closing = False
        self._close_task: asyncio.Task[Any] | None = None
        self._pending: list[bytes] = []
        self._flusher = _flusher_of_running_loop()

    def write_frame(self, frame: bytes) -> None:
        """Queue a frame for the write at the end of this turn of the event loop."""
        if self.closing:
            return
        if not self._pending:
            self._flusher.add(self)
        self._pending.append(frame)

    def flush(self) -> None:
        """Write the queued frames; a client whose unread output passes the limit gets 4002."""
        frames = self._pending
        if not frames:
            return
        self._pending = []
        t = self.transport
        if self.closing or t.is_closing():
            return
        if t.get_write_buffer_size() > self.max_buffer:
            self.close(4002, "client too slow")
            return
        t.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def close(self, code: int, reason: str) -> None:
        """Start a close handshake with ``code`` after what is queued; later writes are dropped."""
        if self.closing:
            return
        self.flush()
        self.closing = True
        self._close_task = asyncio.ensure_future(
            self.ws.close(code=code, message=reason.encode("utf-8"))
        )


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Serve one client for the lifetime of its WebSocket."""
    hub = request.app[HUB_KEY]
    limits = hub.limits
    refusal = origin_refusal(request)
    if refusal is not None:
        raise web.HTTPForbidden(text=refusal + "\n")
    claims = None
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise web.HTTPUnauthorized(text="Authorization must be 'Bearer <token>'\n")
        try:
            claims = hub.access.verify(token.strip())
        except RpcError as exc:
            raise web.HTTPUnauthorized(text=exc.message + "\n") from None
    ws = web.WebSocketResponse(
        max_msg_size=limits.max_message_bytes,
        compress=False,
        heartbeat=limits.heartbeat_seconds,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the peer vanished during the handshake
        return ws
    peer = request.remote or ""
    conn = Connection(hub, WebSocketTransport(ws, transport, limits.max_output_buffer), peer)
    conn.claims = claims
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await conn.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.transport.close(1003, "binary frames are not supported")
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        await conn.closed()
    return ws
