"""Rooms, members, files, roles, chat and presence, end to end over real WebSockets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from codesphere.app.server import RunningServer
from tests.conftest import timeout
from tests.rawclient import RawClient, insert, pos
from tests.server.support import change, connect, create_room, sha256

NOT_IN_ROOM = 1001
DOCUMENT_NOT_FOUND = 1003
FORBIDDEN = 1005
DOCUMENT_NOT_OPEN = 1006
INVALID_REVISION = 1012


def sel(anchor: tuple[int, int], active: tuple[int, int]) -> dict[str, Any]:
    """A presence selection."""
    return {"anchor": pos(*anchor), "active": pos(*active)}


async def settle(*clients: RawClient) -> None:
    """Round-trip a ping on each client, so everything sent to it before has arrived."""
    for c in clients:
        assert await c.call("$/ping") == {}


def notifications(client: RawClient, method: str) -> list[dict[str, Any]]:
    """The params of the notifications called ``method`` in the inbox (removed from it)."""
    found = [m for m in client.inbox if m.get("method") == method]
    client.inbox = [m for m in client.inbox if m.get("method") != method]
    return [m["params"] for m in found]


# -- rooms and members -----------------------------------------------------------------------


async def test_created_files_keep_their_eol_and_get_canonical_text(server: RunningServer) -> None:
    """Files given at room/create are listed sorted at revision 0; CRLF files get eol "\\r\\n"
    and "\\n" text."""
    ada = await connect(server.url, "Ada")
    room = await create_room(
        ada,
        {
            "win.txt": "one\r\ntwo\r\n",
            "a.py": "x = 1\n",
            "mostly-crlf.txt": "a\r\nb\nc\r\n",
            "mostly-lf.txt": "a\nb\nc\r\n",
            "empty": "",
            "dir/sub/deep.md": "# t\r\n",
        },
    )
    joined = await ada.call("room/join", {"roomId": room})
    assert joined["room"] == {"id": room, "name": "room"}
    assert joined["files"] == [
        {"path": "a.py", "revision": 0, "eol": "\n"},
        {"path": "dir/sub/deep.md", "revision": 0, "eol": "\r\n"},
        {"path": "empty", "revision": 0, "eol": "\n"},
        {"path": "mostly-crlf.txt", "revision": 0, "eol": "\r\n"},
        {"path": "mostly-lf.txt", "revision": 0, "eol": "\n"},
        {"path": "win.txt", "revision": 0, "eol": "\r\n"},
    ]
    expected = {
        "win.txt": ("one\ntwo\n", "\r\n"),
        "mostly-crlf.txt": ("a\nb\nc\n", "\r\n"),
        "mostly-lf.txt": ("a\nb\nc\n", "\n"),
        "empty": ("", "\n"),
        "dir/sub/deep.md": ("# t\n", "\r\n"),
    }
    for path, (text, eol) in expected.items():
        opened = await ada.call("textDocument/didOpen", {"path": path})
        assert opened == {"path": path, "text": text, "revision": 0, "eol": eol, "lastSeq": 0}
        checksum = await ada.call("textDocument/checksum", {"path": path})
        assert checksum == {"revision": 0, "sha256": sha256(text)}
    assert (await ada.call("workspace/files"))["files"] == joined["files"]
    await ada.close()


async def test_join_and_leave_are_announced_and_members_show_who_is_online(
    server: RunningServer,
) -> None:
    """room/join announces memberJoined to the others; leaving or disconnecting announces
    memberLeft; the members list keeps everyone who ever joined, with online flags."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"f.txt": "x"})
    joined = await ada.call("room/join", {"roomId": room})
    assert joined["you"] == {
        "memberId": "ada",
        "name": "Ada",
        "color": joined["you"]["color"],
        "role": "owner",
        "online": True,
    }
    assert joined["members"] == [joined["you"]]

    ben = await connect(server.url, "Ben", client_id="ben")
    joined_b = await ben.call("room/join", {"roomId": room})
    assert joined_b["you"]["role"] == "editor"
    assert joined_b["you"]["color"] != joined["you"]["color"]
    by_id = {m["memberId"]: m for m in joined_b["members"]}
    assert by_id == {"ada": joined["you"], "ben": joined_b["you"]}
    announced = await ada.notification("room/memberJoined")
    assert announced["params"] == {"member": joined_b["you"]}

    assert await ben.call("room/leave") is None
    assert (await ada.notification("room/memberLeft"))["params"] == {"memberId": "ben"}
    assert (await ben.error("workspace/files"))["code"] == NOT_IN_ROOM

    cy = await connect(server.url, "Cy", client_id="cy")
    members = {m["memberId"]: m for m in (await cy.call("room/join", {"roomId": room}))["members"]}
    assert {k: m["online"] for k, m in members.items()} == {"ada": True, "ben": False, "cy": True}
    assert members["ben"]["name"] == "Ben"
    assert (await ada.notification("room/memberJoined"))["params"]["member"]["memberId"] == "cy"

    await cy.close()  # a disconnect counts as leaving
    assert (await ada.notification("room/memberLeft"))["params"] == {"memberId": "cy"}

    # Ben comes back: he is the same member again, announced again.
    again = await ben.call("room/join", {"roomId": room})
    assert again["you"] == joined_b["you"]
    assert (await ada.notification("room/memberJoined"))["params"]["member"] == joined_b["you"]
    await settle(ada, ben)
    assert not [m for m in ben.inbox if m.get("method") == "room/memberJoined"]
    await ada.close()
    await ben.close()


