"""Every class of bad input gets its documented error or close code and changes nothing.

After each refusal the tests check that the document is exactly as before (text, revision and
checksum seen by another client), that the workspace and chat are unchanged, and that the
refused connection still answers ``$/ping``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from codesphere.app.server import RunningServer
from tests.conftest import timeout
from tests.rawclient import RawClient, insert, pos
from tests.server.support import change, connect, create_room, sha256

DOC = "doc.txt"
OTHER = "other.txt"
#: Line 0 is 9 UTF-16 units, 12 UTF-8 bytes, 8 code points; line 2 is empty.
TEXT = "héllo 😀!\nab\n"
OTHER_TEXT = "other\n"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002
NOT_IN_ROOM = 1001
ROOM_NOT_FOUND = 1002
DOCUMENT_NOT_FOUND = 1003
ALREADY_EXISTS = 1004
DOCUMENT_NOT_OPEN = 1006
INVALID_POSITION = 1010
INVALID_CHANGE = 1011
INVALID_REVISION = 1012
RESYNC_REQUIRED = 1013
RATE_LIMITED = 1020
TOO_LARGE = 1021


def frame(message: dict[str, Any]) -> str:
    """A JSON text frame."""
    return orjson.dumps(message).decode()


@dataclass
class Env:
    """A room with two documents; ``a`` (utf-16) and ``b`` (utf-8) have ``DOC`` open.

    ``watcher`` is a third connection that only looks: it re-opens the document to check it.
    """

    server: RunningServer
    room: str
    a: RawClient
    b: RawClient
    watcher: RawClient
    text: str = TEXT
    revision: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)

    async def unchanged(self, conn: RawClient | None = None) -> None:
        """The document, workspace and chat are as expected, and ``conn`` still answers."""
        opened = await self.watcher.call("textDocument/didOpen", {"path": DOC})
        assert (opened["text"], opened["revision"]) == (self.text, self.revision)
        checksum = await self.watcher.call("textDocument/checksum", {"path": DOC})
        assert checksum == {"revision": self.revision, "sha256": sha256(self.text)}
        files = (await self.watcher.call("workspace/files"))["files"]
        expected = [f | {"revision": self.revision} if f["path"] == DOC else f for f in self.files]
        assert files == expected
        history = await self.watcher.call("chat/history", {})
        assert history == {"messages": [], "hasMore": False}
        if conn is not None:
            assert await conn.call("$/ping") == {}

    async def edit(self, conn: RawClient, params: dict[str, Any]) -> dict[str, Any]:
        """A didChange that must succeed; the expected state follows it."""
        result: dict[str, Any] = await conn.call("textDocument/didChange", params)
        self.revision = result["revision"]
        return result

    async def close(self) -> None:
        for c in (self.a, self.b, self.watcher):
            await c.close()


@pytest.fixture
async def env(server: RunningServer) -> AsyncIterator[Env]:
    """The standard room of these tests."""
    a = await connect(server.url, "Ada", "utf-16")
    room = await create_room(a, {DOC: TEXT, OTHER: OTHER_TEXT})
    await a.call("room/join", {"roomId": room})
    assert (await a.call("textDocument/didOpen", {"path": DOC}))["text"] == TEXT
    b = await connect(server.url, "Ben", "utf-8")
    await b.call("room/join", {"roomId": room})
    await b.call("textDocument/didOpen", {"path": DOC})
    watcher = await connect(server.url, "Wes", "utf-32")
    await watcher.call("room/join", {"roomId": room})
    files = (await watcher.call("workspace/files"))["files"]
    assert [f["path"] for f in files] == [DOC, OTHER]
    e = Env(server, room, a, b, watcher, files=files)
    try:
        yield e
    finally:
        await e.close()


async def reply_to(conn: RawClient, data: str | bytes) -> dict[str, Any]:
    """Send one raw frame and return the next response (notifications go to the inbox)."""
    await conn.send_raw(data)
    while True:
        message = await conn.recv()
        if "method" not in message:
            return message
        conn.inbox.append(message)


def assert_error(reply: dict[str, Any], code: int, id_: Any) -> None:
    """``reply`` is a JSON-RPC error response with ``code`` for request ``id_``."""
    assert reply.get("jsonrpc") == "2.0", reply
    assert "result" not in reply, reply
    assert reply.get("id", "missing") == id_, reply
    assert reply["error"]["code"] == code, reply
    assert isinstance(reply["error"]["message"], str), reply


def good_edit(revision: int = 0, seq: int = 1) -> dict[str, Any]:
    """A valid edit of ``DOC`` for a utf-16 client at ``revision``."""
    return change(DOC, revision, seq, [insert(1, 2, "!")])


# -- framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "",
        "{",
        "not json",
        '{"jsonrpc": "2.0", "id": 1, "method": "$/ping"',
        "{'jsonrpc': '2.0'}",
        '{"jsonrpc": "2.0", "id": 1, "method": "$/ping",}',
        "NaN",
        "[1, 2",
        '"unterminated',
        "\x00",
        '{"jsonrpc": "2.0", "id": 1, "method": "$/ping"} {"jsonrpc": "2.0"}',
        '{"jsonrpc": "2.0", "id": 1, "method": "$/ping", "params": {"a": 01}}',
    ],
)
async def test_malformed_json_is_a_parse_error(env: Env, data: str) -> None:
    """A text frame that is not JSON is answered ParseError (-32700) with id null."""
    assert_error(await reply_to(env.a, data), PARSE_ERROR, None)
    await env.unchanged(env.a)


@pytest.mark.parametrize("data", ["42", '"x"', "null", "true", "3.5", "-1"])
async def test_json_that_is_not_an_object_is_an_invalid_request(env: Env, data: str) -> None:
    """A frame holding a JSON scalar is InvalidRequest (-32600) with id null."""
    assert_error(await reply_to(env.a, data), INVALID_REQUEST, None)
    await env.unchanged(env.a)


@pytest.mark.parametrize("batch", [[], ["ping"], ["edit"], ["ping", "edit"]])
async def test_a_batch_is_an_invalid_request_and_none_of_it_runs(
    env: Env, batch: list[str]
) -> None:
    """A JSON array is InvalidRequest (-32600); no request inside it is executed."""
    messages = {
        "ping": {"jsonrpc": "2.0", "id": 9001, "method": "$/ping"},
        "edit": {
            "jsonrpc": "2.0",
            "id": 9002,
            "method": "textDocument/didChange",
            "params": good_edit(),
        },
    }
    data = orjson.dumps([messages[m] for m in batch]).decode()
    assert_error(await reply_to(env.a, data), INVALID_REQUEST, None)
    await env.unchanged(env.a)
    assert not [m for m in env.a.inbox if m.get("id") in (9001, 9002)]


@pytest.mark.parametrize(
    "message",
    [
        {"id": 9001, "method": "$/ping"},
        {"jsonrpc": "1.0", "id": 9001, "method": "$/ping"},
        {"jsonrpc": 2.0, "id": 9001, "method": "$/ping"},
        {"jsonrpc": 2, "id": 9001, "method": "$/ping"},
        {"jsonrpc": None, "id": 9001, "method": "$/ping"},
        {"jsonrpc": "2.0", "id": 9001},
        {"jsonrpc": "2.0", "id": 9001, "method": 5},
        {"jsonrpc": "2.0", "id": 9001, "method": None},
        {"jsonrpc": "2.0", "id": 9001, "method": ["$/ping"]},
        {"jsonrpc": "1.0", "id": 9001, "method": "textDocument/didChange", "params": good_edit()},
        {"id": 9001, "method": "textDocument/didChange", "params": good_edit()},
    ],
)
async def test_missing_or_invalid_jsonrpc_member_is_an_invalid_request(
    env: Env, message: dict[str, Any]
) -> None:
    """Without ``"jsonrpc": "2.0"`` and a string method, a request is InvalidRequest, not run."""
    assert_error(await reply_to(env.a, frame(message)), INVALID_REQUEST, 9001)
    await env.unchanged(env.a)


@pytest.mark.parametrize("id_", [1.5, 1.0, 1e3, {}, {"a": 1}, [], [1], True, False, None, 2**60])
async def test_an_id_of_a_bad_type_is_an_invalid_request(env: Env, id_: Any) -> None:
    """An id that is not a string or a safe integer is InvalidRequest with id null; not run."""
    message = {"jsonrpc": "2.0", "id": id_, "method": "textDocument/didChange"}
    message["params"] = good_edit()
    assert_error(await reply_to(env.a, frame(message)), INVALID_REQUEST, None)
    await env.unchanged(env.a)


@pytest.mark.parametrize("id_", ["abc", "", 0, -7, 2**53])
async def test_string_and_integer_ids_are_echoed(env: Env, id_: Any) -> None:
    """Any string or integer id (within ±2**53) is accepted and echoed in the response."""
    reply = await reply_to(env.a, frame({"jsonrpc": "2.0", "id": id_, "method": "$/ping"}))
    assert reply == {"jsonrpc": "2.0", "id": id_, "result": {}}


@pytest.mark.parametrize(
    "name", ["no/such", "textdocument/didchange", "", "rpc.discover", "$/cancelRequest", "PING"]
)
async def test_unknown_method_is_method_not_found(env: Env, name: str) -> None:
    """An unknown method is MethodNotFound (-32601); as a notification it gets no answer."""
    reply = await reply_to(env.a, frame({"jsonrpc": "2.0", "id": 9001, "method": name}))
    assert_error(reply, METHOD_NOT_FOUND, 9001)
    await env.a.notify(name, {})
    await env.unchanged(env.a)
    assert not [m for m in env.a.inbox if "error" in m]


async def test_a_response_sent_to_the_server_is_ignored(env: Env) -> None:
    """The server sends no requests, so a response frame from a client is dropped silently."""
    await env.a.send_raw(frame({"jsonrpc": "2.0", "id": 5, "result": {}}))
    await env.a.send_raw(frame({"jsonrpc": "2.0", "id": 6, "error": {"code": 1, "message": "x"}}))
    await env.unchanged(env.a)
    assert not [m for m in env.a.inbox if "error" in m or "result" in m]


# -- params ----------------------------------------------------------------------------------


def replaced(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``base`` with ``key`` set to ``value`` (the sentinel ``MISSING`` removes it)."""
    out = dict(base)
    if value is MISSING:
        out.pop(key, None)
    else:
        out[key] = value
    return out


