"""Server-to-client WebSocket text frames (RFC 6455 §5.2), built once and written many times.

A server's frames are unmasked, so one message has the same bytes on every connection: fan-out
frames a message once and writes those bytes to each socket in one synchronous pass, the way
``websockets.broadcast()`` does, with no task and no coroutine per recipient. Compression is
never negotiated, so no per-connection state changes the bytes.
"""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81


def frame_text(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", _TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, n) + payload