async def test_joining_another_room_leaves_the_first(server: RunningServer) -> None:
    """A connection is in one room at a time: joining a second leaves the first (memberLeft)."""
    ada = await connect(server.url, "Ada", client_id="ada")
    first = await create_room(ada, {"one.txt": "1"}, name="first")
    second = await create_room(ada, {"two.txt": "2"}, name="second")
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": first})
    await ada.call("room/join", {"roomId": first})
    await ben.notification("room/memberJoined")
    await ada.call("textDocument/didOpen", {"path": "one.txt"})
    joined = await ada.call("room/join", {"roomId": second})
    assert joined["room"]["name"] == "second"
    assert [f["path"] for f in joined["files"]] == ["two.txt"]
    assert (await ben.notification("room/memberLeft"))["params"] == {"memberId": "ada"}
    # one.txt is gone from Ada's view: it is not in her room any more.
    error = await ada.error("textDocument/didChange", change("one.txt", 0, 1, [insert(0, 0, "x")]))
    assert error["code"] == DOCUMENT_NOT_FOUND
    await ada.close()
    await ben.close()


# -- files -----------------------------------------------------------------------------------


async def test_create_rename_delete_are_announced_to_the_others(server: RunningServer) -> None:
    """createFile, renameFile and deleteFile answer the caller and notify every other member."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"keep.txt": "k"})
    await ada.call("room/join", {"roomId": room})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})

    created = await ada.call("workspace/createFile", {"path": "src/new.py", "text": "a\r\nb\r\n"})
    assert created == {"path": "src/new.py", "revision": 0, "eol": "\r\n"}
    seen = await ben.notification("workspace/didCreateFile")
    assert seen["params"] == {"path": "src/new.py", "revision": 0, "eol": "\r\n", "memberId": "ada"}
    plain = await ada.call("workspace/createFile", {"path": "no-text"})
    assert plain == {"path": "no-text", "revision": 0, "eol": "\n"}
    await ben.notification("workspace/didCreateFile")
    opened = await ben.call("textDocument/didOpen", {"path": "src/new.py"})
    assert (opened["text"], opened["eol"]) == ("a\nb\n", "\r\n")
    assert (await ben.call("textDocument/didOpen", {"path": "no-text"}))["text"] == ""

    assert (
        await ada.call("workspace/renameFile", {"path": "src/new.py", "newPath": "lib/m.py"})
        is None
    )
    seen = await ben.notification("workspace/didRenameFile")
    assert seen["params"] == {"path": "src/new.py", "newPath": "lib/m.py", "memberId": "ada"}

    assert await ada.call("workspace/deleteFile", {"path": "no-text"}) is None
    seen = await ben.notification("workspace/didDeleteFile")
    assert seen["params"] == {"path": "no-text", "memberId": "ada"}

    files = (await ben.call("workspace/files"))["files"]
    assert files == [
        {"path": "keep.txt", "revision": 0, "eol": "\n"},
        {"path": "lib/m.py", "revision": 0, "eol": "\r\n"},
    ]
    # The author is not told about its own changes.
    await settle(ada)
    assert not [m for m in ada.inbox if m.get("method", "").startswith("workspace/")]
    await ada.close()
    await ben.close()


async def test_rename_keeps_the_document_open_and_editable(server: RunningServer) -> None:
    """After a rename every connection that had the document open edits it under the new
    path, with its revision and text kept; the old path is gone."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    room = await create_room(ada, {"old.txt": "hello\n"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "old.txt"})
    ben = await connect(server.url, "Ben", "utf-8", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "old.txt"})
    r1 = await ada.call("textDocument/didChange", change("old.txt", 0, 1, [insert(0, 5, ",")]))
    assert r1["revision"] == 1
    await ben.notification("textDocument/remoteChange")

    await ada.call("workspace/renameFile", {"path": "old.txt", "newPath": "dir/new.txt"})
    await ben.notification("workspace/didRenameFile")
    r2 = await ben.call(
        "textDocument/didChange", change("dir/new.txt", 1, 1, [insert(0, 6, " world")])
    )
    assert r2 == {"revision": 2, "catchUp": []}
    remote = await ada.notification("textDocument/remoteChange")
    assert remote["params"] == {
        "path": "dir/new.txt",
        "revision": 2,
        "memberId": "ben",
        "contentChanges": [insert(0, 6, " world")],
    }
    r3 = await ada.call("textDocument/didChange", change("dir/new.txt", 2, 2, [insert(0, 12, "!")]))
    assert r3 == {"revision": 3, "catchUp": []}
    text = "hello, world!\n"
    for c in (ada, ben):
        checksum = await c.call("textDocument/checksum", {"path": "dir/new.txt"})
        assert checksum == {"revision": 3, "sha256": sha256(text)}
        error = await c.error(
            "textDocument/didChange", change("old.txt", 3, 9, [insert(0, 0, "x")])
        )
        assert error["code"] == DOCUMENT_NOT_FOUND
    presence = {"path": "dir/new.txt", "revision": 3, "selections": [sel((0, 0), (0, 5))]}
    assert await ada.call("presence/update", presence) is None
    seen = await ben.notification("presence/didChange")
    assert seen["params"]["path"] == "dir/new.txt"
    # The old path is free again, for a new and unrelated document.
    await ada.call("workspace/createFile", {"path": "old.txt", "text": "fresh"})
    cy = await connect(server.url, "Cy")
    await cy.call("room/join", {"roomId": room})
    assert (await cy.call("textDocument/didOpen", {"path": "dir/new.txt"}))["text"] == text
    assert (await cy.call("textDocument/didOpen", {"path": "old.txt"}))["text"] == "fresh"
    files = (await cy.call("workspace/files"))["files"]
    assert files == [
        {"path": "dir/new.txt", "revision": 3, "eol": "\n"},
        {"path": "old.txt", "revision": 0, "eol": "\n"},
    ]
    for c in (ada, ben, cy):
        await c.close()