MISSING = object()
BAD_POSITIONS: list[Any] = [
    5,
    [0, 0],
    {},
    {"line": 0},
    {"character": 0},
    {"line": -1, "character": 0},
    {"line": 0, "character": -1},
    {"line": "0", "character": 0},
    {"line": 0, "character": 0.5},
    {"line": True, "character": 0},
    {"line": 0, "character": None},
]


def did_change_variants() -> list[Any]:
    base = good_edit()
    variants: list[Any] = [None, [], "x", 5, [base]]
    for value in (MISSING, None, 5, [], {"a": 1}, True, ""):
        variants.append(replaced(base, "path", value))
    for value in (MISSING, None, "0", -1, 0.5, True, [], {}, 2**53 + 1):
        variants.append(replaced(base, "revision", value))
    for value in ("1", -1, 1.5, True, [], {}, 2**53 + 1):
        variants.append(replaced(base, "seq", value))
    bad_changes: list[Any] = [
        MISSING,
        None,
        {},
        "x",
        5,
        [5],
        [None],
        [[]],
        [{}],
        [{"text": 5}],
        [{"text": None}],
        [{"text": ["a"]}],
        [{"range": 5, "text": "a"}],
        [{"range": [], "text": "a"}],
        [{"range": "0:0", "text": "a"}],
        [{"range": {"start": pos(0, 0)}, "text": "a"}],
        [{"range": {"end": pos(0, 0)}, "text": "a"}],
        [insert(0, 0, "ok"), {"text": 1}],
    ]
    for p in BAD_POSITIONS:
        bad_changes.append([{"range": {"start": p, "end": pos(0, 0)}, "text": "a"}])
        bad_changes.append([{"range": {"start": pos(0, 0), "end": p}, "text": "a"}])
    for value in bad_changes:
        variants.append(replaced(base, "contentChanges", value))
    return variants


