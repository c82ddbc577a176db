"""JSON-RPC 2.0 over one WebSocket: requests matched by id, notifications, ordered sending.

:class:`RpcConnection` owns one socket. A writer task sends queued frames strictly in the order
they were queued (so a caller can queue a message synchronously, right after changing its own
state, and know nothing overtakes it); a reader task answers pending requests by id and hands
notifications to a callback, in the order the server sent them. Reply callbacks run inside the
reader, before the next message is read, which is what the revision rule needs: an
acknowledgement must be applied before the ``remoteChange`` that follows it.

:class:`NotificationRouter` keeps per-method subscriptions and a bounded backlog of recent
notifications per method, so a caller (typically a test) can await the next one. It outlives
connections, so subscriptions survive a reconnect.

No exception raised by a callback ever stops the reader: it is logged and reading goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from codesphere.client.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    ConnectionLost,
    RpcError,
)

logger = logging.getLogger("codesphere.client")

#: The WebSocket frame size this client accepts (the server sends at most 4 MiB).
MAX_MESSAGE_BYTES = 8 * 2**20

#: Called in the reader with ``(result, None)`` or ``(None, error)`` when a reply arrives.
ReplyCallback = Callable[[Any, RpcError | None], None]
#: Called in the reader with ``(method, params)`` for every notification.
NotificationCallback = Callable[[str, Any], None]
#: A user subscription: called with a notification's params; may be a coroutine function.
Handler = Callable[[Any], object]

_T = TypeVar("_T")


def silence(future: asyncio.Future[_T]) -> asyncio.Future[_T]:
    """Mark ``future``'s exception as retrieved, for futures nobody may await."""

    def _consume(fut: asyncio.Future[_T]) -> None:
        if not fut.cancelled():
            fut.exception()

    future.add_done_callback(_consume)
    return future


class Signal:
    """Wakes every current waiter each time :meth:`notify` is called."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Wake all waiters."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Wait for the next :meth:`notify`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        """Wait until ``predicate()`` holds, re-checking it after every notification.

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self.wait()


@dataclass(frozen=True, slots=True)
class Call:
    """A queued request: ``sent`` resolves once it is on the wire, ``reply`` with its result.

    ``reply`` raises :class:`RpcError` for an error response and
    :class:`~codesphere.client.errors.ConnectionLost` when the connection closes first.
    """

    id: int
    method: str
    sent: asyncio.Future[None]
    reply: asyncio.Future[Any]


@dataclass(slots=True)
class _Pending:
    reply: asyncio.Future[Any]
    on_reply: ReplyCallback | None


@dataclass(slots=True)
class _Outgoing:
    data: bytes
    sent: asyncio.Future[None]


