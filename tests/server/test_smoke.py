"""The worked session of protocol.md §11 against a real server."""

from __future__ import annotations

from codesphere.app.server import RunningServer
from tests.rawclient import RawClient, insert


async def test_worked_example_of_the_protocol(server: RunningServer) -> None:
    """Two clients in utf-16 and utf-8 edit at once and end at the same text and revision."""
    ada = await RawClient.connect(server.url)
    ben = await RawClient.connect(server.url)
    await ada.initialize("Ada", "utf-16")
    await ben.initialize("Ben", "utf-8")
    room = (
        await ada.call(
            "room/create", {"name": "demo", "files": [{"path": "hi.txt", "text": "hé\n"}]}
        )
    )["roomId"]
    await ada.call("room/join", {"roomId": room})
    await ben.call("room/join", {"roomId": room})
    assert (await ada.notification("room/memberJoined"))["params"]["member"]["name"] == "Ben"
    assert (await ada.call("textDocument/didOpen", {"path": "hi.txt"}))["text"] == "hé\n"
    await ben.call("textDocument/didOpen", {"path": "hi.txt"})
    a = await ada.call(
        "textDocument/didChange",
        {"path": "hi.txt", "revision": 0, "seq": 1, "contentChanges": [insert(0, 2, "!")]},
    )
    assert a == {"revision": 1, "catchUp": []}
    b = await ben.call(
        "textDocument/didChange",
        {"path": "hi.txt", "revision": 0, "seq": 1, "contentChanges": [insert(0, 0, "😀")]},
    )
    assert b["revision"] == 2
    assert b["catchUp"] == [insert(0, 7, "!")]
    remote = await ada.notification("textDocument/remoteChange")
    assert remote["params"]["revision"] == 2
    assert remote["params"]["contentChanges"] == [insert(0, 0, "😀")]
    await ada.close()
    await ben.close()