def room_join_variants(room: str) -> list[Any]:
    base = {"roomId": room}
    variants: list[Any] = [None, [], "x", 5]
    for value in (MISSING, None, 5, "", "r" * 101, [], {}, True):
        variants.append(replaced(base, "roomId", value))
    for value in ("owner", "admin", "Editor", "", 5, True, [], {}):
        variants.append(replaced(base, "role", value))
    return variants


def create_file_variants() -> list[Any]:
    base = {"path": "new.txt", "text": "x"}
    variants: list[Any] = [None, [], "x", 5]
    for value in (MISSING, None, 5, [], {}, True):
        variants.append(replaced(base, "path", value))
    for value in (5, [], {}, True, ["x"]):
        variants.append(replaced(base, "text", value))
    return variants


def chat_send_variants() -> list[Any]:
    base = {"text": "hello"}
    variants: list[Any] = [None, [], "hello", 5]
    for value in (MISSING, None, 5, "", "x" * 8193, [], {}, True, ["hello"]):
        variants.append(replaced(base, "text", value))
    return variants


def presence_variants() -> list[Any]:
    base = {"path": DOC, "revision": 0, "selections": [{"anchor": pos(0, 0), "active": pos(0, 1)}]}
    variants: list[Any] = [[], "x", 5]
    for value in (5, [], {}, True, "", "../x"):
        variants.append(replaced(base, "path", value))
    for value in (MISSING, None, "0", -1, 1.5, True, [], 2**53 + 1):
        variants.append(replaced(base, "revision", value))
    bad_selections: list[Any] = [
        MISSING,
        None,
        "x",
        5,
        {},
        [5],
        [None],
        [[pos(0, 0), pos(0, 0)]],
        [{}],
        [{"anchor": pos(0, 0)}],
        [{"active": pos(0, 0)}],
        [{"anchor": pos(0, 0), "active": pos(0, 0)}] * 101,
    ]
    for p in BAD_POSITIONS:
        bad_selections.append([{"anchor": p, "active": pos(0, 0)}])
        bad_selections.append([{"anchor": pos(0, 0), "active": p}])
    for value in bad_selections:
        variants.append(replaced(base, "selections", value))
    return variants


async def test_wrong_did_change_params_are_invalid_params(env: Env) -> None:
    """Every malformed field of didChange is InvalidParams (-32602) and nothing is applied."""
    for params in did_change_variants():
        error = await env.a.error("textDocument/didChange", params)
        assert error["code"] == INVALID_PARAMS, (params, error)
    await env.unchanged(env.a)
    # A malformed request never reached the document, so the next good edit is accepted.
    await env.edit(env.a, good_edit())
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.a)


async def test_wrong_room_join_params_are_invalid_params(env: Env) -> None:
    """Every malformed field of room/join is InvalidParams and the caller stays in its room."""
    for params in room_join_variants(env.room):
        error = await env.a.error("room/join", params)
        assert error["code"] == INVALID_PARAMS, (params, error)
    await env.unchanged(env.a)
    await env.edit(env.a, good_edit())  # still in the room, document still open
    assert not [m for m in env.b.inbox if m.get("method") == "room/memberLeft"]


async def test_wrong_create_file_params_are_invalid_params(env: Env) -> None:
    """Every malformed field of workspace/createFile is InvalidParams; no file appears."""
    for params in create_file_variants():
        error = await env.a.error("workspace/createFile", params)
        assert error["code"] == INVALID_PARAMS, (params, error)
    await env.unchanged(env.a)


async def test_wrong_chat_send_params_are_invalid_params(env: Env) -> None:
    """A missing, non-string, empty or over-8192-character chat text is InvalidParams."""
    for params in chat_send_variants():
        error = await env.a.error("chat/send", params)
        assert error["code"] == INVALID_PARAMS, (str(params)[:80], error)
    await env.unchanged(env.a)
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "5"}, {"before": 0}, {"before": "x"}):
        error = await env.a.error("chat/history", params)
        assert error["code"] == INVALID_PARAMS, (params, error)
    # Exactly 8192 characters is allowed.
    message = (await env.a.call("chat/send", {"text": "y" * 8192}))["message"]
    assert message["text"] == "y" * 8192
    # The first chat/message another member receives is that one: nothing refused went out.
    seen = await env.b.notification("chat/message")
    assert seen["params"]["message"] == message


async def test_wrong_presence_params_are_invalid_params(env: Env) -> None:
    """Every malformed field of presence/update is InvalidParams; nobody sees a presence."""
    for params in presence_variants():
        error = await env.a.error("presence/update", params)
        assert error["code"] == INVALID_PARAMS, (str(params)[:100], error)
    await env.unchanged(env.a)
    good = {"path": DOC, "revision": 0, "selections": [{"anchor": pos(0, 1), "active": pos(0, 2)}]}
    assert await env.a.call("presence/update", good) is None
    seen = await env.b.notification("presence/didChange")
    # Ben (utf-8) sees Ada's first valid selection: after "h" and after "hé".
    assert seen["params"]["selections"] == [{"anchor": pos(0, 1), "active": pos(0, 3)}]


async def test_wrong_initialize_params_are_invalid_params(server: RunningServer) -> None:
    """A malformed initialize is InvalidParams and leaves the connection uninitialized."""
    base: dict[str, Any] = {
        "clientInfo": {"name": "t"},
        "capabilities": {"general": {"positionEncodings": ["utf-8"]}},
        "clientId": "good-id",
        "displayName": "Ann",
    }
    variants: list[Any] = [[], "x", 5]
    for value in (5, "x", [], {"name": 5}, {"name": ""}, {"name": "n" * 201}):
        variants.append(replaced(base, "clientInfo", value))
    for value in (
        5,
        "x",
        {"general": 5},
        {"general": {"positionEncodings": "utf-8"}},
        {"general": {"positionEncodings": [1]}},
        {"general": {"positionEncodings": {"utf-8": True}}},
    ):
        variants.append(replaced(base, "capabilities", value))
    for value in ("", "has space", "x" * 65, 5, "é", "a/b", [], True):
        variants.append(replaced(base, "clientId", value))
    for value in ("", "n" * 65, 5, [], True):
        variants.append(replaced(base, "displayName", value))
    c = await RawClient.connect(server.url)
    for params in variants:
        error = await c.error("initialize", params)
        assert error["code"] == INVALID_PARAMS, (params, error)
        assert (await c.error("$/ping"))["code"] == SERVER_NOT_INITIALIZED
    result = await c.call("initialize", base)
    assert result["clientId"] == "good-id"
    assert result["capabilities"]["positionEncoding"] == "utf-8"
    assert await c.call("$/ping") == {}
    await c.close()


