"""The asyncio client against a real server: editing, presence, chat, roles and reconnects.

Every test starts its own server on 127.0.0.1 (port 0) with a fresh data directory, connects
clients in different position encodings and checks that they converge on the server's text.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.tokens import TEST_SECRET, operator_token

from codesphere.app.server import RunningServer, start_server
from codesphere.client import CodeSphereClient, RemoteDocument
from codesphere.client import errors as codes

SCALE = float(os.environ.get("CODESPHERE_TIMEOUT_SCALE", "1"))

PIECES = ["a", "xy", " ", "\n", "é", "e\u0301", "中", "文字", "😀", "👩\u200d👩\u200d👧", "𝄞", "ｶ"]


def t(seconds: float) -> float:
    """A timeout scaled for slow machines."""
    return seconds * SCALE


@pytest.fixture
async def cs_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    running = await start_server(
        host="127.0.0.1", port=0, data_dir=tmp_path / "data", secret=TEST_SECRET
    )
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def clients(cs_server: RunningServer) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A factory of connected clients, all closed after the test."""
    made: list[CodeSphereClient] = []

    async def make(name: str, encoding: str = "utf-16", **kwargs: Any) -> CodeSphereClient:
        # Each client is a user of its own, whose member id is its client id.
        kwargs.setdefault("client_id", f"{name.lower()}-{len(made)}")
        kwargs.setdefault("token", operator_token(kwargs["client_id"]))
        client = await CodeSphereClient.connect(
            cs_server.url, name=name, encodings=(encoding,), **kwargs
        )
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.close(timeout=t(2))


async def converged(*docs: RemoteDocument, timeout: float = 10.0) -> str:
    """Wait until every document is settled at the same revision with the same text."""
    async with asyncio.timeout(t(timeout)):
        while True:
            for doc in docs:
                await doc.settled(t(timeout))
            if len({(d.revision, d.text) for d in docs}) == 1 and all(d.is_settled for d in docs):
                return docs[0].text
            await asyncio.sleep(0.01)


async def random_edits(doc: RemoteDocument, rng: random.Random, count: int) -> None:
    """``count`` random inserts and deletes, without waiting for acknowledgements."""
    for _ in range(count):
        length = len(doc.text)
        if length and rng.random() < 0.3:
            start = rng.randrange(length)
            end = min(length, start + rng.randint(1, 3))
            await doc.delete(start, end)
        else:
            await doc.insert(rng.randint(0, length), rng.choice(PIECES))
        if rng.random() < 0.5:
            await asyncio.sleep(rng.random() * 0.005)


async def room_with(
    owner: CodeSphereClient, files: list[dict[str, str]] | None = None, name: str = "demo"
) -> str:
    room_id = await owner.create_room(name, files)
    await owner.join(room_id)
    return room_id


# -- editing ---------------------------------------------------------------------------------


async def test_worked_example_in_utf16_and_utf8(clients: Callable[..., Awaitable[Any]]) -> None:
    """The worked session of protocol.md §11 gives both clients the same text and revision."""
    ada: CodeSphereClient = await clients("Ada", "utf-16")
    ben: CodeSphereClient = await clients("Ben", "utf-8")
    assert (ada.encoding, ben.encoding) == ("utf-16", "utf-8")
    room = await room_with(ada, [{"path": "hi.txt", "text": "hé\n"}])
    joined = await ben.join(room)
    assert joined["room"]["id"] == room
    assert [f["path"] for f in joined["files"]] == ["hi.txt"]
    member = await ada.next_notification("room/memberJoined", timeout=t(5))
    assert member["member"]["name"] == "Ben"
    assert ada.members[ben.client_id or ""]["online"] is True
    a = await ada.open("hi.txt")
    b = await ben.open("hi.txt")
    await a.insert(2, "!")
    await b.insert(0, "😀")
    assert await converged(a, b) == "😀hé!\n"
    assert await a.checksum() and await b.checksum()


@pytest.mark.parametrize("encodings", [("utf-8", "utf-16"), ("utf-16", "utf-16", "utf-32")])
async def test_concurrent_edits_converge(
    clients: Callable[..., Awaitable[Any]], encodings: tuple[str, ...]
) -> None:
    """Random concurrent edits with emoji, combining marks, ZWJ and CJK converge, checksums too."""
    people: list[CodeSphereClient] = [
        await clients(f"P{i}", enc) for i, enc in enumerate(encodings)
    ]
    room = await room_with(people[0], [{"path": "doc.txt", "text": "中文 😀 text\nline two\n"}])
    for person in people[1:]:
        await person.join(room)
    docs = [await p.open("doc.txt") for p in people]
    for round_ in range(3):
        await asyncio.gather(
            *(random_edits(d, random.Random(round_ * 10 + i), 40) for i, d in enumerate(docs))
        )
        text = await converged(*docs)
        for doc in docs:
            assert await doc.checksum()
            assert not doc.errors, doc.errors
        assert all(d.text == text for d in docs)


