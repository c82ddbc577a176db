"""Nothing acknowledged is lost: graceful restarts, kill -9, and reconnecting with resends.

The kill -9 tests run ``codesphere serve`` as a child process (the console script of this
virtualenv) and SIGKILL it by its pid while clients are editing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from codesphere.app.server import DB_NAME, start_server
from codesphere.core.changes import ContentChange, apply_changes
from tests.conftest import timeout
from tests.rawclient import RawClient, insert
from tests.serve import ServeProcess
from tests.server.support import change, connect, create_room, sha256
from tests.tokens import TEST_SECRET

DOC = "doc.txt"


# -- a server in a child process -------------------------------------------------------------


@dataclass
class ServerProcess:
    """``codesphere serve`` in a child process, with the address it printed."""

    serve: ServeProcess
    url: str

    @classmethod
    async def start(cls, data_dir: Path, log: Path) -> ServerProcess:
        """Start the server on ``data_dir`` and wait for the URL it prints."""
        env = dict(os.environ, JWT_SECRET=TEST_SECRET.decode())
        args = ("--log-level", "warning", "--no-owner-link")
        serve = await ServeProcess.start(data_dir, log, *args, env=env)
        return cls(serve, await serve.url())

    async def kill(self) -> None:
        """SIGKILL the process by its pid and reap it."""
        await self.serve.kill()

    async def stop(self) -> None:
        """End the process if it still runs (SIGTERM, then SIGKILL)."""
        await self.serve.stop()


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[[Path], Awaitable[ServerProcess]]]:
    """Start server processes; any still running at the end are stopped."""
    started: list[ServerProcess] = []

    async def start(data_dir: Path) -> ServerProcess:
        server = await ServerProcess.start(data_dir, tmp_path / f"server{len(started)}.log")
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.stop()


def snapshot_revisions(data_dir: Path) -> dict[str, int]:
    """Each document's stored snapshot revision, read from the database file."""
    db = sqlite3.connect(data_dir / DB_NAME)
    try:
        return dict(db.execute("SELECT path, snapshot_revision FROM documents").fetchall())
    finally:
        db.close()


async def open_doc(url: str, room: str, path: str, client_id: str | None = None) -> dict[str, Any]:
    """didOpen ``path`` from a new connection; returns the result."""
    c = await connect(url, "checker", "utf-32", client_id=client_id)
    try:
        await c.call("room/join", {"roomId": room})
        result: dict[str, Any] = await c.call("textDocument/didOpen", {"path": path})
        return result
    finally:
        await c.close()


def tokens(text: str) -> list[str]:
    """The ``<...>`` tokens the tests insert, in order."""
    return re.findall(r"<[^<>]*>", text)


# -- graceful restart ------------------------------------------------------------------------