async def test_unsupported_encodings_fall_back_to_utf16(server: RunningServer) -> None:
    """Encodings the server does not know are skipped; none left means utf-16, as in LSP."""
    for offered, chosen in (
        (["latin-1", "utf-32", "utf-8"], "utf-32"),
        (["latin-1"], "utf-16"),
        ([], "utf-16"),
    ):
        c = await RawClient.connect(server.url)
        params = {"capabilities": {"general": {"positionEncodings": offered}}}
        result = await c.call("initialize", params)
        assert result["capabilities"]["positionEncoding"] == chosen
        await c.close()


# -- paths -----------------------------------------------------------------------------------

BAD_PATHS = [
    "",
    "../x",
    "..",
    ".",
    "a/../b",
    "a/./b",
    "./a",
    "/abs",
    "/",
    "a//b",
    "a/",
    "a\\b",
    "\\a",
    "a\x00b",
    "a\nb",
    "a\tb",
    "a\x1fb",
    "a\x7fb",
    "x" * 1025,
    "y" * 2000,
]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=[repr(p)[:20] for p in BAD_PATHS])
async def test_bad_paths_are_invalid_params(env: Env, bad: str) -> None:
    """A path with an empty, '.' or '..' segment, a leading '/', '\\', a control character or
    over 1024 characters is InvalidParams wherever a path is taken."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("workspace/createFile", {"path": bad, "text": "x"}),
        ("workspace/renameFile", {"path": OTHER, "newPath": bad}),
        ("workspace/renameFile", {"path": bad, "newPath": "fine.txt"}),
        ("workspace/deleteFile", {"path": bad}),
        ("textDocument/didOpen", {"path": bad}),
        ("textDocument/checksum", {"path": bad}),
        ("textDocument/didChange", change(bad, 0, 1, [insert(0, 0, "x")])),
        ("room/create", {"name": "r", "files": [{"path": bad, "text": ""}]}),
    ]
    for name, params in calls:
        error = await env.a.error(name, params)
        assert error["code"] == INVALID_PARAMS, (name, error)
    await env.unchanged(env.a)


async def test_longest_allowed_path_is_accepted(env: Env) -> None:
    """A path of exactly 1024 characters (with nested segments) is a valid file name."""
    path = "d/" + "z" * 1022
    result = await env.a.call("workspace/createFile", {"path": path, "text": "t"})
    assert result == {"path": path, "revision": 0, "eol": "\n"}
    assert (await env.a.call("textDocument/didOpen", {"path": path}))["text"] == "t"


# -- nesting ---------------------------------------------------------------------------------


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "data",
    [
        nested_arrays(1000),
        '{"a":' * 1000 + "1" + "}" * 1000,
        nested_arrays(100_000),
        "[" * 200_000,
        '{"jsonrpc":"2.0","id":9001,"method":"$/ping","params":' + nested_arrays(1000) + "}",
        '{"jsonrpc":"2.0","id":9001,"method":"$/ping","params":' + nested_arrays(64) + "}",
    ],
    ids=["arrays-1000", "objects-1000", "arrays-100000", "unclosed-200000", "params-1000", "65"],
)
async def test_deep_nesting_is_a_parse_error(env: Env, data: str) -> None:
    """JSON nested deeper than 64 levels is ParseError, whatever the depth; nothing escapes."""
    assert_error(await reply_to(env.a, data), PARSE_ERROR, None)
    await env.unchanged(env.a)
    assert not [m for m in env.a.inbox if m.get("id") == 9001]


async def test_nesting_of_exactly_64_levels_is_accepted(env: Env) -> None:
    """A message whose deepest value is at level 64 (the message object is level 1) is fine."""
    data = '{"jsonrpc":"2.0","id":9001,"method":"$/ping","params":' + nested_arrays(63) + "}"
    assert await reply_to(env.a, data) == {"jsonrpc": "2.0", "id": 9001, "result": {}}


# -- lifecycle -------------------------------------------------------------------------------


async def test_requests_before_initialize_are_server_not_initialized(env: Env) -> None:
    """Any request before initialize, known method or not, is ServerNotInitialized (-32002)."""
    c = await RawClient.connect(env.server.url)
    for name, params in [
        ("$/ping", None),
        ("shutdown", None),
        ("room/create", {"name": "r"}),
        ("room/join", {"roomId": env.room}),
        ("workspace/files", None),
        ("textDocument/didOpen", {"path": DOC}),
        ("textDocument/didChange", good_edit()),
        ("chat/send", {"text": "hi"}),
        ("no/such/method", None),
    ]:
        error = await c.error(name, params)
        assert error["code"] == SERVER_NOT_INITIALIZED, (name, error)
    await c.notify("initialized", {})
    await c.notify("textDocument/didChange", good_edit())
    await env.unchanged()
    await c.call("initialize", {})
    assert await c.call("$/ping") == {}
    assert not [m for m in c.inbox if "error" in m]
    await c.close()


async def test_initialize_twice_is_an_invalid_request(env: Env) -> None:
    """A second initialize is InvalidRequest and changes neither the clientId nor the encoding."""
    c = await connect(env.server.url, "Cy", "utf-8", client_id="first-id")
    again = {
        "capabilities": {"general": {"positionEncodings": ["utf-16"]}},
        "clientId": "second-id",
    }
    assert (await c.error("initialize", again))["code"] == INVALID_REQUEST
    joined = await c.call("room/join", {"roomId": env.room})
    assert joined["you"]["memberId"] == "first-id"
    await c.call("textDocument/didOpen", {"path": DOC})
    # Byte 11 of line 0 is between 😀 and "!" in utf-8; in utf-16 it would be past the end.
    await env.edit(c, change(DOC, 0, 1, [insert(0, 11, "+")]))
    env.text = "héllo 😀+!\nab\n"
    await env.unchanged(c)
    await c.close()


async def test_after_shutdown_everything_but_exit_is_an_invalid_request(env: Env) -> None:
    """After shutdown every request is InvalidRequest; exit closes with 1000; others go on."""
    assert await env.a.call("shutdown") is None
    left = await env.b.notification("room/memberLeft")
    assert left["params"]["memberId"]
    for name, params in [
        ("$/ping", None),
        ("shutdown", None),
        ("initialize", {}),
        ("room/join", {"roomId": env.room}),
        ("textDocument/didChange", good_edit()),
        ("no/such/method", None),
    ]:
        error = await env.a.error(name, params)
        assert error["code"] == INVALID_REQUEST, (name, error)
    await env.unchanged()
    await env.a.notify("exit")
    assert await env.a.wait_closed() == 1000
    await env.edit(env.b, change(DOC, 0, 1, [insert(2, 0, "end")]))
    env.text = TEXT + "end"
    await env.unchanged(env.b)


async def test_exit_before_initialize_closes_with_1000(server: RunningServer) -> None:
    """exit is allowed before initialize and closes only that connection, with 1000."""
    c = await RawClient.connect(server.url)
    await c.notify("exit")
    assert await c.wait_closed() == 1000
    other = await connect(server.url)
    assert await other.call("$/ping") == {}
    await other.close()


# -- room and document errors ----------------------------------------------------------------


async def test_methods_that_need_a_room_are_not_in_room(env: Env) -> None:
    """Before room/join (and after room/leave) room methods are NotInRoom (1001)."""
    c = await connect(env.server.url, "Cy")
    calls: list[tuple[str, Any]] = [
        ("room/leave", None),
        ("workspace/files", None),
        ("workspace/createFile", {"path": "n.txt"}),
        ("workspace/renameFile", {"path": DOC, "newPath": "n.txt"}),
        ("workspace/deleteFile", {"path": DOC}),
        ("textDocument/didOpen", {"path": DOC}),
        ("textDocument/checksum", {"path": DOC}),
        ("textDocument/didChange", good_edit()),
        ("presence/update", {"path": DOC, "revision": 0, "selections": []}),
        ("presence/update", {"path": None}),
        ("chat/send", {"text": "hi"}),
        ("chat/history", {}),
    ]
    for name, params in calls:
        assert (await c.error(name, params))["code"] == NOT_IN_ROOM, name
    await env.unchanged(c)
    assert await env.a.call("room/leave") is None
    for name, params in calls:
        assert (await env.a.error(name, params))["code"] == NOT_IN_ROOM, name
    await env.unchanged(env.a)
    await c.close()


async def test_unknown_room_is_room_not_found_and_keeps_the_current_room(env: Env) -> None:
    """Joining a room that does not exist is RoomNotFound (1002); the caller stays where it was."""
    for room_id in ("r-doesnotexist", "x", env.room + "x", env.room.upper()):
        assert (await env.a.error("room/join", {"roomId": room_id}))["code"] == ROOM_NOT_FOUND
    await env.unchanged(env.a)
    await env.edit(env.a, good_edit())
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.a)
    c = await connect(env.server.url)
    assert (await c.error("room/join", {"roomId": "r-nope"}))["code"] == ROOM_NOT_FOUND
    assert (await c.error("workspace/files"))["code"] == NOT_IN_ROOM
    await c.close()


async def test_unknown_document_is_document_not_found(env: Env) -> None:
    """Naming a path that is not in the room is DocumentNotFound (1003) for every method."""
    missing = "missing.txt"
    for name, params in [
        ("textDocument/didOpen", {"path": missing}),
        ("textDocument/didOpen", {"path": "DOC.TXT"}),
        ("textDocument/didChange", change(missing, 0, 1, [insert(0, 0, "x")])),
        ("textDocument/checksum", {"path": missing}),
        ("presence/update", {"path": missing, "revision": 0, "selections": []}),
        ("workspace/renameFile", {"path": missing, "newPath": "n.txt"}),
        ("workspace/deleteFile", {"path": missing}),
    ]:
        assert (await env.a.error(name, params))["code"] == DOCUMENT_NOT_FOUND, name
    await env.unchanged(env.a)


async def test_existing_path_is_already_exists(env: Env) -> None:
    """Creating or renaming onto a taken path is AlreadyExists (1004); both files unchanged."""
    error = await env.a.error("workspace/createFile", {"path": DOC, "text": "replaced"})
    assert error["code"] == ALREADY_EXISTS
    error = await env.a.error("workspace/renameFile", {"path": OTHER, "newPath": DOC})
    assert error["code"] == ALREADY_EXISTS
    files = [{"path": "same", "text": "1"}, {"path": "same", "text": "2"}]
    error = await env.a.error("room/create", {"name": "dup", "files": files})
    assert error["code"] == ALREADY_EXISTS
    await env.unchanged(env.a)
    await env.watcher.call("textDocument/didOpen", {"path": OTHER})
    other = await env.watcher.call("textDocument/checksum", {"path": OTHER})
    assert other == {"revision": 0, "sha256": sha256(OTHER_TEXT)}
    await env.a.call("workspace/createFile", {"path": "new.txt", "text": "first"})
    error = await env.a.error("workspace/createFile", {"path": "new.txt", "text": "second"})
    assert error["code"] == ALREADY_EXISTS
    assert (await env.a.call("textDocument/didOpen", {"path": "new.txt"}))["text"] == "first"


async def test_methods_on_an_unopened_document_are_document_not_open(env: Env) -> None:
    """didChange, checksum and presence need didOpen first (DocumentNotOpen, 1006), also after
    didClose."""
    calls: list[tuple[str, Any]] = [
        ("textDocument/didChange", good_edit()),
        ("textDocument/checksum", {"path": DOC}),
        ("presence/update", {"path": DOC, "revision": 0, "selections": []}),
    ]
    for name, params in calls:
        error = await env.watcher.error(name, {**params, "path": OTHER})
        assert error["code"] == DOCUMENT_NOT_OPEN, name
    await env.a.notify("textDocument/didClose", {"path": DOC})
    for name, params in calls:
        assert (await env.a.error(name, params))["code"] == DOCUMENT_NOT_OPEN, name
    await env.unchanged(env.a)


# -- positions, text and revisions -----------------------------------------------------------


async def assert_resync_until_reopen(
    env: Env, conn: RawClient, encoding_edit: dict[str, Any]
) -> None:
    """After a refused edit: edits are ResyncRequired (1013) until a re-open, then work again."""
    for _ in range(2):
        error = await conn.error("textDocument/didChange", encoding_edit)
        assert error["code"] == RESYNC_REQUIRED, error
        await env.unchanged(conn)
    opened = await conn.call("textDocument/didOpen", {"path": DOC})
    assert (opened["text"], opened["revision"]) == (env.text, env.revision)
    edit = dict(encoding_edit, revision=env.revision)
    result = await env.edit(conn, edit)
    assert result["catchUp"] == []
    env.text = env.text.replace("\nab\n", "\nab!\n")
    await env.unchanged(conn)


POSITION_CASES = [
    # (encoding, changes) — each names a position that does not exist in TEXT
    ("utf-16", [insert(3, 0, "x")]),  # line past the end (TEXT has lines 0..2)
    ("utf-16", [insert(9, 0, "x")]),
    ("utf-16", [insert(1, 3, "x")]),  # character past the end of "ab": LSP would clamp
    ("utf-16", [insert(1, 1000, "x")]),
    ("utf-16", [insert(2, 1, "x")]),  # on the empty last line
    ("utf-16", [insert(0, 10, "x")]),  # line 0 is 9 units
    ("utf-16", [insert(0, 7, "x")]),  # between the surrogates of 😀
    ("utf-16", [{"range": {"start": pos(0, 0), "end": pos(0, 7)}, "text": "x"}]),
    ("utf-8", [insert(0, 2, "x")]),  # inside é
    ("utf-8", [insert(0, 8, "x")]),  # inside 😀
    ("utf-8", [insert(0, 10, "x")]),
    ("utf-8", [insert(0, 13, "x")]),
    ("utf-32", [insert(0, 9, "x")]),
    ("utf-32", [insert(1, 3, "x")]),
    ("utf-16", [insert(0, 0, "ok"), insert(3, 0, "x")]),  # the second of two changes
]


@pytest.mark.parametrize(("encoding", "changes"), POSITION_CASES)
async def test_out_of_range_position_is_invalid_position_then_resync(
    env: Env, encoding: str, changes: list[dict[str, Any]]
) -> None:
    """A position past a line or the text, or inside a character, is InvalidPosition (1010);
    the client's next edits are ResyncRequired (1013) until it re-opens."""
    conn = await connect(env.server.url, "Cy", encoding)
    await conn.call("room/join", {"roomId": env.room})
    await conn.call("textDocument/didOpen", {"path": DOC})
    error = await conn.error("textDocument/didChange", change(DOC, 0, 1, changes))
    assert error["code"] == INVALID_POSITION, error
    await env.unchanged(conn)
    good = change(DOC, 0, 2, [insert(1, 2, "!")])
    await assert_resync_until_reopen(env, conn, good)
    await conn.close()


