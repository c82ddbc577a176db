"""JSON encoding of protocol messages and checked reading of their params.

Everything a client sends passes through here before the app sees it: a value of the wrong
type or out of range becomes an ``InvalidParams`` error naming the field, never an exception
deeper in the server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

from codesphere.core.changes import ContentChange, LineSweep
from codesphere.core.operation import TextOperation
from codesphere.core.positions import Encoding, Position
from codesphere.protocol.errors import PARSE_ERROR, RpcError, invalid_params

MAX_DEPTH = 64
Json = Any


def dumps(message: Json) -> bytes:
    """Serialise one JSON-RPC message (UTF-8 bytes)."""
    return orjson.dumps(message)


def loads(data: str | bytes) -> Json:
    """Parse one frame.

    Raises:
        RpcError: ``ParseError`` for invalid JSON or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise RpcError(PARSE_ERROR, f"invalid JSON: {exc}") from None
        # Valid JSON whose strings escape a lone surrogate: parse it anyway, so that the
        # request gets its proper answer (the field holding it is refused by its reader).
        value = _loads_with_surrogates(data)
    # Only a frame with many brackets can nest deeply; counting them is cheap.
    brackets = data.count("[") + data.count("{") if isinstance(data, str) else MAX_DEPTH + 1
    if brackets > MAX_DEPTH and _too_deep(value):
        raise RpcError(PARSE_ERROR, f"JSON nests deeper than {MAX_DEPTH} levels")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads_with_surrogates(data: str | bytes) -> Json:
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RpcError(PARSE_ERROR, f"invalid JSON: {exc}") from None


def is_unicode(value: str) -> bool:
    """Whether ``value`` is Unicode text (no lone surrogates), as every stored string must be."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(value: Json) -> bool:
    stack: list[tuple[Json, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


# -- reading params --------------------------------------------------------------------------


def obj(params: Json, what: str = "params") -> dict[str, Any]:
    """``params`` as an object (absent params read as ``{}``)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise invalid_params(f"{what} must be an object")
    return params


def string(params: dict[str, Any], key: str, *, min_len: int = 0, max_len: int = 1 << 30) -> str:
    """A required string field."""
    value = params.get(key)
    if not isinstance(value, str):
        raise invalid_params(f"'{key}' must be a string")
    if not is_unicode(value):
        raise invalid_params(f"'{key}' contains a lone surrogate")
    if not min_len <= len(value) <= max_len:
        raise invalid_params(f"'{key}' must have {min_len} to {max_len} characters")
    return value


def opt_string(
    params: dict[str, Any], key: str, *, min_len: int = 0, max_len: int = 1 << 30
) -> str | None:
    """An optional string field."""
    if params.get(key) is None:
        return None
    return string(params, key, min_len=min_len, max_len=max_len)


def integer(params: dict[str, Any], key: str, *, low: int = 0, high: int = 2**53) -> int:
    """A required integer field within ``[low, high]`` (booleans are not integers)."""
    value = params.get(key)
    if type(value) is not int:
        raise invalid_params(f"'{key}' must be an integer")
    if not low <= value <= high:
        raise invalid_params(f"'{key}' must be between {low} and {high}")
    return value


def opt_integer(params: dict[str, Any], key: str, *, low: int = 0, high: int = 2**53) -> int | None:
    """An optional integer field."""
    if params.get(key) is None:
        return None
    return integer(params, key, low=low, high=high)


def position(value: Json, what: str) -> Position:
    """An LSP ``Position``."""
    if not isinstance(value, dict):
        raise invalid_params(f"{what} must be a Position object")
    line = value.get("line")
    character = value.get("character")
    if type(line) is not int or type(character) is not int or line < 0 or character < 0:
        raise invalid_params(f"{what} needs non-negative integer 'line' and 'character'")
    return line, character


def range_(value: Json, what: str) -> tuple[Position, Position]:
    """An LSP ``Range``."""
    if not isinstance(value, dict):
        raise invalid_params(f"{what} must be a Range object")
    return position(value.get("start"), f"{what}.start"), position(value.get("end"), f"{what}.end")


def content_changes(value: Json, *, max_changes: int = 10_000) -> list[ContentChange]:
    """LSP ``contentChanges``: a list of ``{range?, text}``."""
    if not isinstance(value, list):
        raise invalid_params("'contentChanges' must be an array")
    if len(value) > max_changes:
        raise invalid_params(f"at most {max_changes} content changes per message")
    out: list[ContentChange] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise invalid_params(f"contentChanges[{i}] must be an object with a 'text' string")
        rng = item.get("range")
        out.append(
            ContentChange(
                None if rng is None else range_(rng, f"contentChanges[{i}].range"), item["text"]
            )
        )
    return out


def selections(value: Json, *, max_selections: int = 100) -> list[tuple[Position, Position]]:
    """Presence selections: ``[{anchor, active}]``."""
    if not isinstance(value, list) or len(value) > max_selections:
        raise invalid_params(f"'selections' must be an array of at most {max_selections}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_params(f"selections[{i}] must be an object")
        out.append(
            (
                position(item.get("anchor"), f"selections[{i}].anchor"),
                position(item.get("active"), f"selections[{i}].active"),
            )
        )
    return out


_BAD_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def path(params: dict[str, Any], key: str = "path") -> str:
    """A workspace path: relative, ``/``-separated, no empty, ``.`` or ``..`` segment."""
    value = string(params, key, min_len=1, max_len=1024)
    if value.startswith("/") or _BAD_PATH_CHARS.search(value):
        raise invalid_params(
            f"'{key}' must be a relative path without '\\\\' or control characters"
        )
    if any(seg in ("", ".", "..") for seg in value.split("/")):
        raise invalid_params(f"'{key}' must not contain empty, '.' or '..' segments")
    return value


# -- writing ---------------------------------------------------------------------------------


def position_json(pos: Position) -> dict[str, int]:
    """A ``Position`` object."""
    return {"line": pos[0], "character": pos[1]}


def op_json_changes(op: TextOperation, base: str, encoding: Encoding) -> list[dict[str, Any]]:
    """``op_to_changes(op, base, encoding)`` as JSON values, built in one pass.

    An acknowledgement's catch-up for a client that types without pause lists every place the
    others typed since it last paused: no intermediate content changes are made for it.
    """
    sweep = LineSweep(base)
    out: list[dict[str, Any]] = []
    for offset, deleted, inserted in op.splices():
        line, character = sweep.position(offset, encoding)
        start = {"line": line, "character": character}
        if deleted:
            line, character = sweep.position(offset + len(deleted), encoding)
            end = {"line": line, "character": character}
        else:
            end = start
        out.append({"range": {"start": start, "end": end}, "text": inserted})
    out.reverse()  # from the end of the text to its start, as op_to_changes lists them
    return out


def op_changes_json(
    op: TextOperation, base: str, encodings: Iterable[Encoding]
) -> dict[Encoding, list[dict[str, Any]]]:
    """``contentChanges`` for ``op`` (which applies to ``base``) in each of ``encodings``.

    A broadcast needs them in every encoding its subscribers use. In an all-ASCII text (most
    code) a position is the same in all of them, so one list serves every encoding.
    """
    encs = list(encodings)
    if base.isascii():
        shared = op_json_changes(op, base, "utf-32")
        return dict.fromkeys(encs, shared)
    return {e: op_json_changes(op, base, e) for e in encs}


def selections_json(sels: list[tuple[Position, Position]]) -> list[dict[str, Any]]:
    """Presence selections as JSON values."""
    return [{"anchor": position_json(a), "active": position_json(b)} for a, b in sels]
