"""Declaring REST operations once: aiohttp routes them, pydantic checks them, OpenAPI lists them.

An operation is an async function decorated with :meth:`Api.operation`, which names its method,
path, body, query and response models. :meth:`Api.register` adds every operation to an aiohttp
router behind a wrapper that authenticates the caller, validates the query and the body, and
turns the returned model into JSON; :meth:`Api.openapi` describes the same operations, so the
description cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from codesphere.api.models import Error
from codesphere.app.hub import Hub
from codesphere.auth.tokens import Claims
from codesphere.protocol.errors import (
    ALREADY_EXISTS,
    DOCUMENT_NOT_FOUND,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    NOT_FOUND,
    PARSE_ERROR,
    RATE_LIMITED,
    ROOM_NOT_FOUND,
    TOO_LARGE,
    UNAUTHORIZED,
    RpcError,
)

HUB = web.AppKey("rest_hub", Hub)

#: HTTP status for each protocol error code; any other code is a 400.
STATUS = {
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    ROOM_NOT_FOUND: 404,
    DOCUMENT_NOT_FOUND: 404,
    NOT_FOUND: 404,
    ALREADY_EXISTS: 409,
    TOO_LARGE: 413,
    RATE_LIMITED: 429,
    INTERNAL_ERROR: 500,
}

#: Bodies over this size are refused before they are read (413).
MAX_BODY_BYTES = 64 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


@dataclass
class Call:
    """One request, checked: who makes it, and its path parameters, query and body."""

    request: web.Request
    hub: Hub
    claims: Claims | None
    params: dict[str, str]
    query: Any
    body: Any

    def base_url(self) -> str:
        """``scheme://host`` as the client reached us, for links."""
        return f"{self.request.scheme}://{self.request.host}"


Handler = Callable[[Call], Awaitable[BaseModel | web.StreamResponse | None]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    handler: Handler
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    media_type: str
    errors: tuple[int, ...]


class Api:
    """A set of REST operations."""

    def __init__(self, title: str, description: str) -> None:
        self.title = title
        self.description = description
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        auth: bool = True,
        media_type: str = "application/json",
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Declare an operation (see the module docstring)."""

        def declare(handler: Handler) -> Handler:
            statuses = (400, 401, 403, 404) if auth else (400,)
            self.operations.append(
                Operation(
                    method, path, summary, tag, handler, body, query, response, status, auth,
                    media_type, tuple(sorted({*statuses, *errors})),
                )
            )  # fmt: skip
            return handler

        return declare

    # -- serving ---------------------------------------------------------------------------

    def register(self, app: web.Application, hub: Hub) -> None:
        """Route every operation on ``app``."""
        app[HUB] = hub
        for op in self.operations:
            app.router.add_route(op.method, op.path, _serve(op))

    # -- describing ------------------------------------------------------------------------

    def openapi(self, version: str) -> dict[str, Any]:
        """The OpenAPI 3.1 description of every operation."""
        inputs = {op.body for op in self.operations if op.body is not None}
        outputs = {op.response for op in self.operations if op.response is not None} | {Error}
        keys, top = models_json_schema(
            [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
            + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)],
            ref_template="#/components/schemas/{model}",
        )
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            entry: dict[str, Any] = {
                "summary": op.summary,
                "operationId": op.handler.__name__,
                "tags": [op.tag],
                "parameters": _parameters(op),
                "responses": {},
            }
            if op.handler.__doc__:
                entry["description"] = _dedent(op.handler.__doc__)
            if op.auth:
                entry["security"] = [{"bearer": []}]
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": keys[(op.body, "validation")]}},
                }
            ok: dict[str, Any] = {"description": "Success"}
            if op.response is not None:
                ok["content"] = {op.media_type: {"schema": keys[(op.response, "serialization")]}}
            elif op.media_type != "application/json":
                ok["content"] = {op.media_type: {"schema": {"type": "string", "format": "binary"}}}
            entry["responses"][str(op.status)] = ok
            error_schema = {"application/json": {"schema": keys[(Error, "serialization")]}}
            for status in op.errors:
                entry["responses"][str(status)] = {
                    "description": _ERROR_MEANING.get(status, "Error"),
                    "content": error_schema,
                }
            paths.setdefault(op.path, {})[op.method.lower()] = entry
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": version, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": top.get("$defs", {}),
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
            },
        }


_ERROR_MEANING = {
    400: "The request is malformed; the message says what to change",
    401: "No token, or an invalid one",
    403: "The token does not allow this",
    404: "No such room, document, invite or member",
    409: "It exists already",
    413: "Too large",
}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        properties = op.query.model_json_schema()["properties"]
        for name, field in op.query.model_fields.items():
            schema = dict(properties[name])
            description = schema.pop("description", None)
            parameter = {"name": name, "in": "query", "required": field.is_required()}
            if description:
                parameter["description"] = description
            parameter["schema"] = schema
            out.append(parameter)
    return out


def _dedent(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join(line.strip() for line in lines)


def _serve(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        hub = request.app[HUB]
        claims = _claims(request, hub) if op.auth else None
        query = _validate(op.query, dict(request.query), "query") if op.query else None
        body = None
        if op.body is not None:
            if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
                raise RpcError(TOO_LARGE, f"bodies are limited to {MAX_BODY_BYTES} bytes")
            raw = await request.read()
            try:
                data = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise RpcError(PARSE_ERROR, "the body is not valid JSON") from None
            body = _validate(op.body, data, "body")
        call = Call(request, hub, claims, dict(request.match_info), query, body)
        result = await op.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=op.status if op.status != 200 else 204)
        return web.Response(
            body=orjson.dumps(result.model_dump(mode="json")),
            status=op.status,
            content_type="application/json",
        )

    return serve


def _claims(request: web.Request, hub: Hub) -> Claims:
    header = request.headers.get("Authorization")
    if header is None:
        raise RpcError(UNAUTHORIZED, "send a token: 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RpcError(UNAUTHORIZED, "the Authorization header must be 'Bearer <token>'")
    return hub.access.verify(token.strip())


def _validate(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            f"{'.'.join(str(p) for p in e['loc']) or where}: {e['msg']}" for e in exc.errors()
        ]
        message = f"the {where} is not valid: " + "; ".join(details[:5])
        raise RpcError(INVALID_PARAMS, message, details) from None


def error_response(error: RpcError, names: dict[int, str]) -> web.Response:
    """The JSON body and status for a refused request."""
    detail: dict[str, Any] = {
        "code": error.code,
        "name": names.get(error.code, "Error"),
        "message": error.message,
    }
    if isinstance(error.data, list):
        detail["details"] = error.data
    status = STATUS.get(error.code, 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.Response(
        body=orjson.dumps({"error": detail}),
        status=status,
        content_type="application/json",
        headers=headers,
    )