async def test_changes_apply_in_order_so_a_later_range_may_use_new_lines(env: Env) -> None:
    """Each change's range refers to the text the previous changes left (LSP semantics)."""
    # Line 4 exists only once the first change has added three lines.
    changes = [insert(0, 0, "\n\n\n"), insert(4, 1, "x")]
    result = await env.edit(env.a, change(DOC, 0, 1, changes))
    assert result == {"revision": 1, "catchUp": []}
    env.text = "\n\n\n" + "héllo 😀!\nax" + "b\n"
    await env.unchanged(env.a)


BAD_TEXT_CASES = [
    [insert(0, 0, "a\rb")],
    [insert(0, 0, "a\r\nb")],
    [insert(0, 0, "\r")],
    [{"text": "whole\r\ndocument\r\n"}],
    [insert(0, 0, "fine"), insert(0, 0, "\r")],
    [{"range": {"start": pos(0, 3), "end": pos(0, 1)}, "text": "z"}],  # reversed
    [{"range": {"start": pos(1, 0), "end": pos(0, 2)}, "text": "z"}],  # reversed over lines
    [{"range": {"start": pos(1, 1), "end": pos(1, 0)}, "text": ""}],
]


@pytest.mark.parametrize("changes", BAD_TEXT_CASES)
async def test_carriage_return_or_reversed_range_is_invalid_change_then_resync(
    env: Env, changes: list[dict[str, Any]]
) -> None:
    """``\\r`` in text or a range ending before it starts is InvalidChange (1011); the next
    edits are ResyncRequired (1013) until a re-open."""
    error = await env.a.error("textDocument/didChange", change(DOC, 0, 1, changes))
    assert error["code"] == INVALID_CHANGE, error
    await env.unchanged(env.a)
    await assert_resync_until_reopen(env, env.a, good_edit(0, 2))