async def test_edit_with_explicit_changes_in_each_encoding(
    clients: Callable[..., Awaitable[Any]],
) -> None:
    """Explicit content changes in each position encoding land where they were meant to."""
    from codesphere.core.changes import ContentChange

    u8: CodeSphereClient = await clients("U8", "utf-8")
    u16: CodeSphereClient = await clients("U16", "utf-16")
    room = await room_with(u8, [{"path": "e.txt", "text": "a😀b\n"}])
    await u16.join(room)
    d8 = await u8.open("e.txt")
    d16 = await u16.open("e.txt")
    # "b" is at character 5 in utf-8 and 3 in utf-16.
    await d8.edit([ContentChange(((0, 5), (0, 6)), "B")])
    await converged(d8, d16)
    await d16.edit([ContentChange(((0, 3), (0, 4)), "文")])
    assert await converged(d8, d16) == "a😀文\n"
    await d16.edit([ContentChange(None, "whole\r\nnew\n")])
    assert await converged(d8, d16) == "whole\nnew\n"
    assert await d8.checksum()


# -- presence and chat -----------------------------------------------------------------------


async def test_presence_is_seen_by_the_other(clients: Callable[..., Awaitable[Any]]) -> None:
    """A client's selections reach the other client as presence, in its own encoding."""
    ada: CodeSphereClient = await clients("Ada", "utf-16")
    ben: CodeSphereClient = await clients("Ben", "utf-8")
    room = await room_with(ada, [{"path": "p.txt", "text": "a😀b\nsecond\n"}])
    await ben.join(room)
    await ada.open("p.txt")
    await ben.open("p.txt")
    # After the emoji (code point 2): utf-8 character 5 for Ben.
    await ada.update_presence("p.txt", [(2, 2), (4, 7)])
    seen = await ben.next_notification(
        "presence/didChange", timeout=t(5), predicate=lambda p: p["memberId"] == ada.client_id
    )
    assert seen["path"] == "p.txt" and seen["name"] == "Ada"
    assert seen["selections"][0] == {
        "anchor": {"line": 0, "character": 5},
        "active": {"line": 0, "character": 5},
    }
    assert seen["selections"][1]["active"] == {"line": 1, "character": 3}
    assert ben.presence[ada.client_id or ""]["selections"] == seen["selections"]
    await ada.update_presence(None)


async def test_chat_round_trip_and_history(clients: Callable[..., Awaitable[Any]]) -> None:
    """Chat messages reach every member and come back from history, page by page."""
    ada: CodeSphereClient = await clients("Ada")
    ben: CodeSphereClient = await clients("Ben")
    room = await room_with(ada)
    await ben.join(room, role="viewer")
    sent = await ada.send_chat("hi Ben <b>not markup</b> 😀")
    assert sent["text"] == "hi Ben <b>not markup</b> 😀" and sent["name"] == "Ada"
    got = await ben.next_notification("chat/message", timeout=t(5))
    assert got["message"] == sent
    assert (await ada.next_notification("chat/message", timeout=t(5)))["message"] == sent
    reply = await ben.send_chat("hello")
    assert reply["seq"] == sent["seq"] + 1
    for i in range(3):
        await ada.send_chat(f"m{i}")
    messages, has_more = await ben.chat_history(limit=50)
    assert [m["text"] for m in messages] == [sent["text"], "hello", "m0", "m1", "m2"]
    assert not has_more
    older, more = await ben.chat_history(before=messages[-1]["seq"], limit=2)
    assert [m["text"] for m in older] == ["m0", "m1"]
    assert more
    with pytest.raises(codes.RpcError):
        await ada.send_chat("")


# -- roles -----------------------------------------------------------------------------------


async def test_viewer_edit_is_refused_and_resynced(clients: Callable[..., Awaitable[Any]]) -> None:
    """A viewer's edit is refused with Forbidden and its text returns to the server's."""
    ada: CodeSphereClient = await clients("Ada", "utf-16")
    vic: CodeSphereClient = await clients("Vic", "utf-8")
    room = await room_with(ada, [{"path": "r.txt", "text": "read only 中文\n"}])
    await vic.join(room, role="viewer")
    assert vic.role == "viewer"
    a = await ada.open("r.txt")
    v = await vic.open("r.txt")
    await v.insert(0, "vandal ")
    assert v.text.startswith("vandal ")  # applied locally at once
    await v.settled(t(5))
    assert [e.code for e in v.errors] == [codes.FORBIDDEN]
    assert v.text == "read only 中文\n"
    assert v.lost_edits == 1
    # The owner's edits still reach the viewer afterwards.
    await a.insert(0, "still ")
    assert await converged(a, v) == "still read only 中文\n"
    assert await v.checksum()
    with pytest.raises(codes.RpcError) as refused:
        await vic.create_file("new.txt")
    assert refused.value.code == codes.FORBIDDEN


# -- files and members -----------------------------------------------------------------------


