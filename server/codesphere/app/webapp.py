"""Serving the browser client (``web/``, once built) from the server's one port.

The page is ``index.html`` at ``/``; everything it loads lives under ``/assets/`` with a content
hash in its name, so it can be cached for good. Monaco makes those files large: the build writes
``.br`` and ``.gz`` copies beside them, and aiohttp's file response sends the one the browser
accepts. Without a built client, ``/`` says how to build one.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from codesphere import __version__

#: Where ``npm run build`` in ``web/`` puts the page, relative to this file in a source tree.
DEFAULT_WEB_DIR = Path(__file__).resolve().parents[3] / "web" / "dist"

#: Hashed names never change content: a year, and no revalidation.
IMMUTABLE = "public, max-age=31536000, immutable"

#: What the page may load and run: only its own files, from this server. Should anything a
#: member typed ever reach the page as markup, the browser still refuses to run it. Monaco
#: adds style elements as it goes (hence inline styles) and starts workers from /assets/.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ]
)


def web_dir() -> Path:
    """The built client: ``CODESPHERE_WEB_DIR`` or the source tree's ``web/dist``."""
    configured = os.environ.get("CODESPHERE_WEB_DIR")
    return Path(configured) if configured else DEFAULT_WEB_DIR


def add_web_client(app: web.Application, directory: Path | None = None) -> None:
    """Serve the page at ``/`` and its files at ``/assets/``."""
    root = directory if directory is not None else web_dir()
    index = root / "index.html"
    assets = (root / "assets").resolve()

    async def page(request: web.Request) -> web.StreamResponse:
        if not index.is_file():
            return web.Response(
                text=_NOT_BUILT.format(host=request.host), content_type="text/plain"
            )
        response = web.FileResponse(index)
        # The page names the current hashed files: always ask whether it changed.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (assets / name).resolve()
        if not path.is_relative_to(assets) or not path.is_file() or path.suffix in (".br", ".gz"):
            raise web.HTTPNotFound(text="no such file\n")
        response = web.FileResponse(path)
        response.headers["Cache-Control"] = IMMUTABLE
        return response

    app.router.add_get("/", page)
    app.router.add_get("/assets/{name:.+}", asset)


_NOT_BUILT = (
    f"CodeSphere {__version__} is running.\n"
    "The browser client is not built: run 'make run' (or 'npm ci && npm run build' in web/).\n"
    "Clients connect to ws://{host}/ws (the protocol is in protocol.md); the REST API is\n"
    "described at /openapi.json and browsable at /docs.\n"
)