LONE_SURROGATE_EDIT = (
    '{"jsonrpc":"2.0","id":9001,"method":"textDocument/didChange","params":{"path":"doc.txt",'
    '"revision":0,"seq":1,"contentChanges":[{"range":{"start":{"line":0,"character":0},'
    '"end":{"line":0,"character":0}},"text":"a\\ud800b"}]}}'
)


async def test_lone_surrogate_in_text_is_invalid_change(env: Env) -> None:
    """A lone surrogate (the JSON escape \\ud800) in edit text is InvalidChange (1011) for that
    request, and the text is unchanged."""
    reply = await reply_to(env.a, LONE_SURROGATE_EDIT)
    await env.unchanged(env.a)
    assert_error(reply, INVALID_CHANGE, 9001)


def is_valid(text: str) -> bool:
    """Whether ``text`` is Unicode (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def test_lone_surrogate_in_other_strings_is_invalid_params(env: Env) -> None:
    """A lone surrogate in a chat message or a path is InvalidParams (-32602) for that request,
    and one in a request id is answered with id null; nothing is stored."""
    chat = '{"jsonrpc":"2.0","id":9002,"method":"chat/send","params":{"text":"hi \\udc00"}}'
    assert_error(await reply_to(env.a, chat), INVALID_PARAMS, 9002)
    create = (
        '{"jsonrpc":"2.0","id":9003,"method":"workspace/createFile",'
        '"params":{"path":"x\\ud800.txt"}}'
    )
    assert_error(await reply_to(env.a, create), INVALID_PARAMS, 9003)
    bad_id = '{"jsonrpc":"2.0","id":"\\ud800","method":"$/ping"}'
    assert_error(await reply_to(env.a, bad_id), INVALID_REQUEST, None)
    history = await env.a.call("chat/history", {})
    assert history["messages"] == []
    files = await env.a.call("workspace/files", {})
    assert all(is_valid(f["path"]) for f in files["files"])
    await env.unchanged(env.a)


async def test_lone_surrogate_never_reaches_the_document(env: Env) -> None:
    """However it is refused, an edit with a lone surrogate changes nothing and the connection
    and the other clients go on."""
    for escape in ("\\ud800", "\\udfff", "\\ude00\\ud83d"):
        data = LONE_SURROGATE_EDIT.replace("\\ud800", escape)
        reply = await reply_to(env.a, data)
        assert "error" in reply, reply
        assert reply["error"]["code"] in (PARSE_ERROR, INVALID_CHANGE, RESYNC_REQUIRED), reply
        await env.unchanged(env.a)
    await env.edit(env.b, change(DOC, 0, 1, [insert(1, 2, "!")]))
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.b)


async def test_revision_from_the_future_is_invalid_revision_then_resync(env: Env) -> None:
    """A base revision ahead of the head is InvalidRevision (1012); then ResyncRequired."""
    error = await env.a.error("textDocument/didChange", good_edit(revision=5))
    assert error["code"] == INVALID_REVISION
    await env.unchanged(env.a)
    await assert_resync_until_reopen(env, env.a, good_edit(0, 2))


async def test_revision_older_than_the_open_is_invalid_revision(env: Env) -> None:
    """A base revision older than the client's (re-)open is InvalidRevision (1012)."""
    await env.edit(env.b, change(DOC, 0, 1, [insert(0, 0, ">")]))
    env.text = ">" + TEXT
    opened = await env.a.call("textDocument/didOpen", {"path": DOC})
    assert opened["revision"] == 1
    error = await env.a.error("textDocument/didChange", good_edit(revision=0))
    assert error["code"] == INVALID_REVISION
    await env.unchanged(env.a)