class RpcConnection:
    """One JSON-RPC session over an open WebSocket.

    Args:
        ws: the open client connection.
        on_notification: called in the reader for each notification, in arrival order.
        on_close: called once when the connection has closed, after pending requests failed.
        requests_per_second: the sustained rate at which frames are sent (the server refuses
            requests beyond its limit); ``None`` to send as fast as possible.
        burst: how many frames may be sent at once before the rate applies.
    """

    def __init__(
        self,
        ws: ClientConnection,
        on_notification: NotificationCallback,
        on_close: Callable[[RpcConnection], None] | None = None,
        *,
        requests_per_second: float | None = 180.0,
        burst: int = 200,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._ws = ws
        self._on_notification = on_notification
        self._on_close = on_close
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_signal = Signal()
        self._lost: ConnectionLost | None = None
        self._rate = requests_per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = loop.time()
        #: Resolves with the close code (``None`` if none was received) once the socket closed.
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._reader = asyncio.create_task(self._read_loop(), name="codesphere-rpc-reader")
        self._writer = asyncio.create_task(self._write_loop(), name="codesphere-rpc-writer")

    @classmethod
    async def open(
        cls,
        url: str,
        on_notification: NotificationCallback,
        on_close: Callable[[RpcConnection], None] | None = None,
        *,
        open_timeout: float | None = 10.0,
        **kwargs: Any,
    ) -> RpcConnection:
        """Open a WebSocket to ``url`` and start the session.

        Raises:
            OSError: the server cannot be reached.
            websockets.exceptions.InvalidHandshake: the server refused the WebSocket.
        """
        ws = await connect(
            url, compression=None, max_size=MAX_MESSAGE_BYTES, open_timeout=open_timeout
        )
        return cls(ws, on_notification, on_close, **kwargs)

    # -- state -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether messages can still be sent."""
        return self._lost is None and self._ws.state is State.OPEN

    def set_rate(self, requests_per_second: float | None, burst: int | None = None) -> None:
        """Change the sending rate (for example to the server's announced limit)."""
        self._rate = requests_per_second
        if burst is not None:
            self._burst = float(burst)
            self._tokens = min(self._tokens, self._burst)

    # -- sending -----------------------------------------------------------------------------

    def send_request(
        self, method: str, params: Any = None, on_reply: ReplyCallback | None = None
    ) -> Call:
        """Queue a request now; it is sent after everything queued before it.

        Args:
            method: the method name.
            params: the params (omitted from the message when ``None``).
            on_reply: called in the reader as soon as the reply arrives, before any later
                message is handled. Its exceptions are logged.

        Raises:
            ConnectionLost: the connection is closed.
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        reply: asyncio.Future[Any] = loop.create_future()
        if on_reply is not None:
            silence(reply)
        self._pending[request_id] = _Pending(reply, on_reply)
        sent = self._enqueue(orjson.dumps(message))
        return Call(request_id, method, sent, reply)

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Send a request and return its result.

        Raises:
            RpcError: the server answered with an error.
            ConnectionLost: the connection closed first.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        call = self.send_request(method, params)
        async with asyncio.timeout(timeout):
            return await call.reply

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification; returns once it is written to the socket.

        Raises:
            ConnectionLost: the connection is closed.
        """
        self._check_open()
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await asyncio.shield(self._enqueue(orjson.dumps(message)))

    def _check_open(self) -> None:
        if self._lost is not None:
            raise self._lost
        if self._ws.state is not State.OPEN:
            raise ConnectionLost(self._ws.close_code, self._ws.close_reason or "")

    def _enqueue(self, data: bytes) -> asyncio.Future[None]:
        sent: asyncio.Future[None] = silence(asyncio.get_running_loop().create_future())
        self._outbox.append(_Outgoing(data, sent))
        self._outbox_signal.notify()
        return sent

    async def _throttle(self) -> None:
        loop = asyncio.get_running_loop()
        while self._rate:
            now = loop.time()
            self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self._rate)

    async def _write_loop(self) -> None:
        try:
            while True:
                while not self._outbox:
                    await self._outbox_signal.wait()
                item = self._outbox[0]
                await self._throttle()
                try:
                    await self._ws.send(item.data, text=True)
                except ConnectionClosed:
                    return  # the reader sees the close and fails what is left
                self._outbox.popleft()
                if not item.sent.done():
                    item.sent.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("codesphere: writer failed; closing the connection")
            with contextlib.suppress(Exception):
                await self._ws.close(1011, "client writer failed")

    # -- receiving ---------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    logger.warning("codesphere: ignoring a binary frame from the server")
                    continue
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    logger.warning("codesphere: ignoring a frame that is not JSON: %.200r", raw)
                    continue
                try:
                    self._dispatch(message)
                except Exception:
                    logger.exception("codesphere: error while handling %.200r", raw)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("codesphere: reader failed")
            with contextlib.suppress(Exception):
                await self._ws.close(1011, "client reader failed")
        finally:
            self._finish()

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            logger.warning("codesphere: ignoring a message that is not an object: %.200r", message)
            return
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:
                # The protocol has no server-to-client requests; answer as JSON-RPC asks.
                error = {"code": METHOD_NOT_FOUND, "message": f"unknown method {method}"}
                reply = {"jsonrpc": "2.0", "id": message["id"], "error": error}
                if self._lost is None:
                    self._enqueue(orjson.dumps(reply))
                return
            self._on_notification(method, message.get("params"))
            return
        request_id = message.get("id")
        pending = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            logger.warning("codesphere: response to no pending request: %.200r", message)
            return
        result: Any = None
        error_obj: RpcError | None = None
        if "error" in message:
            error_obj = _parse_error(message["error"])
        else:
            result = message.get("result")
        if pending.on_reply is not None:
            try:
                pending.on_reply(result, error_obj)
            except Exception:
                logger.exception("codesphere: reply callback failed")
        if not pending.reply.done():
            if error_obj is not None:
                pending.reply.set_exception(error_obj)
            else:
                pending.reply.set_result(result)

    def _finish(self) -> None:
        if self._lost is not None:
            return
        self.close_code = self._ws.close_code
        self.close_reason = self._ws.close_reason or ""
        lost = ConnectionLost(self.close_code, self.close_reason)
        self._lost = lost
        self._writer.cancel()
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.reply.done():
                entry.reply.set_exception(lost)
        outbox, self._outbox = self._outbox, deque()
        for item in outbox:
            if not item.sent.done():
                item.sent.set_exception(lost)
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        if self._on_close is not None:
            try:
                self._on_close(self)
            except Exception:
                logger.exception("codesphere: close callback failed")

    # -- closing -----------------------------------------------------------------------------

    async def wait_closed(self, timeout: float | None = None) -> int | None:
        """Wait for the server to close the connection; returns the close code.

        Raises:
            TimeoutError: it is still open after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self.closed)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (if still open) and wait for the reader to finish."""
        with contextlib.suppress(Exception):
            await self._ws.close(code, reason)
        await asyncio.gather(self._reader, self._writer, return_exceptions=True)


