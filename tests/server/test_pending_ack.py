"""A client awaiting an acknowledgement is not sent the edits that acknowledgement brings."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from codesphere.app.server import RunningServer
from codesphere.ordering.base import Sequencer
from codesphere.storage.base import OpRecord
from tests.conftest import timeout
from tests.rawclient import RawClient, insert
from tests.server.support import change, connect, create_room, sha256


class GatedSequencer:
    """Holds every append until the test opens the gate, then lets them through in order."""

    def __init__(self, inner: Sequencer) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.held = 0

    async def append(
        self, room_id: str, doc_id: str, expected_head: int, ops: list[OpRecord]
    ) -> None:
        self.held += 1
        await self.gate.wait()
        await self.inner.append(room_id, doc_id, expected_head, ops)

    async def read_since(self, room_id: str, doc_id: str, revision: int) -> list[OpRecord]:
        return await self.inner.read_since(room_id, doc_id, revision)


async def send_change(client: RawClient, id_: int, params: dict[str, Any]) -> None:
    message = {"jsonrpc": "2.0", "id": id_, "method": "textDocument/didChange", "params": params}
    await client.ws.send(orjson.dumps(message).decode())


async def until(condition: Any) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout(5))


async def test_edits_the_pending_acknowledgement_brings_are_not_broadcast_to_its_author(
    server: RunningServer,
) -> None:
    ada = await connect(server.url, "ada")
    ben = await connect(server.url, "ben")
    room = await create_room(ada, {"a.txt": "hello"})
    for client in (ada, ben):
        await client.call("room/join", {"roomId": room})
        opened = await client.call("textDocument/didOpen", {"path": "a.txt"})
        assert opened["revision"] == 0
    gated = GatedSequencer(server.hub.sequencer)
    server.hub.sequencer = gated

    # Ben's edit becomes revision 1 and Ada's revision 2; both wait for storage.
    await send_change(ben, 901, change("a.txt", 0, 1, [insert(0, 5, " ben")]))
    await until(lambda: gated.held == 1)
    await send_change(ada, 902, change("a.txt", 0, 1, [insert(0, 0, "ada ")]))
    await until(lambda: gated.held == 2)
    gated.gate.set()

    # Ben's commit lands first and is broadcast while Ada still waits for her acknowledgement:
    # its catch-up brings revision 1, so she is not sent it (she would drop it, §6.3).
    seen: list[dict[str, Any]] = []
    while True:
        message = await ada.recv()
        if message.get("id") == 902:
            ack = message["result"]
            break
        seen.append(message)
    assert [m for m in seen if m.get("method") == "textDocument/remoteChange"] == []
    assert ack["revision"] == 2
    assert [c["text"] for c in ack["catchUp"]] == [" ben"]

    # Ben, acknowledged before Ada's commit was durable, is sent revision 2 as usual.
    ben_ack = await ben.recv()
    assert ben_ack["id"] == 901 and ben_ack["result"]["revision"] == 1
    remote = await ben.notification("textDocument/remoteChange")
    assert remote["params"]["revision"] == 2

    # With nothing pending, Ada gets the next edit as a broadcast again.
    reply = await ben.request("textDocument/didChange", change("a.txt", 2, 2, [insert(0, 0, ">")]))
    assert reply["result"]["revision"] == 3
    remote = await ada.notification("textDocument/remoteChange")
    assert remote["params"]["revision"] == 3
    checksum = await ada.call("textDocument/checksum", {"path": "a.txt"})
    assert checksum == {"revision": 3, "sha256": sha256(">ada hello ben")}
