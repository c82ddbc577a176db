"""What the Neovim tests do with a Neovim running the plugin: join, open, read its state."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from codesphere.app.server import RunningServer
from tests.neovim.conftest import wait_for
from tests.tokens import operator_token


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
    """Connected, every edit acknowledged, no re-open under way."""
    doc = status(nvim)["docs"].get(path)
    return (
        bool(doc)
        and doc["online"]
        and doc["pending"] == 0
        and not doc["resyncing"]
        and not doc["resuming"]
    )


def bridge_pids(nvim: Any) -> list[int]:
    """The running `codesphere bridge` children of the Neovim process."""
    parent = int(nvim.call("getpid"))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"bridge" in cmdline:
            found.append(int(entry.name))
    return found


def kill_bridge(nvim: Any) -> int:
    """SIGKILLs the plugin's bridge (the one child of Neovim running it); returns its PID."""
    pids = wait_for(lambda: bridge_pids(nvim), what="a running bridge")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def wait_reconnected(nvim: Any, killed: int, timeout: float = 15.0) -> None:
    """Waits until a new bridge replaced `killed` and every open document is resumed."""

    def back() -> bool:
        if not [pid for pid in bridge_pids(nvim) if pid != killed]:
            return False
        state = status(nvim)
        return state["state"] == "joined" and all(
            d["online"] and not d["resuming"] for d in state["docs"].values()
        )

    wait_for(back, timeout=timeout, what="reconnected")


def ada_editing(make_nvim: Any, server: RunningServer, room_id: str) -> tuple[Any, int]:
    """A Neovim of the operator "Ada", joined to `room_id`, editing a.txt (and its buffer)."""
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    return nvim, open_file(nvim, "a.txt")