async def test_delete_closes_the_document_for_everyone(server: RunningServer) -> None:
    """After a delete the path is unknown to everyone; a new file at that path is a new
    document that must be opened before it is edited."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"doomed.txt": "bye\n"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "doomed.txt"})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "doomed.txt"})

    assert await ada.call("workspace/deleteFile", {"path": "doomed.txt"}) is None
    assert (await ben.notification("workspace/didDeleteFile"))["params"]["path"] == "doomed.txt"
    for c in (ada, ben):
        edit = change("doomed.txt", 0, 1, [insert(0, 0, "x")])
        assert (await c.error("textDocument/didChange", edit))["code"] == DOCUMENT_NOT_FOUND
        error = await c.error("textDocument/checksum", {"path": "doomed.txt"})
        assert error["code"] == DOCUMENT_NOT_FOUND
        assert (await c.call("workspace/files"))["files"] == []

    await ada.call("workspace/createFile", {"path": "doomed.txt", "text": "again"})
    await ben.notification("workspace/didCreateFile")
    await ada.call("textDocument/didOpen", {"path": "doomed.txt"})
    edit = change("doomed.txt", 0, 1, [insert(0, 0, "x")])
    assert (await ben.error("textDocument/didChange", edit))["code"] == DOCUMENT_NOT_OPEN
    assert (await ada.call("textDocument/didChange", edit))["revision"] == 1
    await settle(ben)
    assert not notifications(ben, "textDocument/remoteChange")  # Ben has not opened it
    assert (await ben.call("textDocument/didOpen", {"path": "doomed.txt"}))["text"] == "xagain"
    await ada.close()
    await ben.close()


async def test_did_close_stops_edits_and_presence(server: RunningServer) -> None:
    """After didClose a connection receives no more of the document's edits or presence, and
    the others see its presence go."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"f.txt": "abc"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "f.txt"})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "f.txt"})
    await ben.call(
        "presence/update", {"path": "f.txt", "revision": 0, "selections": [sel((0, 1), (0, 1))]}
    )
    assert (await ada.notification("presence/didChange"))["params"]["path"] == "f.txt"

    await ben.notify("textDocument/didClose", {"path": "f.txt"})
    gone = await ada.notification("presence/didChange")
    assert gone["params"]["memberId"] == "ben"
    assert (gone["params"]["path"], gone["params"]["selections"]) == (None, [])
    await ada.call("textDocument/didChange", change("f.txt", 0, 1, [insert(0, 3, "d")]))
    await ada.call(
        "presence/update", {"path": "f.txt", "revision": 1, "selections": [sel((0, 4), (0, 4))]}
    )
    await settle(ben)
    await asyncio.sleep(0.1)
    await settle(ben)
    assert not notifications(ben, "textDocument/remoteChange")
    assert not notifications(ben, "presence/didChange")
    await ada.close()
    await ben.close()


