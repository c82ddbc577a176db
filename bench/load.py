"""Load benchmark: edit-to-every-peer latency, server CPU and memory under many clients.

The server runs as ``codesphere serve`` pinned to core 0; the load generator is a separate
process pinned to core 1 (``taskset``), running real protocol clients
(:class:`~codesphere.client.CodeSphereClient`). Every edit inserts a unique token; each peer
timestamps the first message that brings it (a ``textDocument/remoteChange``, or the ``catchUp``
of an acknowledgement), so latency is measured on one clock from the author's keystroke to each
peer's socket read.

Scenarios (see the issue that defines the targets):

* ``a``: 1 room × 50 clients × 5 edits/s, each edit followed by a presence update;
* ``b``: 200 rooms × 2 clients × 5 edits/s;
* ``c``: 1 room × 10 clients, the rate raised step by step until p99 passes 20 ms.

Typists type where people type: on at their own cursor, jumping to a random spot on 2 % of
keystrokes (``--typing cursor``, the default). ``--typing random`` puts every keystroke at a
random spot instead, the worst case for a client that types faster than one round trip: it
keeps dropping server edits (protocol.md §6.3), and what it has not seen, kept by its bridge on
the server, then spans the whole document rather than a few places.

Usage::

    .venv/bin/python bench/load.py [--scenario a|b|c|all] [--seconds 10] [--output FILE]
                                   [--client lean|full] [--typing cursor|random]
                                   [--rates EDITS_PER_S,...]

Prints a table and writes JSON (default ``bench/results/load.json``). Not a test: numbers on a
shared machine vary, so read them as a trend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from codesphere.auth.tokens import TokenService
from codesphere.build import core_build

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "bench" / "results" / "load.json"
TOKEN = re.compile(r"\[\d{4}:\d{7}\]")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

#: How often a typist moves its cursor to a random spot instead of typing on where it is.
JUMP = 0.02

#: Targets from the issue, for the printed verdict.
TARGETS = {
    "a": "p99 <= 5 ms",
    "b": "p99 <= 3 ms, RSS <= 80 MB",
    "c": ">= 6400 edits/s with p99 <= 20 ms, server CPU <= 100 us/edit",
}


# -- the load generator (runs in its own process) -------------------------------------------


@dataclass
class Recorder:
    """Send times of tokens and arrival delays at peers, for the current measuring window.

    A keystroke reaches a peer in a ``remoteChange``, or, while the peer waits for the answer
    to an edit of its own, in that answer's ``catchUp`` (the server does not broadcast to it
    then, protocol.md §6.2). A catch-up the peer drops comes again in the next answer, so only
    the first arrival of each keystroke at each peer counts.
    """

    sent: dict[str, float] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    reached: dict[int, set[str]] = field(default_factory=dict)  # tokens seen, by peer
    measuring: bool = False
    edits: int = 0

    def arrived(self, peer: int, text: str, now: float) -> None:
        # Set operations in C: a catch-up resent to a peer that keeps typing repeats most of
        # what it already brought, and the load generator must not spend its core on that.
        # Arrivals before the measuring window count as seen, so that they are not timed when
        # a later catch-up brings them again.
        seen = self.reached.setdefault(peer, set())
        new = set(TOKEN.findall(text)) - seen
        seen |= new
        if not self.measuring:
            return
        for token in new:
            t0 = self.sent.get(token)
            if t0 is not None:
                self.delays.append(now - t0)


async def run_load(spec: dict[str, Any]) -> None:
    """Connect the clients, then run each rate step of ``spec``, reporting on stdout."""
    url = spec["url"]
    rooms, per_room = spec["rooms"], spec["clients_per_room"]
    rec = Recorder()
    rng = random.Random(7)
    # Every load client is an operator of its own: admitted to its room without invites.
    tokens = TokenService(spec["secret"].encode())
    clients = await (connect_full if spec["client"] == "full" else connect_lean)(
        url, rooms, per_room, rec, tokens
    )
    emit({"event": "connected", "clients": len(clients)})

    cursors = [0] * len(clients)

    def where(index: int, length: int) -> tuple[int, int]:
        """The range the next keystroke of typist ``index`` replaces."""
        if spec["typing"] == "random" or rng.random() < JUMP or cursors[index] > length:
            cursors[index] = rng.randint(0, length)
        at = end = cursors[index]
        if length > 3000:  # keep documents small: overwrite instead of growing
            at = min(at, length - 30)
            end = at + 30
        return at, end

    async def typist(index: int, rate: float, stop_at: float) -> None:
        typist_ = clients[index]
        seq = 0
        interval = 1.0 / rate
        next_at = time.perf_counter() + rng.random() * interval
        while True:
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() >= stop_at:
                return
            seq += 1
            token = f"[{index:04d}:{seq:07d}]"
            at, end = where(index, len(typist_.text()))
            cursors[index] = at + len(token)
            rec.sent[token] = time.perf_counter()
            if await typist_.type(at, end, token, spec["presence"]):
                rec.edits += 1

    for step, rate in enumerate(spec["rates"]):
        warmup, seconds = spec["warmup"], spec["seconds"]
        start = time.perf_counter()
        stop_at = start + warmup + seconds
        rec.delays.clear()
        rec.reached.clear()
        rec.measuring = False
        tasks = [asyncio.create_task(typist(i, rate, stop_at)) for i in range(len(clients))]
        await asyncio.sleep(warmup)
        rec.measuring = True
        sent_before = rec.edits
        emit({"event": "measure-start", "step": step})
        await asyncio.sleep(seconds)
        emit({"event": "measure-end", "step": step})
        sent = rec.edits - sent_before
        await asyncio.gather(*tasks)
        await asyncio.sleep(0.5)  # let the last deliveries land
        rec.measuring = False
        summary = summarize(rec.delays)
        emit(
            {
                "event": "step",
                "step": step,
                "rate_per_client": rate,
                "edits_per_s": sent / seconds,
                "deliveries": len(rec.delays),
                "expected_deliveries": sent * (per_room - 1),
                "resyncs": sum(c.resyncs() for c in clients),
                **summary,
            }
        )
        settle_until = time.perf_counter() + 30
        while any(c.unacked() for c in clients) and time.perf_counter() < settle_until:
            await asyncio.sleep(0.05)
        if spec.get("stop_p99_ms") and summary["p99_ms"] > spec["stop_p99_ms"]:
            break
    # Wait until every client of a room has applied the same revision, then compare texts.
    quiet_until = time.perf_counter() + 30
    while time.perf_counter() < quiet_until:
        revs: dict[int, set[int]] = {}
        for c in clients:
            revs.setdefault(c.room, set()).add(c.revision())
        if all(len(r) == 1 for r in revs.values()) and not any(c.unacked() for c in clients):
            break
        await asyncio.sleep(0.05)
    texts = {c.room: c.text() for c in clients}
    diverged = sum(1 for c in clients if c.text() != texts[c.room])
    if diverged:
        for c in clients:
            print(
                f"room {c.room} rev {c.revision()} unacked {c.unacked()} len {len(c.text())}",
                file=sys.stderr,
            )
    emit({"event": "done", "diverged_clients": diverged})
    for c in clients:
        await c.close()


class Typist:
    """One load client and its open document, whichever client implementation it is."""

    def __init__(self, client: Any, doc: Any, room: int) -> None:
        self.client, self.doc, self.room = client, doc, room

    def text(self) -> str:
        return str(self.doc.text)

    def unacked(self) -> int:
        return int(self.doc.unacked)

    def revision(self) -> int:
        return int(self.doc.revision)

    def resyncs(self) -> int:
        raise NotImplementedError

    async def type(self, start: int, end: int, token: str, presence: bool) -> bool:
        """Type ``token``; False when the client cannot type now (it is re-opening)."""
        raise NotImplementedError

    async def close(self) -> None:
        await self.client.close()


async def connect_lean(
    url: str, rooms: int, per_room: int, rec: Recorder, tokens: TokenService
) -> list[Typist]:
    """Clients of ``bench/leanclient.py`` (the default)."""
    from leanclient import LeanClient

    class Lean(Typist):
        def resyncs(self) -> int:
            return int(self.client.resyncs)

        async def type(self, start: int, end: int, token: str, presence: bool) -> bool:
            if not self.client.replace(self.doc, start, end, token):
                return False
            if presence:
                self.client.presence(self.doc, start, start + len(token))
            return True

    def arrivals(peer: int) -> tuple[Any, Any]:
        def on_remote(params: Any, now: float) -> None:
            for change in params["contentChanges"]:
                rec.arrived(peer, change["text"], now)

        def on_catch_up(changes: list[Any], now: float) -> None:
            for change in changes:
                rec.arrived(peer, change["text"], now)

        return on_remote, on_catch_up

    out: list[Typist] = []
    for r in range(rooms):
        members = []
        for i in range(per_room):
            enc = ("utf-16", "utf-8", "utf-32")[i % 3]
            name = f"bench{r}-{i}"
            token = tokens.mint_user(name, admin=True)
            members.append(await LeanClient.connect(url, name, enc, token))  # type: ignore[arg-type]
        created = await members[0].request(
            "room/create", {"name": f"bench{r}", "files": [{"path": "bench.txt", "text": ""}]}
        )
        for c in members:
            await c.request("room/join", {"roomId": created["roomId"]})
            c.on_remote, c.on_catch_up = arrivals(len(out))
            out.append(Lean(c, await c.open("bench.txt"), r))
    return out


async def connect_full(
    url: str, rooms: int, per_room: int, rec: Recorder, tokens: TokenService
) -> list[Typist]:
    """Clients of the product's :class:`~codesphere.client.CodeSphereClient`."""
    from codesphere.client import CodeSphereClient

    class Full(Typist):
        def resyncs(self) -> int:
            return len(self.doc.errors)

        async def type(self, start: int, end: int, token: str, presence: bool) -> bool:
            await self.doc.replace(start, end, token)
            if presence:
                await self.client.update_presence("bench.txt", [(start, start + len(token))])
            return True

    # The product's client has no hook for acknowledgements: only broadcasts are timed.
    def on_remote(peer: int, params: Any) -> None:
        now = time.perf_counter()
        for change in params["contentChanges"]:
            rec.arrived(peer, change["text"], now)

    out: list[Typist] = []
    for r in range(rooms):
        owner = await CodeSphereClient.connect(
            url, name=f"bench{r}-0", encodings=("utf-16",), token=tokens.mint_user(f"bench{r}-0")
        )
        room_id = await owner.create_room(f"bench{r}", files=[{"path": "bench.txt", "text": ""}])
        members = [owner]
        for i in range(1, per_room):
            enc = ("utf-16", "utf-8", "utf-32")[i % 3]
            members.append(
                await CodeSphereClient.connect(
                    url,
                    name=f"bench{r}-{i}",
                    encodings=(enc,),
                    token=tokens.mint_user(f"bench{r}-{i}", admin=True),
                )
            )
        for c in members:
            await c.join(room_id)
            c.on("textDocument/remoteChange", partial(on_remote, len(out)))
            out.append(Full(c, await c.open("bench.txt"), r))
    return out


