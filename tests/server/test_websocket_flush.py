"""Frames queued in one turn of the event loop are written at its end, per loop.

The socket is a stand-in here (a list of writes): what is tested is which loop flushes what.
"""

from __future__ import annotations

import asyncio

from codesphere.transports.websocket import WebSocketTransport


class Sink:
    """What WebSocketTransport needs of an asyncio transport."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def test_frames_of_one_turn_go_out_in_one_write() -> None:
    sink = Sink()

    async def main() -> None:
        transport = WebSocketTransport(None, sink, 1 << 20)  # type: ignore[arg-type]
        transport.write_frame(b"a")
        transport.write_frame(b"b")
        assert sink.writes == []
        await asyncio.sleep(0)
        assert sink.writes == [b"ab"]

    asyncio.run(main())


def test_a_flush_left_pending_on_a_stopped_loop_does_not_hold_up_another_loop() -> None:
    first, second = Sink(), Sink()
    loop = asyncio.new_event_loop()

    def write_and_stop() -> None:
        WebSocketTransport(None, first, 1 << 20).write_frame(b"lost")  # type: ignore[arg-type]
        loop.stop()  # before the end-of-turn flush runs

    loop.call_soon(write_and_stop)
    loop.run_forever()
    loop.close()
    assert first.writes == []

    async def main() -> None:
        WebSocketTransport(None, second, 1 << 20).write_frame(b"b")  # type: ignore[arg-type]
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert second.writes == [b"b"]