async def test_files_and_members(clients: Callable[..., Awaitable[Any]]) -> None:
    """File creation, renaming and deletion and member joins reach the other client."""
    ada: CodeSphereClient = await clients("Ada")
    ben: CodeSphereClient = await clients("Ben")
    room = await room_with(ada, [{"path": "a.txt", "text": "A"}])
    await ben.join(room)
    created = await ada.create_file("src/b.py", "x = 1\r\ny = 2\r\n")
    assert created["path"] == "src/b.py" and created["eol"] == "\r\n"
    note = await ben.next_notification("workspace/didCreateFile", timeout=t(5))
    assert note["path"] == "src/b.py"
    assert "src/b.py" in ben.workspace
    doc_a = await ada.open("src/b.py")
    doc_b = await ben.open("src/b.py")
    assert doc_b.text == "x = 1\ny = 2\n" and doc_b.eol == "\r\n"
    await ada.rename_file("src/b.py", "src/c.py")
    await ben.next_notification("workspace/didRenameFile", timeout=t(5))
    assert doc_a.path == doc_b.path == "src/c.py"
    assert ben.documents["src/c.py"] is doc_b
    await doc_b.insert(0, "# c\n")
    assert await converged(doc_a, doc_b) == "# c\nx = 1\ny = 2\n"
    assert sorted(f["path"] for f in await ben.files()) == ["a.txt", "src/c.py"]
    with pytest.raises(codes.RpcError) as exists:
        await ben.create_file("a.txt")
    assert exists.value.code == codes.ALREADY_EXISTS
    await ben.delete_file("src/c.py")
    await ada.next_notification("workspace/didDeleteFile", timeout=t(5))
    assert doc_a.closed and doc_b.closed
    assert "src/c.py" not in ada.documents
    await ben.leave()
    left = await ada.next_notification("room/memberLeft", timeout=t(5))
    assert left["memberId"] == ben.client_id
    assert ada.members[ben.client_id or ""]["online"] is False


# -- reconnecting ----------------------------------------------------------------------------


async def test_reconnect_resends_kept_edits(clients: Callable[..., Awaitable[Any]]) -> None:
    """After a reconnect, edits in flight and made offline are applied exactly once."""
    ada: CodeSphereClient = await clients("Ada", "utf-16")
    ben: CodeSphereClient = await clients("Ben", "utf-8")
    room = await room_with(ada, [{"path": "k.txt", "text": "base 中\n"}])
    await ben.join(room)
    a = await ada.open("k.txt")
    b = await ben.open("k.txt")
    client_id = ada.client_id

    # An edit sent just before the connection drops: it may or may not be committed.
    await a.insert(0, "😀")
    connection = ada.connection
    assert connection is not None
    await connection.close()
    assert not ada.connected
    # Edits while disconnected are applied and kept, never refused.
    await a.insert(len(a.text), "offline 文\n")
    await a.delete(1, 3)
    assert a.text == "😀se 中\noffline 文\n"
    assert a.unacked >= 2
    # Meanwhile the other client edits too.
    await b.insert(len(b.text), "ben was here\n")
    await b.settled(t(5))

    await ada.reconnect()
    assert ada.client_id == client_id
    assert ada.connected and ada.room is not None and ada.room["id"] == room
    text = await converged(a, b)
    assert await a.checksum() and await b.checksum()
    assert text.count("😀") == 1  # the resent edit is not applied twice
    assert "offline 文\n" in text and "ben was here\n" in text
    assert text.startswith("😀se 中\n")
    assert not a.errors, a.errors
    # Editing goes on normally after the reconnect.
    await a.insert(0, ">")
    await b.insert(len(b.text), "<")
    final = await converged(a, b)
    assert final.startswith(">") and final.endswith("<")


async def test_close_is_final_and_edits_are_durable(
    clients: Callable[..., Awaitable[Any]],
) -> None:
    """A closed client cannot reconnect, and its acknowledged edits are there for others."""
    ada: CodeSphereClient = await clients("Ada", "utf-8")
    room = await room_with(ada, [{"path": "s.txt", "text": "x"}])
    a = await ada.open("s.txt")
    await a.insert(1, "y")
    await a.settled(t(5))
    await ada.close()
    assert ada.close_code == 1000
    with pytest.raises(codes.ClientError):
        await ada.reconnect()
    ben: CodeSphereClient = await clients("Ben", "utf-32")
    await ben.join(room)
    b = await ben.open("s.txt")
    assert b.text == "xy"


async def test_a_new_process_reusing_a_client_id_continues_its_seq(
    clients: Callable[..., Awaitable[Any]],
) -> None:
    """A client that reuses a saved clientId starts after the server's lastSeq, so its edits
    are applied instead of being taken for resends."""
    ada: CodeSphereClient = await clients("Ada", "utf-16")
    room = await room_with(ada, [{"path": "s.txt", "text": ""}])
    a = await ada.open("s.txt")
    for word in ("one ", "two ", "three "):
        await a.insert(len(a.text), word)
    await a.settled(t(5))
    saved_id = ada.client_id
    await ada.close()
    again: CodeSphereClient = await clients("Ada", "utf-16", client_id=saved_id)
    await again.join(room)
    a2 = await again.open("s.txt")
    await a2.insert(len(a2.text), "four")
    await a2.settled(t(5))
    assert not a2.errors, a2.errors
    assert a2.text == "one two three four"
    assert await a2.checksum()
