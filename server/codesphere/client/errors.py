"""Errors a CodeSphere client raises, and the JSON-RPC error codes of protocol.md §9.

::

    ClientError
    ├── RpcError            the server answered a request with an error response
    ├── NotConnected        there is no open connection to send on
    │   └── ConnectionLost  the connection closed while a request awaited its answer
    ├── DocumentClosed      the document was closed (by the client, or deleted on the server)
    └── ResyncNeeded        the document must be re-opened before it can be edited again

Act on :attr:`RpcError.code`, never on the message: the message is for people.
"""

from __future__ import annotations

from typing import Any

# The codes are the server's own: one definition for both ends of the protocol.
from codesphere.protocol.errors import (
    ALREADY_EXISTS,
    DOCUMENT_NOT_FOUND,
    DOCUMENT_NOT_OPEN,
    ERROR_NAMES,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_CHANGE,
    INVALID_PARAMS,
    INVALID_POSITION,
    INVALID_REQUEST,
    INVALID_REVISION,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    NOT_IN_ROOM,
    PARSE_ERROR,
    RATE_LIMITED,
    RESYNC_REQUIRED,
    ROOM_NOT_FOUND,
    SERVER_NOT_INITIALIZED,
    TOO_LARGE,
    UNAUTHORIZED,
)

__all__ = [
    "ALREADY_EXISTS",
    "DOCUMENT_NOT_FOUND",
    "DOCUMENT_NOT_OPEN",
    "ERROR_NAMES",
    "FORBIDDEN",
    "INTERNAL_ERROR",
    "INVALID_CHANGE",
    "INVALID_PARAMS",
    "INVALID_POSITION",
    "INVALID_REQUEST",
    "INVALID_REVISION",
    "METHOD_NOT_FOUND",
    "NOT_FOUND",
    "NOT_IN_ROOM",
    "PARSE_ERROR",
    "RATE_LIMITED",
    "RESYNC_REQUIRED",
    "ROOM_NOT_FOUND",
    "SERVER_NOT_INITIALIZED",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "ClientError",
    "ConnectionLost",
    "DocumentClosed",
    "NotConnected",
    "ResyncNeeded",
    "RpcError",
]


class ClientError(Exception):
    """Base of every error raised by the CodeSphere client."""


class RpcError(ClientError):
    """An error response from the server.

    Attributes:
        code: the JSON-RPC error code (one of this module's constants, or another number).
        message: a human-readable explanation.
        data: optional structured details (for example ``{"retryAfterMs": 50}``).
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @property
    def name(self) -> str:
        """The protocol's name for :attr:`code`, or ``"Error<code>"`` for an unknown one."""
        return ERROR_NAMES.get(self.code, f"Error{self.code}")

    def __str__(self) -> str:
        return f"{self.name} ({self.code}): {self.message}"

    def __repr__(self) -> str:
        return f"RpcError({self.code!r}, {self.message!r}, {self.data!r})"


class NotConnected(ClientError, ConnectionError):
    """There is no open connection (never connected, closed, or lost)."""


class ConnectionLost(NotConnected):
    """The connection closed before a request was answered or a message was sent.

    Attributes:
        code: the WebSocket close code, if one was received.
        reason: the close reason, possibly empty.
    """

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed (code {code}){': ' + reason if reason else ''}")
        self.code = code
        self.reason = reason


class DocumentClosed(ClientError):
    """The document is no longer open on this client."""


class ResyncNeeded(ClientError):
    """The document's text may differ from the server's; re-open it (``resync()``) first."""