async def test_document_over_its_limit_is_too_large(env: Env) -> None:
    """An edit that would make a document longer than 8,388,608 code points is TooLarge (1021)."""
    chunk = "a" * 4_000_000
    r1 = await env.edit(env.a, change(DOC, 0, 1, [insert(2, 0, chunk)]))
    r2 = await env.edit(env.a, change(DOC, r1["revision"], 2, [insert(2, 0, chunk)]))
    env.text = TEXT + chunk * 2
    too_much = change(DOC, r2["revision"], 3, [insert(2, 0, "b" * 400_000)])
    error = await env.a.error("textDocument/didChange", too_much)
    assert error["code"] == TOO_LARGE
    await env.unchanged(env.a)


# -- frames and limits -----------------------------------------------------------------------


async def test_message_over_4_mib_closes_with_1009(env: Env) -> None:
    """A text frame over 4 MiB closes that connection with 1009; the server goes on."""
    victim = await connect(env.server.url)
    big = frame({"jsonrpc": "2.0", "id": 1, "method": "chat/send", "params": {"text": ""}})
    big = big.replace('"text":""', '"text":"' + "x" * (4 * 1024 * 1024) + '"')
    # The server may close before the client has finished sending.
    with contextlib.suppress(ConnectionClosed):
        await victim.send_raw(big)
    assert await victim.wait_closed() == 1009
    fresh = await connect(env.server.url)
    assert await fresh.call("$/ping") == {}
    await fresh.close()
    await env.unchanged(env.a)


async def test_message_just_under_4_mib_is_accepted(env: Env) -> None:
    """A frame of nearly 4 MiB is read normally (here: a chat text too long, InvalidParams)."""
    data = frame({"jsonrpc": "2.0", "id": 9001, "method": "chat/send", "params": {"text": ""}})
    data = data.replace('"text":""', '"text":"' + "x" * (4 * 1024 * 1024 - len(data) - 1) + '"')
    assert len(data.encode()) <= 4 * 1024 * 1024
    assert_error(await reply_to(env.a, data), INVALID_PARAMS, 9001)
    await env.unchanged(env.a)


async def test_binary_frame_closes_with_1003(env: Env) -> None:
    """A binary frame closes that connection with 1003; others are unaffected."""
    await env.a.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"$/ping"}')
    assert await env.a.wait_closed() == 1003
    assert not [m for m in env.a.inbox if m.get("id") == 1]
    await env.edit(env.b, change(DOC, 0, 1, [insert(1, 2, "!")]))
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.b)


async def test_invalid_utf8_text_frame_closes_the_connection(env: Env) -> None:
    """A text frame that is not UTF-8 closes that connection (1007); others go on."""
    from websockets.frames import Frame, Opcode

    env.a.ws.protocol.send_frame(Frame(Opcode.TEXT, b'"\xff\xfe"'))
    env.a.ws.send_data()
    assert await env.a.wait_closed() == 1007
    await env.unchanged(env.b)


async def flood(conn: RawClient, count: int) -> list[dict[str, Any]]:
    """Send ``count`` pings without waiting; return every reply until the socket closes."""
    for i in range(count):
        try:
            await conn.send_raw(frame({"jsonrpc": "2.0", "id": 100_000 + i, "method": "$/ping"}))
        except ConnectionClosed:
            break
    await conn.wait_closed(wait=20)
    return [m for m in conn.inbox if "id" in m]