def summarize(delays: list[float]) -> dict[str, float]:
    if not delays:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(delays)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_ms": 1000 * ordered[-1],
    }


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


# -- the conductor (starts the server and the load generator, samples /proc) ----------------


def proc_cpu_seconds(pid: int) -> float:
    return sum(proc_cpu_split(pid))


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """Seconds of user and of kernel CPU used by ``pid`` so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime


def proc_rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_KB / 1024


def pinned(core: int, argv: list[str]) -> list[str]:
    """``argv`` pinned to one core when taskset exists and there are at least two cores."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *argv]
    return argv


def start_server(data_dir: str, secret: str) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).parent / "codesphere"
    prefix = os.environ.get("CODESPHERE_BENCH_SERVER")  # e.g. a profiling wrapper script
    argv = [sys.executable, prefix] if prefix else [str(exe)]
    argv = [*argv, "serve", "--port", "0", "--data-dir", data_dir, "--log-level", "warning",
            "--requests-per-second", "1000000", "--no-owner-link"]  # fmt: skip
    env = dict(os.environ, JWT_SECRET=secret)
    proc = subprocess.Popen(pinned(0, argv), stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Clients connect to "):
            url = line.split()[-1]
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, url
    raise RuntimeError("the server did not start")


SCENARIOS: dict[str, dict[str, Any]] = {
    "a": {"rooms": 1, "clients_per_room": 50, "rates": [5.0], "presence": True},
    "b": {"rooms": 200, "clients_per_room": 2, "rates": [5.0], "presence": False},
    "c": {
        "rooms": 1,
        "clients_per_room": 10,
        "rates": [
            20.0,
            40.0,
            80.0,
            120.0,
            160.0,
            200.0,
            240.0,
            280.0,
            320.0,
            400.0,
            480.0,
            560.0,
            640.0,
            800.0,
            1000.0,
            1280.0,
        ],
        "presence": False,
        "stop_p99_ms": 20.0,
    },
}


def run_scenario(
    name: str,
    seconds: float,
    client: str = "lean",
    typing: str = "cursor",
    room_rates: list[float] | None = None,
) -> list[dict[str, Any]]:
    spec = dict(SCENARIOS[name])
    spec["client"] = client
    spec["typing"] = typing
    spec["seconds"] = seconds if name != "c" or room_rates else min(seconds, 4.0)
    if room_rates:
        spec["rates"] = [rate / spec["clients_per_room"] for rate in room_rates]
    spec["warmup"] = 2.0 if name != "c" else 1.0
    with tempfile.TemporaryDirectory() as data_dir:
        spec["secret"] = secrets.token_urlsafe(32)
        server, url = start_server(data_dir, spec["secret"])
        spec["url"] = url
        try:
            loader = subprocess.Popen(
                pinned(1, [sys.executable, __file__, "--worker", json.dumps(spec)]),
                stdout=subprocess.PIPE,
                text=True,
            )
            assert loader.stdout is not None
            steps: list[dict[str, Any]] = []
            cpu0 = wall0 = loader_cpu0 = loader_cpu = sys0 = 0.0
            rss_peak = 0.0
            cpu_used = wall = sys_used = 0.0
            for line in loader.stdout:
                event = json.loads(line)
                rss_peak = max(rss_peak, proc_rss_mb(server.pid))
                if event["event"] == "measure-start":
                    user0, sys0 = proc_cpu_split(server.pid)
                    cpu0, wall0 = user0 + sys0, time.perf_counter()
                    loader_cpu0 = proc_cpu_seconds(loader.pid)
                    rss_peak = proc_rss_mb(server.pid)
                elif event["event"] == "measure-end":
                    user1, sys1 = proc_cpu_split(server.pid)
                    cpu_used, sys_used = user1 + sys1 - cpu0, sys1 - sys0
                    wall = time.perf_counter() - wall0
                    loader_cpu = proc_cpu_seconds(loader.pid) - loader_cpu0
                    rss_peak = max(rss_peak, proc_rss_mb(server.pid))
                elif event["event"] == "done" and event["diverged_clients"]:
                    raise RuntimeError(f"{event['diverged_clients']} clients diverged")
                elif event["event"] == "step":
                    edits = event["edits_per_s"] * spec["seconds"]
                    event.update(
                        scenario=name,
                        server_cpu_pct=100 * cpu_used / wall,
                        server_kernel_cpu_pct=100 * sys_used / wall,
                        server_cpu_us_per_edit=1e6 * cpu_used / edits if edits else float("nan"),
                        server_rss_mb=rss_peak,
                        loader_cpu_pct=100 * loader_cpu / wall,
                    )
                    steps.append(event)
                    print_row(event)
            if loader.wait() != 0:
                raise RuntimeError(f"load generator failed ({loader.returncode})")
            return steps
        finally:
            server.terminate()
            server.wait(10)


def print_row(e: dict[str, Any]) -> None:
    print(
        f"  {e['scenario']:>2} {e['edits_per_s']:>9.0f} {e['deliveries']:>10} "
        f"{e['p50_ms']:>8.2f} {e['p99_ms']:>8.2f} {e['max_ms']:>8.1f} "
        f"{e['server_cpu_pct']:>6.1f} {e['server_kernel_cpu_pct']:>6.1f} "
        f"{e['server_cpu_us_per_edit']:>9.1f} "
        f"{e['server_rss_mb']:>8.1f} {e['loader_cpu_pct']:>9.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="all", choices=["a", "b", "c", "all"])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--client",
        default="lean",
        choices=["lean", "full"],
        help="load clients: bench/leanclient.py (default) or the product's CodeSphereClient",
    )
    parser.add_argument(
        "--typing",
        default="cursor",
        choices=["cursor", "random"],
        help="cursor: each client types on at its own cursor, jumping elsewhere on 2%% of"
        " keystrokes (default); random: every keystroke at a random spot of the document",
    )
    parser.add_argument(
        "--rates",
        type=lambda text: [float(rate) for rate in text.split(",")],
        help="edits/s per room to run instead of the scenario's own steps, comma-separated"
        " (e.g. 3200,6400 to compare two builds of the server at fixed rates)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(Path(__file__).parent))
        profile = os.environ.get("CODESPHERE_BENCH_PROFILE_LOADER")
        if profile:
            import cProfile

            cProfile.runctx(
                "asyncio.run(run_load(json.loads(args.worker)))", globals(), locals(), profile
            )
        else:
            asyncio.run(run_load(json.loads(args.worker)))
        return
    names = ["a", "b", "c"] if args.scenario == "all" else [args.scenario]
    print(
        "  sc  edits/s  deliveries  p50 ms   p99 ms   max ms  cpu %  (sys)  cpu us/ed   rss MB"
        "  loader %"
    )
    results: dict[str, Any] = {}
    for name in names:
        results[name] = {
            "target": TARGETS[name],
            "client": args.client,
            "typing": args.typing,
            "steps": run_scenario(name, args.seconds, args.client, args.typing, args.rates),
        }
    c = results.get("c")
    if c:
        ok = [s for s in c["steps"] if s["p99_ms"] <= 20.0]
        c["max_edits_per_s_p99_under_20ms"] = max((s["edits_per_s"] for s in ok), default=0)
        print(f"(c) highest rate with p99 <= 20 ms: {c['max_edits_per_s_p99_under_20ms']:.0f}/s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "load",
                "python": platform.python_version(),
                "core": core_build(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
