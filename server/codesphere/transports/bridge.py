"""``codesphere bridge``: the protocol over stdio, for editors without a WebSocket client.

Neovim's Lua has no WebSocket or TLS client, but it speaks JSON-RPC over a child process's
stdio with LSP's framing (``vim.lsp.rpc``). The bridge relays each framed message from stdin as
one text frame to the server's ``/ws``, and each frame from the server to stdout, framed. It
holds no state of its own: a restarted bridge is a reconnect, which the editor resumes as
protocol.md §6.5 says.

Framing (the LSP base protocol): ``Content-Length: <bytes>\\r\\n`` and optional other headers,
an empty line, then exactly that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from typing import BinaryIO

import websockets
from websockets.asyncio.client import ClientConnection

#: The most bytes one message may have; the server refuses more anyway (protocol.md §10).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024 + 1024


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


class FramingError(Exception):
    """The editor sent something that is not an LSP-framed message."""


async def read_message(reader: asyncio.StreamReader) -> bytes | None:
    """The next framed message's body, or None at a clean end of input."""
    length: int | None = None
    while True:
        line = await reader.readline()
        if not line:
            if length is None:
                return None
            raise FramingError("input ended inside a message's headers")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.decode("ascii", "replace").partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name):
            raise FramingError(f"not a header line: {line[:80]!r}")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise FramingError(f"bad Content-Length: {value.strip()[:40]!r}") from None
    if length is None:
        raise FramingError("a message without Content-Length")
    if not 0 <= length <= MAX_MESSAGE_BYTES:
        raise FramingError(f"Content-Length {length} is over the limit of {MAX_MESSAGE_BYTES}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise FramingError("input ended inside a message") from None


def frame(body: bytes) -> bytes:
    """``body`` with its LSP header."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def relay(url: str, stdin: asyncio.StreamReader, stdout: BinaryIO) -> int:
    """Relay until either side ends; the exit status (0: a clean end)."""
    try:
        ws = await websockets.connect(url, compression=None, max_size=MAX_MESSAGE_BYTES)
    except (OSError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        print(f"codesphere bridge: cannot connect to {url}: {exc}", file=sys.stderr)
        return 1
    async with ws:
        upward = asyncio.ensure_future(_editor_to_server(stdin, ws))
        downward = asyncio.ensure_future(_server_to_editor(ws, stdout))
        done, pending = await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        status = 0
        for task in done:
            status = max(status, task.result())
        return status


async def _editor_to_server(stdin: asyncio.StreamReader, ws: ClientConnection) -> int:
    while True:
        try:
            body = await read_message(stdin)
        except FramingError as exc:
            print(f"codesphere bridge: bad input from the editor: {exc}", file=sys.stderr)
            await ws.close(1002, "bad framing from the editor")
            return 2
        if body is None:  # the editor closed our stdin: say goodbye to the server
            await ws.close(1000, "editor closed")
            return 0
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            print("codesphere bridge: a message is not UTF-8", file=sys.stderr)
            await ws.close(1007, "not UTF-8")
            return 2
        try:
            await ws.send(text)
        except websockets.ConnectionClosed:
            return 0  # the other task reports why


async def _server_to_editor(ws: ClientConnection, stdout: BinaryIO) -> int:
    try:
        async for message in ws:
            data = message.encode("utf-8") if isinstance(message, str) else message
            stdout.write(frame(data))
            stdout.flush()
    except websockets.ConnectionClosed:
        pass
    except (BrokenPipeError, ValueError):  # the editor went away
        return 0
    code, reason = ws.close_code, ws.close_reason
    if code not in (None, 1000, 1001):
        print(f"codesphere bridge: the server closed the connection ({code} {reason})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


async def run_bridge(url: str) -> int:
    """The bridge on this process's stdin and stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await relay(url, reader, sys.stdout.buffer)
