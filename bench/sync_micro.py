"""The server's sync work per keystroke, without sockets: scenario (c)'s typing, simulated.

Ten clients (:class:`~codesphere.client.state.ClientDocument`, the product's revision rule) type
into one document at a fixed rate each, at their own cursors, keeping one edit in flight and
gathering what is typed meanwhile, as the load benchmark's clients do. Messages take a fixed
one-way delay. The server side is what ``did_change`` and ``Hub.commit`` run for every edit:
:meth:`DocumentSync.change` and the broadcast's ``contentChanges`` (one sweep for every encoding
in use). Only that server-side work is timed, so the figure is the core's share of the CPU per
edit that ``bench/load.py`` measures end to end (the JSON records whether the core ran compiled).

The simulation is seeded and needs no network, so two versions of the core can be compared:
run it before and after a change. Every client must end with the server's text. On a busy
machine timings still move by ±15 %; instruction counts do not, e.g. for half a simulated second
at 320 keystrokes/s per client::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -c \
        "import sys; sys.path.insert(0, 'bench'); import sync_micro as s; \
         s.measure(10, 320, 1.5, 0.5, ['utf-16'])"

Usage::

    .venv/bin/python bench/sync_micro.py [--rate 640] [--clients 10] [--delay-ms 1.5]
                                          [--seconds 5] [--output FILE]

Prints a table and writes JSON (default ``bench/results/sync_micro.json``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codesphere.build import core_build
from codesphere.client.state import ClientDocument
from codesphere.core.changes import ContentChange
from codesphere.core.document import Document
from codesphere.core.positions import Encoding, position_at
from codesphere.core.sync import DocumentSync
from codesphere.protocol.codec import content_changes, op_changes_json, op_json_changes

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "bench" / "results" / "sync_micro.json"

#: As in bench/load.py: how often a typist jumps to a random spot instead of typing on.
JUMP = 0.02
#: As in bench/load.py: past this length keystrokes overwrite instead of growing the text.
MAX_LENGTH = 3000


class Simulation:
    """A seeded discrete-event run of typists against one :class:`DocumentSync`."""

    def __init__(
        self, clients: int, rate: float, delay: float, encodings: list[Encoding], seed: int = 7
    ) -> None:
        self.rng = random.Random(seed)
        self.sync = DocumentSync(Document(""))
        self.delay = delay
        self.rate = rate
        self.docs: list[ClientDocument] = []
        for i in range(clients):
            encoding = encodings[i % len(encodings)]
            text, revision = self.sync.open(f"c{i}", encoding)
            self.docs.append(ClientDocument("doc", text, revision, encoding))
        self.cursors = [0] * clients
        self.seqs = [0] * clients
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.order = 0
        self.server_seconds = 0.0
        self.keystrokes = 0
        self.messages = 0

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.order += 1
        heapq.heappush(self.events, (when, self.order, action))

    def run(self, seconds: float) -> None:
        for i in range(len(self.docs)):
            self.at(self.rng.random() / self.rate, self._keystroke(i, seconds))
        while self.events:
            self.now, _, action = heapq.heappop(self.events)
            action()

    # -- clients ---------------------------------------------------------------------------

    def _keystroke(self, i: int, stop: float) -> Callable[[], None]:
        def act() -> None:
            if self.now >= stop:
                return
            doc = self.docs[i]
            length = len(doc.text)
            if self.rng.random() < JUMP or self.cursors[i] > length:
                self.cursors[i] = self.rng.randint(0, length)
            at = end = self.cursors[i]
            if length > MAX_LENGTH:
                at = min(at, length - 30)
                end = at + 30
            self.seqs[i] += 1
            token = f"[{i:04d}:{self.seqs[i]:07d}]"
            rng = (
                position_at(doc.text, at, doc.encoding),
                position_at(doc.text, end, doc.encoding),
            )
            doc.type([ContentChange(rng, token)])
            self.cursors[i] = at + len(token)
            self.keystrokes += 1
            if not doc.unacked:
                self._send(i)
            self.at(self.now + 1 / self.rate, act)

        return act

    def _send(self, i: int) -> None:
        edit = self.docs[i].take_unsent()
        if edit is not None:
            self.messages += 1
            self.at(
                self.now + self.delay,
                lambda: self._server_change(i, edit.base, edit.seq, edit.changes),
            )

    def _ack(self, i: int, revision: int, catch_up: list[ContentChange]) -> None:
        doc = self.docs[i]
        doc.on_ack(revision, catch_up)
        if doc.unsent:
            self._send(i)

    # -- the server ------------------------------------------------------------------------

    def _server_change(self, i: int, base: int, seq: int, changes: list[ContentChange]) -> None:
        sync = self.sync
        encodings = {d.encoding for j, d in enumerate(self.docs) if j != i}
        t0 = time.perf_counter()
        ack = sync.change(f"c{i}", base, changes, self.now, seq)
        broadcast = op_changes_json(ack.entry.op, ack.base_text, encodings)
        reply = op_json_changes(ack.to_head, ack.view, ack.encoding)
        self.server_seconds += time.perf_counter() - t0
        del reply
        revision = ack.entry.revision
        self.at(self.now + self.delay, lambda: self._ack(i, ack.revision, ack.catch_up))
        for j, doc in enumerate(self.docs):
            if j != i:
                remote = content_changes(broadcast[doc.encoding])
                self.at(self.now + self.delay, lambda d=doc, c=remote: d.on_remote(revision, c))


def measure(
    clients: int, rate: float, delay_ms: float, seconds: float, encodings: list[Encoding]
) -> dict[str, Any]:
    sim = Simulation(clients, rate, delay_ms / 1000, encodings)
    sim.run(seconds)
    # Let every client settle: a final acknowledgement brings each to the head.
    text = sim.sync.doc.text
    diverged = sum(1 for d in sim.docs if d.text != text or d.unacked or d.unsent)
    if diverged:
        raise RuntimeError(f"{diverged} clients did not end with the server's text")
    return {
        "clients": clients,
        "rate_per_client": rate,
        "delay_ms": delay_ms,
        "encodings": encodings,
        "keystrokes": sim.keystrokes,
        "edits_sent": sim.messages,
        "keystrokes_per_edit": sim.keystrokes / sim.messages,
        "server_us_per_keystroke": 1e6 * sim.server_seconds / sim.keystrokes,
        "server_us_per_edit": 1e6 * sim.server_seconds / sim.messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rate", type=float, action="append", help="keystrokes/s per client")
    parser.add_argument("--delay-ms", type=float, default=1.5, help="one-way message delay")
    parser.add_argument("--seconds", type=float, default=5.0, help="simulated seconds")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    rates = args.rate or [80.0, 320.0, 640.0]
    mixes: list[list[Encoding]] = [["utf-16"], ["utf-8", "utf-16", "utf-32"]]
    rows = [measure(args.clients, r, args.delay_ms, args.seconds, m) for r in rates for m in mixes]
    print(" clients  rate/s  encodings            keys/edit  µs/keystroke  µs/edit")
    for r in rows:
        print(
            f"{r['clients']:>8} {r['rate_per_client']:>7.0f}  {','.join(r['encodings']):<20}"
            f" {r['keystrokes_per_edit']:>9.2f} {r['server_us_per_keystroke']:>13.1f}"
            f" {r['server_us_per_edit']:>8.1f}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "core": core_build(),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