# -- edits -----------------------------------------------------------------------------------


async def test_edits_reach_the_others_in_their_encoding_not_the_author(
    server: RunningServer,
) -> None:
    """An edit is acknowledged to its author and sent to every other opener as remoteChange in
    that opener's encoding; clients of one encoding receive the same message."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    room = await create_room(ada, {"e.txt": "a😀é\n"})
    others = []
    for name, encoding in (("b8", "utf-8"), ("c8", "utf-8"), ("d32", "utf-32"), ("e16", "utf-16")):
        c = await connect(server.url, name, encoding, client_id=name)
        await c.call("room/join", {"roomId": room})
        await c.call("textDocument/didOpen", {"path": "e.txt"})
        others.append(c)
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "e.txt"})
    # Insert after é: utf-16 character 4 on line 0.
    ack = await ada.call("textDocument/didChange", change("e.txt", 0, 1, [insert(0, 4, "!")]))
    assert ack == {"revision": 1, "catchUp": []}
    expected_character = {"b8": 7, "c8": 7, "d32": 3, "e16": 4}
    received = {}
    for c, name in zip(others, expected_character, strict=True):
        remote = (await c.notification("textDocument/remoteChange"))["params"]
        assert remote == {
            "path": "e.txt",
            "revision": 1,
            "memberId": "ada",
            "contentChanges": [insert(0, expected_character[name], "!")],
        }
        received[name] = remote
    assert received["b8"] == received["c8"]
    await settle(ada)
    assert not notifications(ada, "textDocument/remoteChange")
    for c in [ada, *others]:
        checksum = await c.call("textDocument/checksum", {"path": "e.txt"})
        assert checksum == {"revision": 1, "sha256": sha256("a😀é!\n")}
        await c.close()


async def test_checksum_at_head_and_at_older_revisions(server: RunningServer) -> None:
    """textDocument/checksum is the SHA-256 of the UTF-8 text at the head or at any given
    revision; a revision ahead of the head is InvalidRevision (1012)."""
    ada = await connect(server.url, "Ada", "utf-32")
    room = await create_room(ada, {"c.txt": "ß\n"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "c.txt"})
    texts = ["ß\n"]
    revision = 0
    for i, piece in enumerate(["😀", "é", "x\ny", "\u200b"], start=1):
        ack = await ada.call(
            "textDocument/didChange", change("c.txt", revision, i, [insert(0, 0, piece)])
        )
        revision = ack["revision"]
        texts.append(piece + texts[-1])
    assert await ada.call("textDocument/checksum", {"path": "c.txt"}) == {
        "revision": 4,
        "sha256": sha256(texts[-1]),
    }
    for r, text in enumerate(texts):
        result = await ada.call("textDocument/checksum", {"path": "c.txt", "revision": r})
        assert result == {"revision": r, "sha256": sha256(text)}
    error = await ada.error("textDocument/checksum", {"path": "c.txt", "revision": 5})
    assert error["code"] == INVALID_REVISION
    await ada.close()


# -- roles -----------------------------------------------------------------------------------


async def test_viewer_is_forbidden_to_change_but_may_open_chat_and_show_presence(
    server: RunningServer,
) -> None:
    """A viewer gets Forbidden (1005) for didChange, createFile, renameFile and deleteFile and
    nothing changes; it can open, follow edits, chat and set its presence."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    room = await create_room(ada, {"v.txt": "see 😀\n", "other.txt": "o"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "v.txt"})
    vic = await connect(server.url, "Vic", "utf-8", client_id="vic")
    joined = await vic.call("room/join", {"roomId": room, "role": "viewer"})
    assert joined["you"]["role"] == "viewer"
    assert (await ada.notification("room/memberJoined"))["params"]["member"]["role"] == "viewer"
    opened = await vic.call("textDocument/didOpen", {"path": "v.txt"})
    assert opened["text"] == "see 😀\n"

    refused: list[tuple[str, dict[str, Any]]] = [
        ("textDocument/didChange", change("v.txt", 0, 1, [insert(0, 0, "x")])),
        ("textDocument/didChange", change("v.txt", 0, 2, [{"text": ""}])),
        ("workspace/createFile", {"path": "new.txt", "text": "x"}),
        ("workspace/renameFile", {"path": "v.txt", "newPath": "w.txt"}),
        ("workspace/deleteFile", {"path": "other.txt"}),
    ]
    for name, params in refused:
        assert (await vic.error(name, params))["code"] == FORBIDDEN, name
    checksum = await ada.call("textDocument/checksum", {"path": "v.txt"})
    assert checksum == {"revision": 0, "sha256": sha256("see 😀\n")}
    assert [f["path"] for f in (await ada.call("workspace/files"))["files"]] == [
        "other.txt",
        "v.txt",
    ]
    await settle(ada)
    assert not notifications(ada, "textDocument/remoteChange")
    assert not [m for m in ada.inbox if m.get("method", "").startswith("workspace/")]

    # A viewer follows the others' edits.
    await ada.call("textDocument/didChange", change("v.txt", 0, 1, [insert(0, 6, "!")]))
    remote = await vic.notification("textDocument/remoteChange")
    assert remote["params"]["contentChanges"] == [insert(0, 8, "!")]  # after 😀, in bytes
    # It shows its cursor: after 😀 (byte 8) is utf-16 character 6 for Ada.
    presence = {"path": "v.txt", "revision": 1, "selections": [sel((0, 8), (0, 8))]}
    assert await vic.call("presence/update", presence) is None
    seen = await ada.notification("presence/didChange")
    assert seen["params"]["memberId"] == "vic"
    assert seen["params"]["selections"] == [sel((0, 6), (0, 6))]
    # And chats.
    message = (await vic.call("chat/send", {"text": "looks good"}))["message"]
    assert (await ada.notification("chat/message"))["params"]["message"] == message
    # Its refused edits did not disturb the document for anyone.
    assert (await vic.call("textDocument/checksum", {"path": "v.txt"}))["sha256"] == sha256(
        "see 😀!\n"
    )
    await ada.close()
    await vic.close()


