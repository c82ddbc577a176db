"""JSON-RPC error codes of protocol v1 (protocol.md §9) and the exception that carries them.

A handler raises :class:`RpcError`; the connection turns it into an error response and stays
open. Core errors map to codes through :func:`from_sync_error`.
"""

from __future__ import annotations

from typing import Any

from codesphere.core import errors as core

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002

NOT_IN_ROOM = 1001
ROOM_NOT_FOUND = 1002
DOCUMENT_NOT_FOUND = 1003
ALREADY_EXISTS = 1004
FORBIDDEN = 1005
DOCUMENT_NOT_OPEN = 1006
UNAUTHORIZED = 1007
NOT_FOUND = 1008
INVALID_POSITION = 1010
INVALID_CHANGE = 1011
INVALID_REVISION = 1012
RESYNC_REQUIRED = 1013
RATE_LIMITED = 1020
TOO_LARGE = 1021


#: The name protocol.md gives each code.
ERROR_NAMES: dict[int, str] = {
    PARSE_ERROR: "ParseError",
    INVALID_REQUEST: "InvalidRequest",
    METHOD_NOT_FOUND: "MethodNotFound",
    INVALID_PARAMS: "InvalidParams",
    INTERNAL_ERROR: "InternalError",
    SERVER_NOT_INITIALIZED: "ServerNotInitialized",
    NOT_IN_ROOM: "NotInRoom",
    ROOM_NOT_FOUND: "RoomNotFound",
    DOCUMENT_NOT_FOUND: "DocumentNotFound",
    ALREADY_EXISTS: "AlreadyExists",
    FORBIDDEN: "Forbidden",
    DOCUMENT_NOT_OPEN: "DocumentNotOpen",
    INVALID_POSITION: "InvalidPosition",
    INVALID_CHANGE: "InvalidChange",
    INVALID_REVISION: "InvalidRevision",
    RESYNC_REQUIRED: "ResyncRequired",
    RATE_LIMITED: "RateLimited",
    TOO_LARGE: "TooLarge",
    UNAUTHORIZED: "Unauthorized",
    NOT_FOUND: "NotFound",
}


class RpcError(Exception):
    """An error response: ``code`` from this module, a message for people, optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The ``error`` member of a JSON-RPC response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    """Shorthand for the most common refusal."""
    return RpcError(INVALID_PARAMS, message)


_SYNC_CODES: list[tuple[type[core.SyncError], int]] = [
    (core.PositionError, INVALID_POSITION),
    (core.DocumentTooLarge, TOO_LARGE),
    (core.InvalidChange, INVALID_CHANGE),
    (core.RevisionError, INVALID_REVISION),
    (core.ResyncRequired, RESYNC_REQUIRED),
]


def from_sync_error(exc: core.SyncError) -> RpcError:
    """The error response for a refusal by the sync core."""
    for cls, code in _SYNC_CODES:
        if isinstance(exc, cls):
            return RpcError(code, str(exc))
    return RpcError(INVALID_PARAMS, str(exc))
