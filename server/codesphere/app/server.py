"""Assemble and run the server: storage, hub, and the HTTP + WebSocket application.

One aiohttp application serves ``/ws`` and plain HTTP routes on the same port, so the REST API
can be added beside the WebSocket without a second listener.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from codesphere.api import add_api
from codesphere.app.handlers import HANDLERS
from codesphere.app.hub import Hub
from codesphere.app.limits import Limits
from codesphere.app.webapp import add_web_client
from codesphere.auth.secret import load_secret
from codesphere.auth.tokens import TokenService
from codesphere.ordering.local import LocalSequencer
from codesphere.storage.sqlite import SqliteStorage
from codesphere.transports.websocket import HUB_KEY, ORIGINS_KEY, websocket_handler

DB_NAME = "codesphere.db"


def make_app(hub: Hub) -> web.Application:
    """The aiohttp application for ``hub``: ``/ws``, the REST API, its description and docs."""
    app = web.Application(client_max_size=hub.limits.max_message_bytes)
    app[HUB_KEY] = hub
    app[ORIGINS_KEY] = frozenset()
    app.router.add_get("/ws", websocket_handler)
    add_web_client(app)
    add_api(app, hub)
    return app


@dataclass
class RunningServer:
    """A started server; :meth:`close` stops it and closes storage."""

    hub: Hub
    runner: web.AppRunner
    storage: SqliteStorage
    host: str
    port: int

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        return f"ws://{self._netloc}/ws"

    @property
    def http_url(self) -> str:
        """The server's HTTP base URL."""
        return f"http://{self._netloc}"

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def close(self) -> None:
        """Close every connection (1001), stop listening, flush and close storage."""
        await self.hub.close()
        await self.runner.cleanup()
        await self.storage.close()


async def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: str | Path = "data",
    limits: Limits | None = None,
    *,
    secret: bytes | None = None,
    allowed_origins: Iterable[str] = (),
) -> RunningServer:
    """Open storage in ``data_dir`` and listen on ``host:port`` (0: any free port).

    Args:
        secret: the key tokens are signed with; by default ``JWT_SECRET`` from the
            environment or ``.env``, else one generated once and kept in ``data_dir``.
        allowed_origins: origins (``https://host:port``) whose pages may open ``/ws``
            besides the server's own.
    """
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if secret is None:
        secret, _ = load_secret(directory)
    storage = SqliteStorage(directory / DB_NAME)
    await storage.open()
    hub = Hub(storage, LocalSequencer(storage), TokenService(secret), limits)
    hub.methods.update(HANDLERS)
    app = make_app(hub)
    app[ORIGINS_KEY] = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    return RunningServer(hub, runner, storage, host, int(bound[1]))