@pytest.mark.parametrize("edits", [12, 1100])
async def test_graceful_restart_keeps_rooms_members_documents_and_chat(
    data_dir: Path, edits: int
) -> None:
    """After a clean stop and a start on the same data directory the room, its members, files,
    texts, revisions, lastSeq and chat history are all back (with snapshots past 500 edits)."""
    first = await start_server("127.0.0.1", 0, data_dir, secret=TEST_SECRET)
    try:
        ada = await connect(first.url, "Ada", "utf-16", client_id="ada")
        room = await create_room(ada, {DOC: "start\n", "win.txt": "a\r\nb\r\n", "gone.txt": "x"})
        await ada.call("room/join", {"roomId": room})
        await ada.call("textDocument/didOpen", {"path": DOC})
        writers = [ada]
        for i in range(3):  # several connections: each stays within its request rate
            w = await connect(first.url, f"W{i}", "utf-8", client_id=f"w{i}")
            await w.call("room/join", {"roomId": room})
            await w.call("textDocument/didOpen", {"path": DOC})
            writers.append(w)
        vic = await connect(first.url, "Vic", client_id="vic")
        await vic.call("room/join", {"roomId": room, "role": "viewer"})
        text, revision = "start\n", 0
        seqs = dict.fromkeys(("ada", "w0", "w1", "w2"), 0)
        for n in range(edits):
            w = writers[n % len(writers)]
            cid = ["ada", "w0", "w1", "w2"][n % len(writers)]
            seqs[cid] += 1
            token = f"<{n}>"
            edit = change(DOC, revision, seqs[cid], [insert(0, 0, token)])
            ack = await w.call("textDocument/didChange", edit)
            assert ack == {"revision": revision + 1, "catchUp": []}
            revision, text = ack["revision"], token + text
        await ada.call("workspace/createFile", {"path": "made.txt", "text": "m\r\n"})
        await ada.call("workspace/renameFile", {"path": "win.txt", "newPath": "dir/win.txt"})
        await ada.call("workspace/deleteFile", {"path": "gone.txt"})
        sent = []
        for i, c in enumerate([ada, vic, ada]):
            sent.append((await c.call("chat/send", {"text": f"hello {i}"}))["message"])
        before = await ada.call("room/join", {"roomId": room})
        history = await ada.call("chat/history", {})
        assert history["messages"] == sent
        for c in [*writers, vic]:
            await c.close()
    finally:
        await first.close()

    second = await start_server("127.0.0.1", 0, data_dir, secret=TEST_SECRET)
    try:
        ada = await connect(second.url, "Ada", "utf-16", client_id="ada")
        after = await ada.call("room/join", {"roomId": room})
        assert after["room"] == before["room"]
        assert (
            after["files"]
            == before["files"]
            == [
                {"path": "dir/win.txt", "revision": 0, "eol": "\r\n"},
                {"path": DOC, "revision": edits, "eol": "\n"},
                {"path": "made.txt", "revision": 0, "eol": "\r\n"},
            ]
        )
        members = {m["memberId"]: (m["name"], m["role"], m["color"]) for m in after["members"]}
        assert members == {
            m["memberId"]: (m["name"], m["role"], m["color"]) for m in before["members"]
        }
        assert members["ada"][1] == "owner" and members["vic"][1] == "viewer"
        assert {m["memberId"]: m["online"] for m in after["members"]}["w0"] is False
        opened = await ada.call("textDocument/didOpen", {"path": DOC})
        assert (opened["text"], opened["revision"]) == (text, revision)
        assert opened["lastSeq"] == seqs["ada"]
        checksum = await ada.call("textDocument/checksum", {"path": DOC})
        assert checksum == {"revision": revision, "sha256": sha256(text)}
        # Older revisions, also from before the last snapshot, can still be checked.
        for back in (10, revision - revision // 3):
            params = {"path": DOC, "revision": revision - back}
            old = await ada.call("textDocument/checksum", params)
            assert old["sha256"] == sha256(text[len("".join(tokens(text)[:back])) :])
        assert (await ada.call("textDocument/didOpen", {"path": "made.txt"}))["text"] == "m\n"
        dir_win = await ada.call("textDocument/didOpen", {"path": "dir/win.txt"})
        assert (dir_win["text"], dir_win["eol"]) == ("a\nb\n", "\r\n")
        assert await ada.call("chat/history", {}) == history
        # Editing goes on from where it was.
        edit = change(DOC, revision, seqs["ada"] + 1, [insert(0, 0, "<after>")])
        ack = await ada.call("textDocument/didChange", edit)
        assert ack == {"revision": revision + 1, "catchUp": []}
        message = (await ada.call("chat/send", {"text": "back"}))["message"]
        assert message["seq"] == 4
        await ada.close()
    finally:
        await second.close()
    if edits > 500:
        assert snapshot_revisions(data_dir)[DOC] >= 500


# -- kill -9 ---------------------------------------------------------------------------------


@dataclass
class Writer:
    """A client inserting tokens at the start of the document, one edit in flight at a time."""

    client_id: str
    acked: list[str] = field(default_factory=list)  # tokens whose edit was acknowledged
    revisions: list[int] = field(default_factory=list)  # revisions named by those acks
    in_flight: str | None = None
    close_code: int | None = None  # how the server closed the connection


async def write_until_dead(url: str, room: str, writer: Writer, pause: float) -> None:
    """Edit until the connection dies; record every acknowledgement."""
    c = await connect(url, writer.client_id, "utf-16", client_id=writer.client_id)
    try:
        await c.call("room/join", {"roomId": room})
        revision = (await c.call("textDocument/didOpen", {"path": DOC}))["revision"]
        seq = 0
        while True:
            seq += 1
            token = f"<{writer.client_id}:{seq}>"
            writer.in_flight = token
            # Inserting at the start is valid in any text, so the view never needs applying.
            edit = change(DOC, revision, seq, [insert(0, 0, token)])
            reply = await c.request("textDocument/didChange", edit)
            assert "error" not in reply, reply
            writer.in_flight = None
            revision = reply["result"]["revision"]
            writer.acked.append(token)
            writer.revisions.append(revision)
            await asyncio.sleep(pause)  # stay under the request rate limit
    except (ConnectionClosed, OSError, TimeoutError):
        writer.close_code = c.ws.close_code
        return


async def chat_until_dead(url: str, room: str, acked: list[str], pause: float) -> None:
    """Send chat messages until the connection dies; record the acknowledged ones."""
    c = await connect(url, "chatter", client_id="chatter")
    try:
        await c.call("room/join", {"roomId": room})
        n = 0
        while True:
            n += 1
            reply = await c.request("chat/send", {"text": f"message {n}"})
            assert "error" not in reply, reply
            acked.append(reply["result"]["message"]["text"])
            await asyncio.sleep(pause)
    except (ConnectionClosed, OSError, TimeoutError):
        return


async def test_kill_9_loses_no_acknowledged_edit_or_chat(
    tmp_path: Path, spawn: Callable[[Path], Awaitable[ServerProcess]]
) -> None:
    """SIGKILL mid-stream, restart on the same data: every acknowledged edit (past a snapshot)
    and chat message is there, each edit once, and the revision is at least the last acked."""
    data = tmp_path / "data"
    server = await spawn(data)
    owner = await connect(server.url, "Owner", client_id="owner")
    room = await create_room(owner, {DOC: "base\n"})
    await owner.close()

    writers = [Writer(f"w{i}") for i in range(4)]
    chat_acked: list[str] = []
    tasks = [asyncio.ensure_future(write_until_dead(server.url, room, w, 0.006)) for w in writers]
    tasks.append(asyncio.ensure_future(chat_until_dead(server.url, room, chat_acked, 0.01)))
    async with asyncio.timeout(timeout(60)):
        while sum(len(w.acked) for w in writers) < 700:
            assert not all(t.done() for t in tasks[:-1]), "the writers stopped"
            await asyncio.sleep(0.01)
    await server.kill()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout(15))
    assert all(t.result() is None for t in tasks)

    restarted = await spawn(data)
    opened = await open_doc(restarted.url, room, DOC)
    text, revision = opened["text"], opened["revision"]
    found = tokens(text)
    assert len(found) == len(set(found)) == revision, "each committed edit exactly once"
    assert text.endswith("base\n") and "".join(found) + "base\n" == text
    for w in writers:
        assert set(w.acked) <= set(found), f"{w.client_id} lost acknowledged edits"
        assert revision >= max(w.revisions)
        # A writer's own edits keep their order: each was made on top of the previous.
        mine = [t for t in found if t.startswith(f"<{w.client_id}:")]
        assert mine[::-1][: len(w.acked)] == w.acked
        assert len(mine) - len(w.acked) in (0, 1)  # at most the edit in flight was committed
    assert revision > 500 and snapshot_revisions(data)[DOC] >= 500
    checker = await connect(restarted.url, "Checker")
    await checker.call("room/join", {"roomId": room})
    history = await checker.call("chat/history", {"limit": 200})
    texts = [m["text"] for m in history["messages"]]
    assert texts[: len(chat_acked)] == chat_acked
    assert [m["seq"] for m in history["messages"]] == list(range(1, len(texts) + 1))
    assert len(texts) - len(chat_acked) in (0, 1)
    # Each writer's lastSeq tells where its counter stands.
    for w in writers:
        last = (await open_doc(restarted.url, room, DOC, client_id=w.client_id))["lastSeq"]
        assert last == len([t for t in found if t.startswith(f"<{w.client_id}:")])
    await checker.close()


