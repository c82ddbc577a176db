"""The REST API on the server's one port: routes, the OpenAPI description and browsable docs.

``/openapi.json`` is generated from the same declarations that route and validate the requests
(:mod:`codesphere.api.spec`); ``/docs`` is Swagger UI, its files served from the
``swagger-ui-py`` package so that nothing is fetched from another site. Only the files are
used: the package's own page renderer would load a template engine into every server for one
page.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web

from codesphere import __version__
from codesphere.api.routes import api
from codesphere.api.spec import error_response
from codesphere.app.hub import Hub
from codesphere.protocol.errors import (
    ERROR_NAMES,
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    RpcError,
)

__all__ = ["add_api"]

log = logging.getLogger("codesphere.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_api(app: web.Application, hub: Hub) -> None:
    """Serve the REST API, ``/openapi.json`` and ``/docs`` on ``app``."""
    api.register(app, hub)
    described: list[bytes] = []  # built on first request: most servers are never asked

    async def openapi_json(request: web.Request) -> web.Response:
        if not described:
            described.append(orjson.dumps(api.openapi(__version__)))
        return web.Response(body=described[0], content_type="application/json")

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html")

    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/", docs)
    app.router.add_static("/docs/static", swagger_ui_files())
    app.middlewares.append(api_errors)


def swagger_ui_files() -> Path:
    """Where the ``swagger-ui-py`` package keeps Swagger UI's files (without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CodeSphere API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals as JSON with the protocol's codes; never a stack trace for bad input."""
    try:
        return await handler(request)
    except RpcError as exc:
        return error_response(exc, ERROR_NAMES)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = NOT_FOUND if exc.status == 404 else METHOD_NOT_FOUND
        error = RpcError(code, exc.reason or "no such route")
        response = error_response(error, ERROR_NAMES)
        response.set_status(exc.status)
        return response
    except Exception:
        # Never the request in the log: it may carry a token.
        log.exception("internal error in %s %s", request.method, request.match_info.route.name)
        return error_response(RpcError(INTERNAL_ERROR, "internal server error"), ERROR_NAMES)
