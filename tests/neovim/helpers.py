"""What the Neovim tests do with a Neovim running the plugin: join, open, read its state."""

from __future__ import annotations

from typing import Any

from codesphere.app.server import RunningServer
from tests.neovim.conftest import wait_for


def link(server: RunningServer, token: str, room: str) -> str:
    return f"{server.http_url}/#token={token}&room={room}"


def status(nvim: Any) -> dict[str, Any]:
    return nvim.exec_lua("return require('codesphere').status()")


def join(nvim: Any, server: RunningServer, token: str, room: str) -> dict[str, Any]:
    nvim.command(f"CodeSphereJoin {link(server, token, room)}")
    return wait_for(lambda: (s := status(nvim))["state"] in ("joined", "closed") and s, what="join")


def open_file(nvim: Any, path: str) -> int:
    nvim.command(f"CodeSphereOpen {path}")
    wait_for(lambda: path in status(nvim)["docs"], what=f"{path} open")
    buf = status(nvim)["docs"][path]["buf"]
    assert nvim.current.buffer.number == buf
    return int(buf)


def buffer_text(nvim: Any, buf: int) -> str:
    return nvim.exec_lua("return require('codesphere').buffer_text(...)", buf)


def settled(nvim: Any, path: str) -> bool:
    doc = status(nvim)["docs"].get(path)
    return bool(doc) and doc["pending"] == 0 and not doc["resyncing"]