# -- chat ------------------------------------------------------------------------------------


async def test_chat_message_goes_to_everyone_including_the_sender(server: RunningServer) -> None:
    """chat/send answers the message and every connection in the room, the sender included,
    receives it as chat/message; text is kept verbatim."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {})
    await ada.call("room/join", {"roomId": room})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    outsider = await connect(server.url, "Out")
    text = "<b>hi</b> & 😀\n\r\x00 \u202e"
    before = int(time.time() * 1000)
    message = (await ada.call("chat/send", {"text": text}))["message"]
    after = int(time.time() * 1000)
    assert message["text"] == text
    assert message["seq"] == 1
    assert message["memberId"] == "ada"
    assert message["name"] == "Ada"
    assert isinstance(message["id"], str) and message["id"]
    assert before - 1000 <= message["timestamp"] <= after + 1000
    # The sender's own copy came before the answer, as in protocol.md §11.
    assert notifications(ada, "chat/message") == [{"message": message}]
    assert (await ben.notification("chat/message"))["params"] == {"message": message}
    second = (await ben.call("chat/send", {"text": "x"}))["message"]
    assert second["seq"] == 2 and second["id"] != message["id"]
    assert (await ada.notification("chat/message"))["params"]["message"] == second
    await settle(outsider)
    assert not outsider.inbox
    for c in (ada, ben, outsider):
        await c.close()


async def test_chat_history_pages_with_before_and_limit(server: RunningServer) -> None:
    """chat/history returns the newest ``limit`` (default 50) messages before ``before``,
    ascending, with hasMore telling whether older ones remain."""
    ada = await connect(server.url, "Ada")
    room = await create_room(ada, {})
    await ada.call("room/join", {"roomId": room})
    assert await ada.call("chat/history", {}) == {"messages": [], "hasMore": False}
    for i in range(1, 61):
        assert (await ada.call("chat/send", {"text": f"m{i}"}))["message"]["seq"] == i

    def seqs(result: dict[str, Any]) -> list[int]:
        return [m["seq"] for m in result["messages"]]

    default = await ada.call("chat/history", {})
    assert (seqs(default), default["hasMore"]) == (list(range(11, 61)), True)
    assert [m["text"] for m in default["messages"]] == [f"m{i}" for i in range(11, 61)]
    assert await ada.call("chat/history") == default
    cases = [
        ({"limit": 5}, list(range(56, 61)), True),
        ({"before": 11}, list(range(1, 11)), False),
        ({"before": 11, "limit": 10}, list(range(1, 11)), False),
        ({"before": 11, "limit": 9}, list(range(2, 11)), True),
        ({"before": 3, "limit": 5}, [1, 2], False),
        ({"before": 1}, [], False),
        ({"before": 1000}, list(range(11, 61)), True),
        ({"limit": 200}, list(range(1, 61)), False),
        ({"limit": 60}, list(range(1, 61)), False),
        ({"limit": 59}, list(range(2, 61)), True),
        ({"limit": 1}, [60], True),
    ]
    for params, expected, more in cases:
        result = await ada.call("chat/history", params)
        assert (seqs(result), result["hasMore"]) == (expected, more), params
    # Paging back from the newest, 7 at a time, visits every message once.
    seen: list[int] = []
    page = await ada.call("chat/history", {"limit": 7})
    while True:
        seen = seqs(page) + seen
        if not page["hasMore"]:
            break
        page = await ada.call("chat/history", {"limit": 7, "before": page["messages"][0]["seq"]})
    assert seen == list(range(1, 61))
    await ada.close()


# -- presence --------------------------------------------------------------------------------


async def test_presence_reaches_the_others_in_their_encoding(server: RunningServer) -> None:
    """presence/update reaches every other opener with its member, colour, head revision and
    the selections converted to the receiver's encoding."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    room = await create_room(ada, {"p.txt": "a😀b\nxé\n", "q.txt": ""})
    joined = await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "p.txt"})
    ben = await connect(server.url, "Ben", "utf-8", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "p.txt"})
    cy = await connect(server.url, "Cy", "utf-32", client_id="cy")
    await cy.call("room/join", {"roomId": room})
    await cy.call("textDocument/didOpen", {"path": "p.txt"})
    elsewhere = await connect(server.url, "Dee", "utf-16", client_id="dee")
    await elsewhere.call("room/join", {"roomId": room})
    await elsewhere.call("textDocument/didOpen", {"path": "q.txt"})

    # Anchor after "a", cursor after 😀 on line 0; a second cursor after é on line 1.
    selections = [sel((0, 1), (0, 3)), sel((1, 2), (1, 2))]
    await ada.call("presence/update", {"path": "p.txt", "revision": 0, "selections": selections})
    base = {"memberId": "ada", "name": "Ada", "color": joined["you"]["color"], "path": "p.txt"}
    seen_b = (await ben.notification("presence/didChange"))["params"]
    assert seen_b == base | {
        "revision": 0,
        "selections": [sel((0, 1), (0, 5)), sel((1, 3), (1, 3))],
    }
    seen_c = (await cy.notification("presence/didChange"))["params"]
    assert seen_c == base | {
        "revision": 0,
        "selections": [sel((0, 1), (0, 2)), sel((1, 2), (1, 2))],
    }

    # Ben inserts before Ada's cursor; Ada, still at revision 0, moves her cursor: the others
    # get it at the head (revision 1), shifted past Ben's text.
    await ben.call("textDocument/didChange", change("p.txt", 0, 1, [insert(0, 0, "é")]))
    await ada.call(
        "presence/update", {"path": "p.txt", "revision": 0, "selections": [sel((0, 4), (0, 4))]}
    )
    moved = (await cy.notification("presence/didChange"))["params"]
    while moved["selections"] != [sel((0, 4), (0, 4))]:
        moved = (await cy.notification("presence/didChange"))["params"]
    assert moved["revision"] == 1
    seen_b = (await ben.notification("presence/didChange"))["params"]
    while seen_b["revision"] != 1 or seen_b["selections"][0]["active"] != pos(0, 8):
        seen_b = (await ben.notification("presence/didChange"))["params"]

    # Looking at no document.
    await ada.call("presence/update", {"path": None})
    cleared = (await cy.notification("presence/didChange"))["params"]
    while cleared["path"] is not None:
        cleared = (await cy.notification("presence/didChange"))["params"]
    assert cleared["selections"] == [] and cleared["memberId"] == "ada"
    await settle(elsewhere)
    assert not notifications(elsewhere, "presence/didChange")
    for c in (ada, ben, cy, elsewhere):
        await c.close()