async def test_flooding_is_rate_limited_then_closed_with_1008(env: Env) -> None:
    """A flood gets RateLimited (1020) with data.retryAfterMs, then close 1008; a second client
    edits successfully throughout."""
    flooder = await connect(env.server.url, "Flo")
    await flooder.call("room/join", {"roomId": env.room})
    flooding = asyncio.ensure_future(flood(flooder, 2000))
    # Ben keeps editing while the flood lasts.
    revision, seq, acked = 0, 0, 0
    while not flooding.done() or acked < 20:
        seq += 1
        edit = change(DOC, revision, seq, [insert(2, 0, "x")])
        result = await env.b.call("textDocument/didChange", edit)
        revision, acked = result["revision"], acked + 1
        assert result["catchUp"] == []
        if acked > 2000:
            break
    replies = await asyncio.wait_for(flooding, timeout(30))
    assert flooder.ws.close_code == 1008
    ids = [m["id"] for m in replies]
    assert ids == sorted(ids), "responses must come in request order"
    limited = [m for m in replies if "error" in m]
    assert limited, "some requests must be refused before the close"
    assert len([m for m in replies if m.get("result") == {}]) >= 390  # the burst is served
    for m in limited:
        assert m["error"]["code"] == RATE_LIMITED
        retry = m["error"]["data"]["retryAfterMs"]
        assert isinstance(retry, int) and retry > 0
    env.text, env.revision = TEXT + "x" * acked, revision
    await env.unchanged(env.b)


async def test_rate_limited_client_that_waits_goes_on(env: Env) -> None:
    """A client refused with RateLimited that waits retryAfterMs is served again, not closed."""
    # Batches of 5 (fewer than the 10 refusals in a row that close) until one is refused.
    limited: list[dict[str, Any]] = []
    next_id = 100_000
    while not limited:
        assert next_id < 100_000 + 2000, "never rate limited"
        for i in range(next_id, next_id + 5):
            await env.a.send_raw(frame({"jsonrpc": "2.0", "id": i, "method": "$/ping"}))
        replies: list[dict[str, Any]] = []
        while len(replies) < 5:
            message = await env.a.recv()
            if "id" in message:
                replies.append(message)
        assert [m["id"] for m in replies] == list(range(next_id, next_id + 5))
        limited = [m for m in replies if "error" in m]
        next_id += 5
    assert {m["error"]["code"] for m in limited} == {RATE_LIMITED}
    await asyncio.sleep(max(m["error"]["data"]["retryAfterMs"] for m in limited) / 1000 + 0.05)
    await env.unchanged(env.a)


async def test_notification_flood_is_closed_with_1008(env: Env) -> None:
    """Notifications count against the rate too: sustained flooding closes with 1008."""
    for _ in range(1000):
        try:
            await env.a.notify("initialized", {})
        except ConnectionClosed:
            break
    assert await env.a.wait_closed() == 1008
    assert not [m for m in env.a.inbox if "error" in m]  # notifications are never answered
    await env.unchanged(env.b)


async def test_client_that_reads_nothing_is_closed_with_4002(server: RunningServer) -> None:
    """A client that stops reading while its queued output passes 16 MiB is closed with 4002;
    the editor producing that output goes on."""
    ada = await connect(server.url, "Ada")
    room = await create_room(ada, {DOC: TEXT})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": DOC})
    slow = await RawClient.connect(server.url, max_queue=1)  # stops reading almost at once
    await slow.initialize("Slow")
    await slow.call("room/join", {"roomId": room})
    await slow.call("textDocument/didOpen", {"path": DOC})
    revision = 0
    for i in range(20):  # 20 replacements of 3 MB each: far more than 16 MiB for ``slow``
        text = chr(ord("a") + i) * 3_000_000
        ack = await ada.call(
            "textDocument/didChange", change(DOC, revision, i + 1, [{"text": text}])
        )
        revision = ack["revision"]
    assert await slow.wait_closed(20) == 4002
    checksum = await ada.call("textDocument/checksum", {"path": DOC})
    assert checksum == {"revision": 20, "sha256": sha256("t" * 3_000_000)}
    await ada.close()


async def test_wrong_room_create_params_are_invalid_params(env: Env) -> None:
    """A missing or over-100-character room name and malformed files are InvalidParams."""
    variants: list[Any] = [
        None,
        [],
        {"name": ""},
        {"name": "n" * 101},
        {"name": 5},
        {"name": "ok", "files": "x"},
        {"name": "ok", "files": {"path": "a", "text": ""}},
        {"name": "ok", "files": [5]},
        {"name": "ok", "files": [{"path": "a"}]},
        {"name": "ok", "files": [{"text": "a"}]},
        {"name": "ok", "files": [{"path": "a", "text": 5}]},
        {"name": "ok", "files": [{"path": f"f{i}", "text": ""} for i in range(1001)]},
    ]
    for params in variants:
        error = await env.a.error("room/create", params)
        assert error["code"] == INVALID_PARAMS, (str(params)[:80], error)
    await env.unchanged(env.a)
    assert await env.a.call("room/create", {"name": "n" * 100})


async def test_resuming_from_a_future_revision_is_invalid_revision(env: Env) -> None:
    """didOpen resuming at a revision ahead of the head is InvalidRevision (1012), a negative
    one InvalidParams; the connection's open state is left as it was."""
    error = await env.a.error("textDocument/didOpen", {"path": DOC, "revision": 1})
    assert error["code"] == INVALID_REVISION
    error = await env.a.error("textDocument/didOpen", {"path": DOC, "revision": -1})
    assert error["code"] == INVALID_PARAMS
    await env.unchanged(env.a)
    await env.edit(env.a, good_edit())  # still open as before, at revision 0
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.a)


async def test_presence_errors_do_not_break_editing(env: Env) -> None:
    """A presence update at a future revision (1012) or a bad position (1010) is refused
    without requiring a resync: the next edit is accepted."""
    for revision, selection, code in (
        (5, {"anchor": pos(0, 0), "active": pos(0, 0)}, INVALID_REVISION),
        (0, {"anchor": pos(0, 7), "active": pos(0, 7)}, INVALID_POSITION),
        (0, {"anchor": pos(0, 0), "active": pos(3, 0)}, INVALID_POSITION),
    ):
        params = {"path": DOC, "revision": revision, "selections": [selection]}
        assert (await env.a.error("presence/update", params))["code"] == code
    await env.unchanged(env.a)
    await env.edit(env.a, good_edit())
    env.text = "héllo 😀!\nab!\n"
    await env.unchanged(env.a)
    await settle_presence(env.b)


async def settle_presence(conn: RawClient) -> None:
    """No presence of a refused update reached another member."""
    assert await conn.call("$/ping") == {}
    assert not [m for m in conn.inbox if m.get("method") == "presence/didChange"]
