"""The CodeSphere client: the pure revision rule and an asyncio client of protocol v1."""

from codesphere.client.connection import CodeSphereClient
from codesphere.client.document import RemoteDocument
from codesphere.client.errors import (
    ClientError,
    ConnectionLost,
    DocumentClosed,
    NotConnected,
    ResyncNeeded,
    RpcError,
)
from codesphere.client.state import ClientDocument, OutOfSync, PendingEdit

__all__ = [
    "ClientDocument",
    "ClientError",
    "CodeSphereClient",
    "ConnectionLost",
    "DocumentClosed",
    "NotConnected",
    "OutOfSync",
    "PendingEdit",
    "RemoteDocument",
    "ResyncNeeded",
    "RpcError",
]