@pytest.mark.parametrize("pause", [0.0, 0.005], ids=["at-once", "200-per-second"])
async def test_presence_is_throttled_and_the_newest_wins(
    server: RunningServer, pause: float
) -> None:
    """100 presence updates sent as fast as possible reach another member at most ~20 times a
    second, and the last presence it receives is the newest selection."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    line = "x" * 100
    room = await create_room(ada, {"t.txt": line + "\n"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "t.txt"})
    ben = await connect(server.url, "Ben", "utf-8", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "t.txt"})

    started = time.monotonic()
    for i in range(100):
        params = {"path": "t.txt", "revision": 0, "selections": [sel((0, i), (0, i + 1))]}
        message = {"jsonrpc": "2.0", "id": 1000 + i, "method": "presence/update", "params": params}
        await ada.send_raw(orjson.dumps(message).decode())
        if pause:
            await asyncio.sleep(pause)
    answers = 0
    while answers < 100:
        m = await ada.recv()
        if m.get("id", 0) >= 1000:
            assert m == {"jsonrpc": "2.0", "id": m["id"], "result": None}
            answers += 1
    newest = [sel((0, 99), (0, 100))]
    received: list[dict[str, Any]] = []
    while not received or received[-1]["selections"] != newest:
        received.append((await ben.notification("presence/didChange", wait=2))["params"])
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.2)  # nothing older may arrive after the newest
    await settle(ben)
    late = notifications(ben, "presence/didChange")
    assert all(p["selections"] == newest for p in late), late
    count = len(received) + len(late)
    assert count <= 20 * elapsed + 2, (count, elapsed)
    assert count < 100
    if pause:  # coalesced, not starved: updates over half a second give several flushes
        assert count >= 3
    await ada.close()
    await ben.close()


async def test_late_opener_receives_the_presence_of_the_others(server: RunningServer) -> None:
    """On didOpen a connection receives, after the result, the current presence of everyone
    else in that document (in its own encoding) and of nobody else."""
    ada = await connect(server.url, "Ada", "utf-16", client_id="ada")
    room = await create_room(ada, {"l.txt": "😀😀\n", "m.txt": "m"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "l.txt"})
    await ada.call(
        "presence/update", {"path": "l.txt", "revision": 0, "selections": [sel((0, 2), (0, 4))]}
    )
    cy = await connect(server.url, "Cy", "utf-16", client_id="cy")  # open, no presence
    await cy.call("room/join", {"roomId": room})
    await cy.call("textDocument/didOpen", {"path": "l.txt"})
    dee = await connect(server.url, "Dee", "utf-16", client_id="dee")  # elsewhere
    await dee.call("room/join", {"roomId": room})
    await dee.call("textDocument/didOpen", {"path": "m.txt"})
    await dee.call(
        "presence/update", {"path": "m.txt", "revision": 0, "selections": [sel((0, 1), (0, 1))]}
    )

    ben = await connect(server.url, "Ben", "utf-8", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    opened = await ben.call("textDocument/didOpen", {"path": "l.txt"})
    assert opened["text"] == "😀😀\n"
    assert not notifications(ben, "presence/didChange"), "presence must follow the result"
    seen = (await ben.notification("presence/didChange"))["params"]
    assert seen["memberId"] == "ada"
    assert (seen["path"], seen["revision"]) == ("l.txt", 0)
    assert seen["selections"] == [sel((0, 4), (0, 8))]
    await settle(ben)
    await asyncio.sleep(0.05)
    await settle(ben)
    assert not notifications(ben, "presence/didChange")
    for c in (ada, ben, cy, dee):
        await c.close()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
async def test_presence_position_errors_never_require_a_resync(
    server: RunningServer, encoding: str
) -> None:
    """A presence position inside a character is InvalidPosition (1010), and the client's
    edits still work afterwards (presence errors never require a resync)."""
    ada = await connect(server.url, "Ada", encoding)
    room = await create_room(ada, {"s.txt": "😀\n"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "s.txt"})
    bad = {"utf-8": 2, "utf-16": 1, "utf-32": 2}[encoding]
    for selection in (sel((0, bad), (0, bad)), sel((0, 0), (5, 0)), sel((1, 1), (0, 0))):
        params = {"path": "s.txt", "revision": 0, "selections": [selection]}
        assert (await ada.error("presence/update", params))["code"] == 1010
    end = {"utf-8": 4, "utf-16": 2, "utf-32": 1}[encoding]
    ack = await ada.call("textDocument/didChange", change("s.txt", 0, 1, [insert(0, end, "!")]))
    assert ack == {"revision": 1, "catchUp": []}
    await ada.close()


async def test_members_joining_concurrently_are_all_listed(server: RunningServer) -> None:
    """Many clients joining at once are each announced and all appear in the members list."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"f.txt": ""})
    await ada.call("room/join", {"roomId": room})
    clients = [await connect(server.url, f"m{i}", client_id=f"m{i}") for i in range(12)]
    await asyncio.wait_for(
        asyncio.gather(*(c.call("room/join", {"roomId": room}) for c in clients)), timeout(10)
    )
    announced = {
        (await ada.notification("room/memberJoined"))["params"]["member"]["memberId"]
        for _ in clients
    }
    assert announced == {f"m{i}" for i in range(12)}
    members = (await ada.call("room/join", {"roomId": room}))["members"]
    assert {m["memberId"] for m in members} == {"ada"} | announced
    assert all(m["online"] for m in members)
    colors = [m["color"] for m in members]
    assert len(set(colors)) == len(colors)  # 13 members, 14 colours
    for c in [ada, *clients]:
        await c.close()