def _parse_error(raw: Any) -> RpcError:
    if not isinstance(raw, dict):
        return RpcError(INTERNAL_ERROR, f"malformed error object: {raw!r:.200}")
    code = raw.get("code")
    message = raw.get("message")
    return RpcError(
        code if isinstance(code, int) else INTERNAL_ERROR,
        message if isinstance(message, str) else "",
        raw.get("data"),
    )


class NotificationRouter:
    """Per-method subscriptions and backlogs of notifications.

    Args:
        backlog: how many recent notifications are kept per method for
            :meth:`next_notification` (the oldest are dropped beyond it).
    """

    def __init__(self, backlog: int = 1024) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._backlog: dict[str, deque[Any]] = {}
        self._size = backlog
        self._arrived = Signal()
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, method: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(params)`` for every notification ``method`` (``"*"``: all methods).

        A coroutine function's coroutines are run as tasks. Exceptions are logged.

        Returns:
            A function that removes the subscription.
        """
        self._handlers.setdefault(method, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(method, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def dispatch(self, method: str, params: Any) -> None:
        """Deliver one notification to the subscribers and the backlog."""
        for handler in list(self._handlers.get(method, ())):
            self._call(handler, params, method)
        for handler in list(self._handlers.get("*", ())):
            self._call(handler, {"method": method, "params": params}, method)
        queue = self._backlog.get(method)
        if queue is None:
            queue = self._backlog[method] = deque(maxlen=self._size)
        queue.append(params)
        self._arrived.notify()

    def _call(self, handler: Handler, params: Any, method: str) -> None:
        try:
            outcome = handler(params)
            if inspect.isawaitable(outcome):
                self._spawn(outcome, method)
        except Exception:
            logger.exception("codesphere: handler for %s failed", method)

    def _spawn(self, awaitable: Awaitable[Any], method: str) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                logger.exception("codesphere: handler for %s failed", method)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def next_notification(
        self,
        method: str,
        timeout: float | None = 5.0,
        predicate: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Remove and return the oldest unconsumed ``method`` params (matching ``predicate``).

        Non-matching notifications stay in the backlog.

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds.
        """
        found: list[Any] = []

        def take() -> bool:
            queue = self._backlog.get(method)
            if not queue:
                return False
            for index, params in enumerate(queue):
                if predicate is None or predicate(params):
                    del queue[index]
                    found.append(params)
                    return True
            return False

        await self._arrived.wait_for(take, timeout)
        return found[0]

    def backlog(self, method: str) -> list[Any]:
        """The unconsumed notifications of ``method``, oldest first (not removed)."""
        return list(self._backlog.get(method, ()))

    def clear(self, method: str | None = None) -> None:
        """Forget the backlog of ``method`` (``None``: of every method)."""
        if method is None:
            self._backlog.clear()
        else:
            self._backlog.pop(method, None)
