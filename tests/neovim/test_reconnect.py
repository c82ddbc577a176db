"""Reconnecting without losing edits (protocol.md §6.5): the bridge killed, the server restarted.

Neovim types all along, also while it is offline; a Python client edits too. At the end the
buffer, the Python client and the server hold the same text, with every keystroke exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codesphere.app.server import RunningServer, start_server
from codesphere.client import CodeSphereClient
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import (
    ada_editing,
    bridge_pids,
    buffer_text,
    join,
    kill_bridge,
    open_file,
    settled,
    status,
    wait_reconnected,
)
from tests.tokens import TEST_SECRET, operator_token

pytestmark = pytest.mark.timeout(120)

#: Typed text with emoji, CJK, a combining mark and a ZWJ sequence: UTF-8 byte columns in
#: Neovim, UTF-16 units for the Python client.
PIECE = "é😀中e\u0301👩\u200d👧"


def token(i: int) -> str:
    return f"[{i}{PIECE}]"


class AckGate:
    """Holds the server's answers to Neovim's edits once they are committed, on request.

    That makes the case that matters for resuming happen for sure: an edit the server has
    committed whose acknowledgement the connection's death swallows, and an acknowledged edit
    still kept (more was typed meanwhile), both resent with their old `seq` after the reconnect
    and not to be applied twice.
    """

    def __init__(self, server: RunningServer) -> None:
        methods = server.hub.methods
        self.original: Callable[[Any, Any], Awaitable[Any]] = methods["textDocument/didChange"]
        methods["textDocument/didChange"] = self.handle
        self.holding = False
        self.waiting: list[asyncio.Future[None]] = []

    async def handle(self, conn: Any, params: Any) -> Any:
        result = await self.original(conn, params)
        if self.holding and conn.client_id.startswith("nvim-"):
            gate = asyncio.get_running_loop().create_future()
            self.waiting.append(gate)
            await gate
        return result

    async def hold(self) -> None:
        self.holding = True

    async def let_one(self) -> None:
        while not self.waiting:
            await asyncio.sleep(0.01)
        self.waiting.pop(0).set_result(None)

    async def open(self) -> None:
        self.holding = False
        for gate in self.waiting:
            gate.set_result(None)
        self.waiting.clear()


def hold_edits(nvim: Any, aloop: Loop, gate: AckGate, doc: Any, tokens: list[str]) -> None:
    """Types the tokens so that every one but the last is acknowledged yet still kept (the next
    was typed before its answer came) and the last is committed but not acknowledged."""
    # Nothing in flight first: an answer held back for an earlier edit would hold up the rest.
    wait_for(lambda: settled(nvim, "a.txt"), what="earlier edits acknowledged")
    aloop.run(gate.hold())
    nvim.input(tokens[0])
    wait_for(lambda: tokens[0] in doc.text, what="the first edit committed")
    for tok in tokens[1:]:
        nvim.input(tok)
        wait_for(lambda: status(nvim)["docs"]["a.txt"]["unsent"] == 1, what="an edit gathered")
        aloop.run(gate.let_one())
        wait_for(lambda tok=tok: tok in doc.text, what="the next edit committed")
    state = status(nvim)["docs"]["a.txt"]
    assert (state["kept"], state["unacked"]) == (len(tokens), 1), state


def server_text(aloop: Loop, url: str, room_id: str, path: str) -> str:
    """The server's text of `path`, as a fresh client opens it."""

    async def read() -> str:
        reader = await CodeSphereClient.connect(url, name="Reader", token=operator_token("rd"))
        try:
            await reader.join(room_id)
            doc = await reader.open(path)
            return doc.text
        finally:
            await reader.close()

    return aloop.run(read())


def converged(nvim: Any, buf: int, doc: Any, path: str = "a.txt") -> bool:
    return settled(nvim, path) and doc.is_settled and buffer_text(nvim, buf) == doc.text


def assert_every_token_once(text: str, nvim_tokens: list[str], py_tokens: list[str]) -> None:
    for tok in nvim_tokens + py_tokens:
        assert text.count(tok) == 1, (tok, text)
    # Neovim typed its tokens in one run at the end of the text: they stay in order.
    assert "".join(nvim_tokens) in text, text


def type_tokens(nvim: Any, tokens: list[str], doc: Any, aloop: Loop, py: list[str]) -> None:
    """Types each token; the Python client inserts one of its own at the start every third."""
    for n, tok in enumerate(tokens):
        nvim.input(tok)
        if n % 3 == 0:
            mine = f"<{len(py)}{PIECE}>"
            py.append(mine)
            aloop.run(doc.insert(0, mine))
        time.sleep(0.01)


@pytest.fixture
def gate(aloop: Loop, server: RunningServer) -> Iterator[AckGate]:
    """An AckGate on the `server` fixture, opened before the server closes (which would wait
    for the answers it holds back)."""
    held = AckGate(server)
    try:
        yield held
    finally:
        aloop.run(held.open())


