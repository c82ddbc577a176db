"""One client connection: its session state and the JSON-RPC dispatch loop.

The transport (``transports/websocket.py``) feeds each text frame to :meth:`Connection.handle`
and writes what the connection hands it. Requests of one connection are handled one after the
other, so responses leave in the order requests came in.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from codesphere.app.limits import TokenBucket
from codesphere.auth.tokens import Claims
from codesphere.core.positions import Encoding
from codesphere.protocol import codec
from codesphere.protocol.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RATE_LIMITED,
    SERVER_NOT_INITIALIZED,
    RpcError,
)
from codesphere.protocol.wsframe import frame_text

if TYPE_CHECKING:
    from codesphere.app.hub import Hub
    from codesphere.app.rooms import DocState, Member, RoomState

log = logging.getLogger("codesphere.connection")

#: Methods allowed before ``initialize``.
_BEFORE_INIT = frozenset({"initialize", "exit"})


class Transport(Protocol):
    """What a connection needs from the socket under it."""

    def write_frame(self, frame: bytes) -> None:
        """Write one ready-made frame now, without waiting."""

    def close(self, code: int, reason: str) -> None:
        """Close with a WebSocket close code; safe to call more than once."""


class Connection:
    """The server side of one client connection."""

    def __init__(self, hub: Hub, transport: Transport, peer: str = "") -> None:
        self.hub = hub
        self.transport = transport
        self.peer = peer
        self.initialized = False
        self.shut_down = False
        self.client_id = ""
        self.display_name = "guest"
        self.encoding: Encoding = "utf-16"
        self.room: RoomState | None = None
        self.member: Member | None = None
        #: Who the connection's token (from the upgrade's Authorization header or from
        #: ``initialize``) says it is; ``room/join`` decides what that admits it to.
        self.claims: Claims | None = None
        #: This connection's role in its room: its member's, or lower if it joined asking so.
        self.role = "viewer"
        self.open_docs: dict[str, DocState] = {}  # by document id
        limits = hub.limits
        self.bucket = TokenBucket(limits.requests_per_second, limits.request_burst, hub.clock())
        self.refusals = 0
        # Presence throttling: when this connection's presence was last sent, and the
        # pending flush if updates came faster than the limit.
        self.presence_sent_at = 0.0
        self.presence_doc: DocState | None = None
        self.presence_timer: Any = None

    # -- output ----------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Encode and send one message to this connection only."""
        self.transport.write_frame(frame_text(codec.dumps(message)))

    def notify(self, method: str, params: Any) -> None:
        """Send a notification to this connection only."""
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _reply_error(self, id_: Any, error: RpcError) -> None:
        self.send({"jsonrpc": "2.0", "id": id_, "error": error.to_json()})

    # -- input -----------------------------------------------------------------------------

    async def handle(self, data: str | bytes) -> None:
        """Handle one incoming frame; never raises."""
        try:
            message = codec.loads(data)
        except RpcError as exc:
            self._reply_error(None, exc)
            return
        if isinstance(message, list):
            self._reply_error(None, RpcError(INVALID_REQUEST, "batches are not supported"))
            return
        if not isinstance(message, dict):
            self._reply_error(None, RpcError(INVALID_REQUEST, "a message must be an object"))
            return
        id_ = message.get("id")
        is_request = "id" in message
        if is_request and (
            type(id_) not in (int, str)
            or (type(id_) is int and abs(id_) > 2**53)
            or (type(id_) is str and not codec.is_unicode(id_))
        ):
            self._reply_error(None, RpcError(INVALID_REQUEST, "'id' must be a string or integer"))
            return
        method = message.get("method")
        if message.get("jsonrpc") != "2.0" or not isinstance(method, str):
            if method is None and ("result" in message or "error" in message):
                return  # a response: the server sends no requests, so nothing waits for it
            if is_request:
                self._reply_error(id_, RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request"))
            return
        if not self._admit(id_ if is_request else None, is_request):
            return
        await self._dispatch(method, message.get("params"), id_, is_request)

    def _admit(self, id_: Any, is_request: bool) -> bool:
        """Rate-limit one message; close the connection on sustained flooding."""
        if self.bucket.take(self.hub.clock()):
            self.refusals = 0
            return True
        self.refusals += 1
        if self.refusals >= self.hub.limits.refusals_before_close:
            self.transport.close(1008, "too many requests")
        elif is_request:
            retry = int(self.bucket.retry_after() * 1000) + 1
            self._reply_error(
                id_, RpcError(RATE_LIMITED, "too many requests", {"retryAfterMs": retry})
            )
        return False

    async def _dispatch(self, method: str, params: Any, id_: Any, is_request: bool) -> None:
        handler = self.hub.methods.get(method)
        try:
            # protocol.md §2: before initialize and after shutdown, *any* other request
            # (an unknown one included) gets the lifecycle error.
            if not self.initialized and method not in _BEFORE_INIT:
                raise RpcError(SERVER_NOT_INITIALIZED, "send 'initialize' first")
            if self.shut_down and method != "exit":
                raise RpcError(INVALID_REQUEST, "the connection is shut down; send 'exit'")
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"unknown method {method!r}")
            result = await handler(self, params)
        except RpcError as exc:
            if is_request:
                self._reply_error(id_, exc)
            return
        except Exception:
            # Never the client's params in the log: they may hold anything.
            log.exception("internal error in %s", method)
            if is_request:
                self._reply_error(id_, RpcError(INTERNAL_ERROR, "internal server error"))
            return
        if is_request:
            self.send({"jsonrpc": "2.0", "id": id_, "result": result})

    async def closed(self) -> None:
        """The socket is gone: leave the room and forget this connection."""
        await self.hub.disconnect(self)
