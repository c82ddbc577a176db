"""``codesphere serve`` as a child process, for tests that need the real command.

It is started exactly as an operator would start it, on 127.0.0.1 port 0; stdout is read line
by line (the printed address and owner link), stderr goes to a file (the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import timeout


def codesphere_executable() -> str:
    """The ``codesphere`` console script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "codesphere"
    if beside.exists():
        return str(beside)
    found = shutil.which("codesphere")
    assert found, "the codesphere console script is not installed"
    return found


@dataclass
class ServeProcess:
    """``codesphere serve`` in a child process: stdout kept line by line, stderr in a file."""

    process: asyncio.subprocess.Process
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = field(default=None, repr=False)
    _new_line: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @classmethod
    async def start(
        cls, data_dir: Path, stderr_path: Path, *args: str, env: dict[str, str] | None = None
    ) -> ServeProcess:
        """Start ``codesphere serve --host 127.0.0.1 --port 0 --data-dir DATA ARGS``."""
        environ = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        with stderr_path.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                codesphere_executable(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=environ,
                cwd=str(data_dir.parent),
            )
        server = cls(process, stderr_path)
        server._reader = asyncio.ensure_future(server._read())
        return server

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode("utf-8"))
            self._new_line.set()
        self._new_line.set()

    async def line(self, pattern: str, wait: float = 30) -> re.Match[str]:
        """The first stdout line matching ``pattern`` (waiting for it to be printed)."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout(wait)):
            while True:
                for text in self.lines:
                    if match := regex.search(text):
                        return match
                if self._reader is not None and self._reader.done():
                    raise AssertionError(
                        f"the server exited without printing {pattern!r}: "
                        f"{self.stderr_path.read_text()[-2000:]}"
                    )
                self._new_line.clear()
                await self._new_line.wait()

    async def url(self) -> str:
        """The WebSocket URL the server prints."""
        return (await self.line(r"Clients connect to (ws://\S+)"))[1]

    async def kill(self) -> None:
        """SIGKILL the process by its pid and reap it."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), timeout(10))
        assert self.process.returncode == -signal.SIGKILL
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout(5))

    async def stop(self) -> int:
        """SIGTERM the process (SIGKILL if it lingers), read the rest of stdout; its status."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout(15))
            except TimeoutError:
                os.kill(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, timeout(5))
        assert self.process.returncode is not None
        return self.process.returncode

    @property
    def stdout(self) -> str:
        """Everything printed on stdout so far."""
        return "".join(self.lines)