def test_killing_the_bridge_while_typing_loses_nothing(aloop, server, gate, room, make_nvim):
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    client_id = status(nvim)["client_id"]
    typed: list[str] = []
    py: list[str] = []
    nvim.input("Go")

    # Typing, then the bridge dies with edits in flight; typing goes on while offline.
    first = [token(i) for i in range(0, 8)]
    type_tokens(nvim, first, doc, aloop, py)
    # More kept edits than are resent at once (32): the rest follow the answers.
    held = [token(i) for i in range(8, 48)]
    hold_edits(nvim, aloop, gate, doc, held)
    typed += first + held
    killed = kill_bridge(nvim)
    aloop.run(gate.open())
    offline = [token(i) for i in range(48, 58)]
    type_tokens(nvim, offline, doc, aloop, py)
    typed += offline
    wait_reconnected(nvim, killed)
    assert status(nvim)["client_id"] == client_id  # the same id: resent edits are recognised

    # Again, right after the resume: edits in flight and resent ones die with this bridge too.
    again = [token(i) for i in range(58, 68)]
    type_tokens(nvim, again[:5], doc, aloop, py)
    killed = kill_bridge(nvim)
    type_tokens(nvim, again[5:], doc, aloop, py)
    typed += again
    nvim.input("<Esc>")
    wait_reconnected(nvim, killed)

    wait_for(lambda: converged(nvim, buf, doc), timeout=30, what="convergence")
    text = buffer_text(nvim, buf)
    assert text == doc.text
    assert aloop.run(doc.checksum())
    assert server_text(aloop, server.url, room_id, "a.txt") == text
    assert_every_token_once(text, typed, py)
    assert text.endswith("".join(typed) + "\n")
    assert status(nvim)["docs"]["a.txt"]["revision"] == doc.revision