# -- reconnecting with resends ---------------------------------------------------------------


@dataclass
class Resumer:
    """A client following protocol.md §6.3 and §6.5 with pipelined edits it may resend."""

    client_id: str
    text: str = ""
    revision: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)  # didChange params since revision
    unacked: int = 0
    seq: int = 0

    def local_insert(self, token: str) -> dict[str, Any]:
        """Make an edit locally; return the didChange params to send."""
        self.seq += 1
        params = change(DOC, self.revision, self.seq, [insert(0, 0, token)])
        self.text = token + self.text
        self.kept.append(params)
        self.unacked += 1
        return params

    def on_ack(self, result: dict[str, Any]) -> None:
        """Rule 2: apply catchUp only when nothing else is pending."""
        self.unacked -= 1
        if self.unacked == 0:
            changes = [ContentChange(_range(c), c["text"]) for c in result["catchUp"]]
            self.text = apply_changes(self.text, changes, "utf-16")
            self.revision = result["revision"]
            self.kept = []


def _range(c: dict[str, Any]) -> Any:
    r = c.get("range")
    if r is None:
        return None
    return (r["start"]["line"], r["start"]["character"]), (r["end"]["line"], r["end"]["character"])


async def send_request(c: RawClient, method: str, params: Any, id_: int) -> None:
    """Send a request without waiting for its answer."""
    message = {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}
    await c.send_raw(orjson.dumps(message).decode())