@pytest.mark.parametrize("how", ["leave", "disconnect"])
async def test_leaving_clears_presence_for_the_others(server: RunningServer, how: str) -> None:
    """When a member leaves or its socket closes, the others with the document open see its
    presence cleared (path null) and then room/memberLeft."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"f.txt": "abc"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "f.txt"})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    await ben.call("textDocument/didOpen", {"path": "f.txt"})
    params = {"path": "f.txt", "revision": 0, "selections": [sel((0, 2), (0, 2))]}
    await ben.call("presence/update", params)
    assert (await ada.notification("presence/didChange"))["params"]["path"] == "f.txt"
    if how == "leave":
        await ben.call("room/leave")
    else:
        await ben.close()
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["method"] != "room/memberLeft":
        m = await ada.recv()
        if m.get("method") in ("presence/didChange", "room/memberLeft"):
            seen.append(m)
    assert [m["method"] for m in seen] == ["presence/didChange", "room/memberLeft"]
    cleared = seen[0]["params"]
    assert (cleared["memberId"], cleared["path"], cleared["selections"]) == ("ben", None, [])
    assert seen[1]["params"] == {"memberId": "ben"}
    await ada.close()
    if how == "leave":
        await ben.close()


async def test_moving_to_another_document_clears_presence_in_the_first(
    server: RunningServer,
) -> None:
    """Those in the document a member looked at see it leave (path null) when it moves on;
    those in the new one see it arrive."""
    ada = await connect(server.url, "Ada", client_id="ada")
    room = await create_room(ada, {"one.txt": "abc", "two.txt": "xyz"})
    await ada.call("room/join", {"roomId": room})
    await ada.call("textDocument/didOpen", {"path": "one.txt"})
    cy = await connect(server.url, "Cy", client_id="cy")
    await cy.call("room/join", {"roomId": room})
    await cy.call("textDocument/didOpen", {"path": "two.txt"})
    ben = await connect(server.url, "Ben", client_id="ben")
    await ben.call("room/join", {"roomId": room})
    for path in ("one.txt", "two.txt"):
        await ben.call("textDocument/didOpen", {"path": path})
    here = {"path": "one.txt", "revision": 0, "selections": [sel((0, 1), (0, 1))]}
    await ben.call("presence/update", here)
    assert (await ada.notification("presence/didChange"))["params"]["path"] == "one.txt"
    there = {"path": "two.txt", "revision": 0, "selections": [sel((0, 2), (0, 2))]}
    await ben.call("presence/update", there)
    left = (await ada.notification("presence/didChange"))["params"]
    assert (left["memberId"], left["path"], left["selections"]) == ("ben", None, [])
    arrived = (await cy.notification("presence/didChange"))["params"]
    assert (arrived["memberId"], arrived["path"]) == ("ben", "two.txt")
    for client in (ada, ben, cy):
        await client.close()