@pytest.fixture
def restartable(aloop: Loop, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A server that the test stops and starts again on the same port and data directory."""
    data = tmp_path / "restart-data"
    holder: dict[str, Any] = {
        "server": aloop.run(start_server("127.0.0.1", 0, data, secret=TEST_SECRET))
    }
    holder["data"] = data
    try:
        yield holder
    finally:
        running: RunningServer | None = holder.get("server")
        if running is not None:
            if holder.get("gate") is not None:
                aloop.run(holder["gate"].open())  # what it holds back would delay the close
            aloop.run(running.close())


def test_a_server_restart_while_typing_loses_nothing(aloop, restartable, make_nvim) -> None:
    server: RunningServer = restartable["server"]
    port = server.port

    async def setup() -> tuple[CodeSphereClient, str, Any]:
        client = await CodeSphereClient.connect(
            server.url, name="Py", encodings=("utf-16",), token=operator_token("py")
        )
        room_id = await client.create_room("demo", [{"path": "a.txt", "text": "héllo\nwörld\n"}])
        await client.join(room_id)
        return client, room_id, await client.open("a.txt")

    client, room_id, doc = aloop.run(setup())
    try:
        nvim, buf = ada_editing(make_nvim, server, room_id)
        typed: list[str] = []
        py: list[str] = []
        nvim.input("Go")
        before = [token(i) for i in range(0, 6)]
        type_tokens(nvim, before, doc, aloop, py)
        held = [token(6), token(7)]
        gate = restartable["gate"] = AckGate(server)
        hold_edits(nvim, aloop, gate, doc, held)
        typed += before + held

        # The server stops (closing every connection with 1001) with an answer held back.
        restartable["server"] = None

        async def stop() -> None:
            closing = asyncio.ensure_future(server.close())
            await asyncio.sleep(0)  # the connections are closed: the held answer goes nowhere
            await gate.open()
            await closing

        aloop.run(stop())
        down = [token(i) for i in range(8, 20)]
        type_tokens(nvim, down, doc, aloop, py)  # the Python client keeps its edits too
        typed += down
        wait_for(lambda: status(nvim)["state"] == "reconnecting", what="offline")
        line = nvim.exec_lua("return require('codesphere').statusline()")
        assert line.startswith("CS reconnecting") and "unacked" in line, line
        time.sleep(1.0)  # at least one refused attempt: the backoff goes on

        restarted = aloop.run(
            start_server("127.0.0.1", port, restartable["data"], secret=TEST_SECRET)
        )
        restartable["server"] = restarted
        aloop.run(client.reconnect())
        after = [token(i) for i in range(20, 30)]
        type_tokens(nvim, after, doc, aloop, py)
        typed += after
        nvim.input("<Esc>")

        wait_for(lambda: status(nvim)["state"] == "joined", timeout=20, what="reconnected")
        wait_for(lambda: converged(nvim, buf, doc), timeout=30, what="convergence")
        text = buffer_text(nvim, buf)
        assert aloop.run(doc.checksum())
        assert server_text(aloop, restarted.url, room_id, "a.txt") == text
        assert_every_token_once(text, typed, py)
        assert text.endswith("".join(typed) + "\n")
    finally:
        aloop.run(client.close())


def test_leave_while_reconnecting_stops_trying(aloop, restartable, make_nvim) -> None:
    server: RunningServer = restartable["server"]
    port = server.port
    owner = aloop.run(CodeSphereClient.connect(server.url, name="Py", token=operator_token("py")))
    room_id = aloop.run(owner.create_room("demo", [{"path": "a.txt", "text": "x\n"}]))
    aloop.run(owner.close())
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    open_file(nvim, "a.txt")
    restartable["server"] = None
    aloop.run(server.close())
    wait_for(lambda: status(nvim)["state"] == "reconnecting", what="offline")
    nvim.input("ioffline<Esc>")  # the buffer stays editable
    wait_for(lambda: status(nvim)["docs"]["a.txt"]["pending"] == 1, what="an edit waiting")
    assert nvim.current.buffer[:] == ["offlinex"]
    assert nvim.exec_lua("return require('codesphere').statusline()") == "CS reconnecting 1 unacked"

    nvim.command("CodeSphereLeave")
    wait_for(lambda: status(nvim)["state"] == "closed", what="left")
    assert status(nvim).get("retry_in_ms") is None
    restartable["server"] = aloop.run(
        start_server("127.0.0.1", port, restartable["data"], secret=TEST_SECRET)
    )
    deadline = time.monotonic() + 2.0  # longer than the first retries would wait
    while time.monotonic() < deadline:
        assert bridge_pids(nvim) == []
        assert status(nvim)["state"] == "closed"
        time.sleep(0.1)


def test_an_invite_member_comes_back_with_its_member_token(aloop, server, make_nvim) -> None:
    """An invite usable once admits again after a reconnect (the member token is used); once
    the owner revokes it, the plugin stops trying instead of knocking forever."""
    owner = aloop.run(CodeSphereClient.connect(server.url, name="Own", token=operator_token("own")))
    try:
        room_id = aloop.run(owner.create_room("inv", [{"path": "a.txt", "text": "x\n"}]))
        aloop.run(owner.join(room_id))
        invite = aloop.run(owner.request("invite/create", {"role": "editor", "maxUses": 1}))
        nvim = make_nvim("Ivy")
        assert join(nvim, server, invite["token"], "")["state"] == "joined"
        buf = open_file(nvim, "a.txt")
        killed = kill_bridge(nvim)
        nvim.input("i😀<Esc>")
        wait_reconnected(nvim, killed)
        odoc = aloop.run(owner.open("a.txt"))
        wait_for(lambda: odoc.text == "😀x\n" == buffer_text(nvim, buf), what="the edit")

        aloop.run(owner.request("invite/revoke", {"inviteId": invite["inviteId"]}))
        wait_for(lambda: status(nvim)["state"] == "closed", timeout=15, what="given up")
        assert status(nvim).get("retry_in_ms") is None
        time.sleep(1.0)
        assert bridge_pids(nvim) == []
    finally:
        aloop.run(owner.close())


def test_presence_is_sent_again_after_a_reconnect(aloop, server, room, make_nvim) -> None:
    client, room_id, _ = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    open_file(nvim, "a.txt")
    me = status(nvim)["you"]["memberId"]
    nvim.call("cursor", 2, 4)  # on the "r" of "wörld": UTF-8 byte 3, UTF-16 unit 2
    at_r = {"line": 1, "character": 2}

    def shown_at_r() -> bool:
        p = client.presence.get(me)
        return p is not None and p["path"] == "a.txt" and p["selections"][0]["active"] == at_r

    wait_for(shown_at_r, what="presence")

    killed = kill_bridge(nvim)
    wait_for(lambda: me not in client.presence, what="gone with the connection")
    wait_reconnected(nvim, killed)
    wait_for(shown_at_r, what="presence again")
    # Sent once the document was open again on the new connection, never refused before that.
    assert status(nvim)["presence"]["refused"] == 0


def test_following_goes_on_after_a_reconnect(aloop, server, room, make_nvim) -> None:
    """Following opens the room's files on the connection to hear where the member goes; after
    a reconnect it opens them again on the new one."""
    client, room_id, _ = room

    async def two_files() -> None:
        await client.create_file("b.py", "x = 1\n")
        await client.open("b.py")
        await client.update_presence("b.py", [(2, 2)])

    aloop.run(two_files())
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    nvim.command("CodeSphereFollow Py")

    def where() -> tuple[str, list[int]]:
        return nvim.current.buffer.name, list(nvim.current.window.cursor)

    wait_for(lambda: where() == ("codesphere://b.py", [1, 2]), what="Py's place")

    killed = kill_bridge(nvim)
    wait_reconnected(nvim, killed)
    aloop.run(client.update_presence("a.txt", [(8, 8)]))  # "wö|rld": UTF-8 byte 3
    wait_for(lambda: where() == ("codesphere://a.txt", [2, 3]), what="Py's other file")
    assert "following Py" in nvim.exec_lua("return require('codesphere').statusline()")