async def read_answers(c: RawClient, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Read until every one of ``ids`` is answered (notifications go to the inbox)."""
    answers: dict[int, dict[str, Any]] = {}
    while len(answers) < len(ids):
        m = await c.recv(10)
        if m.get("id") in ids and "method" not in m:
            answers[m["id"]] = m
        else:
            c.inbox.append(m)
    return answers


async def pipeline(url: str, room: str, me: Resumer, count: int, acks_read: int) -> RawClient:
    """Open the document, send ``count`` edits without waiting and read ``acks_read`` answers.

    With answers still outstanding the client's revision does not move, so it keeps all
    ``count`` edits for a resend.
    """
    c = await connect(url, me.client_id, "utf-16", client_id=me.client_id)
    await c.call("room/join", {"roomId": room})
    opened = await c.call("textDocument/didOpen", {"path": DOC})
    me.text, me.revision = opened["text"], opened["revision"]
    ids = list(range(1000, 1000 + count))
    for i, id_ in enumerate(ids):
        params = me.local_insert(f"<{me.client_id}:{i}>")
        await send_request(c, "textDocument/didChange", params, id_)
    answers = await read_answers(c, ids[:acks_read])
    for id_ in ids[:acks_read]:
        assert "error" not in answers[id_], answers[id_]
        me.on_ack(answers[id_]["result"])
    assert len(me.kept) == (count if acks_read < count else 0)
    return c


async def resume(url: str, room: str, me: Resumer) -> RawClient:
    """Reconnect with the same clientId, reopen at the kept revision and resend (§6.5)."""
    c = await connect(url, me.client_id, "utf-16", client_id=me.client_id)
    await c.call("room/join", {"roomId": room})
    if not me.kept:  # nothing to resend: a plain open (§6.5 step 3)
        opened = await c.call("textDocument/didOpen", {"path": DOC})
        me.text, me.revision = opened["text"], opened["revision"]
        return c
    opened = await c.call("textDocument/didOpen", {"path": DOC, "revision": me.revision})
    assert opened["revision"] >= me.revision
    resent = list(me.kept)
    me.unacked = len(resent)
    ids = list(range(3000, 3000 + len(resent)))
    for id_, params in zip(ids, resent, strict=True):
        await send_request(c, "textDocument/didChange", params, id_)
    answers = await read_answers(c, ids)
    for id_ in ids:
        assert "error" not in answers[id_], answers[id_]
        me.on_ack(answers[id_]["result"])
    assert me.unacked == 0
    return c


async def other_edits(url: str, room: str, client_id: str, tokens_: list[str]) -> None:
    """Another member appends tokens at the end of the document's first line."""
    c = await connect(url, client_id, "utf-8", client_id=client_id)
    await c.call("room/join", {"roomId": room})
    seq = (await c.call("textDocument/didOpen", {"path": DOC}))["lastSeq"]
    for token in tokens_:
        opened = await c.call("textDocument/didOpen", {"path": DOC})
        end = len(opened["text"].split("\n")[0].encode())
        seq += 1
        edit = change(DOC, opened["revision"], seq, [insert(0, end, token)])
        await c.call("textDocument/didChange", edit)
    await c.close()


@pytest.mark.parametrize("how", ["close", "abort", "keep"])
@pytest.mark.parametrize("acks_read", [0, 2, 5])
async def test_resent_edits_after_a_reconnect_apply_exactly_once(
    data_dir: Path, acks_read: int, how: str
) -> None:
    """A client that lost its socket with edits in flight reconnects with the same clientId,
    reopens at its revision and resends them: each is applied once, and its text ends equal
    to the server's."""
    server = await start_server("127.0.0.1", 0, data_dir, secret=TEST_SECRET)
    try:
        owner = await connect(server.url, "Owner")
        room = await create_room(owner, {DOC: "line one\nline two\n"})
        await owner.close()
        await other_edits(server.url, room, "ben", ["<b0>", "<b1>"])
        ada = Resumer("ada")
        c = await pipeline(server.url, room, ada, 6, acks_read)
        old = c
        if how == "abort":
            c.ws.transport.abort()
        elif how == "close":
            await c.close()
        # "keep": the old socket stays open, as when the client has not noticed it is dead.
        resume_at, first_edit = ada.revision, ada.kept[0]
        await other_edits(server.url, room, "cy", ["<c0>"])
        c = await resume(server.url, room, ada)
        if how == "keep":  # the newer connection replaces the old one
            await old.wait_closed()
        opened = await open_doc(server.url, room, DOC)
        assert (ada.text, ada.revision) == (opened["text"], opened["revision"])
        for i in range(6):
            assert opened["text"].count(f"<ada:{i}>") == 1
        assert opened["revision"] == 2 + 6 + 1
        checksum = await c.call("textDocument/checksum", {"path": DOC})
        assert checksum == {"revision": ada.revision, "sha256": sha256(ada.text)}
        # Resending an edit once more is acknowledged again and changes nothing.
        again = await c.call("textDocument/didOpen", {"path": DOC, "revision": resume_at})
        assert again["lastSeq"] == 6
        ack = await c.call("textDocument/didChange", first_edit)
        assert ack["revision"] == opened["revision"]
        assert await open_doc(server.url, room, DOC) == opened
        await c.close()
    finally:
        await server.close()


@pytest.mark.parametrize("acks_read", [0, 3, 6])
async def test_resent_edits_after_kill_9_apply_exactly_once(
    tmp_path: Path, spawn: Callable[[Path], Awaitable[ServerProcess]], acks_read: int
) -> None:
    """As above, but the server is SIGKILLed with the edits in flight and restarted on the
    same data: acknowledged edits survive and every resent edit is applied exactly once."""
    data = tmp_path / "data"
    server = await spawn(data)
    owner = await connect(server.url, "Owner")
    room = await create_room(owner, {DOC: "line one\nline two\n"})
    await owner.close()
    await other_edits(server.url, room, "ben", ["<b0>", "<b1>"])
    ada = Resumer("ada")
    c = await pipeline(server.url, room, ada, 6, acks_read)
    await server.kill()
    with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
        await c.wait_closed(5)

    restarted = await spawn(data)
    before = await open_doc(restarted.url, room, DOC)
    for i in range(acks_read):
        assert f"<ada:{i}>" in before["text"], "an acknowledged edit was lost"
    assert before["revision"] >= 2 + acks_read
    await other_edits(restarted.url, room, "cy", ["<c0>"])
    c = await resume(restarted.url, room, ada)
    opened = await open_doc(restarted.url, room, DOC)
    assert (ada.text, ada.revision) == (opened["text"], opened["revision"])
    for i in range(6):
        assert opened["text"].count(f"<ada:{i}>") == 1
    assert opened["revision"] == 2 + 6 + 1
    assert (await c.call("textDocument/didOpen", {"path": DOC}))["lastSeq"] == 6
    await c.close()


async def test_graceful_shutdown_mid_stream_closes_with_1001_and_keeps_acknowledged_edits(
    tmp_path: Path, spawn: Callable[[Path], Awaitable[ServerProcess]]
) -> None:
    """SIGTERM while clients edit: they are closed with 1001, the process exits cleanly, and
    after a restart every acknowledged edit is there exactly once."""
    data = tmp_path / "data"
    server = await spawn(data)
    owner = await connect(server.url, "Owner", client_id="owner")
    room = await create_room(owner, {DOC: "base\n"})
    await owner.close()
    writers = [Writer(f"w{i}") for i in range(3)]
    tasks = [asyncio.ensure_future(write_until_dead(server.url, room, w, 0.006)) for w in writers]
    async with asyncio.timeout(timeout(30)):
        while sum(len(w.acked) for w in writers) < 150:
            await asyncio.sleep(0.01)
    server.serve.process.terminate()
    assert await asyncio.wait_for(server.serve.process.wait(), timeout(20)) == 0
    await asyncio.wait_for(asyncio.gather(*tasks), timeout(15))
    assert [w.close_code for w in writers] == [1001] * len(writers)

    restarted = await spawn(data)
    opened = await open_doc(restarted.url, room, DOC)
    found = tokens(opened["text"])
    assert len(found) == len(set(found)) == opened["revision"]
    for w in writers:
        assert set(w.acked) <= set(found)
        assert opened["revision"] >= max(w.revisions)


async def fill(url: str, room: str, edits: int) -> int:
    """Commit ``edits`` edits to DOC from several connections in turn; returns the head."""
    clients, seqs = [], []
    for i in range(8):  # each connection stays well within its request rate
        c = await connect(url, f"filler{i}", "utf-32", client_id=f"filler{i}")
        await c.call("room/join", {"roomId": room})
        opened = await c.call("textDocument/didOpen", {"path": DOC})
        revision = opened["revision"]
        clients.append(c)
        seqs.append(opened["lastSeq"])
    for n in range(edits):
        i = n % len(clients)
        seqs[i] += 1
        edit = change(DOC, revision, seqs[i], [insert(0, 0, ".")])
        ack = await clients[i].call("textDocument/didChange", edit)
        revision = ack["revision"]
    for c in clients:
        await c.close()
    return revision


async def test_edits_and_resumes_more_than_2048_revisions_behind_need_a_resync(
    data_dir: Path,
) -> None:
    """An edit based 2048 revisions behind the head is placed; 2049 behind is ResyncRequired
    (1013); and so is a didOpen that resumes more than 2048 revisions back (§6.5)."""
    server = await start_server("127.0.0.1", 0, data_dir, secret=TEST_SECRET)
    try:
        owner = await connect(server.url, "Owner")
        room = await create_room(owner, {DOC: "x\n"})
        await owner.close()
        far = await connect(server.url, "Far", client_id="far")
        await far.call("room/join", {"roomId": room})
        await far.call("textDocument/didOpen", {"path": DOC})
        await fill(server.url, room, 1)
        near = await connect(server.url, "Near", client_id="near")
        await near.call("room/join", {"roomId": room})
        assert (await near.call("textDocument/didOpen", {"path": DOC}))["revision"] == 1
        head = await fill(server.url, room, 2048)
        assert head == 2049

        error = await far.error("textDocument/didChange", change(DOC, 0, 1, [insert(1, 0, "f")]))
        assert error["code"] == 1013
        ack = await near.call("textDocument/didChange", change(DOC, 1, 1, [insert(1, 0, "n")]))
        assert ack["revision"] == 2050
        assert [c["text"] for c in ack["catchUp"]] == ["." * 2048]

        late = await connect(server.url, "Late", client_id="late")
        await late.call("room/join", {"roomId": room})
        error = await late.error("textDocument/didOpen", {"path": DOC, "revision": 1})
        assert error["code"] == 1013
        resumed = await late.call("textDocument/didOpen", {"path": DOC, "revision": 2})
        assert resumed["revision"] == 2050
        for c in (far, near, late):
            await c.close()
    finally:
        await server.close()
