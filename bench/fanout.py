"""Fan-out benchmark: server CPU per delivered WebSocket message, by broadcast strategy.

One process runs an aiohttp server on 127.0.0.1 (an ephemeral port) with two WebSocket routes:
``/ws`` (``compress=False``, as the product serves) and ``/wsz`` (``compress=True``). A second
process, this same script started with ``--receivers N``, opens N connections to each route
and counts the text frames it receives. When the machine has two cores or more, the server is
pinned to one core and the receivers to another (``os.sched_setaffinity``).

The receivers do the HTTP upgrade by hand (offering permessage-deflate on ``/wsz``), then run
one ``select.epoll`` loop over non-blocking sockets that walks frame headers, counts final data
frames and discards payloads, compressed or not, without inflating or decoding them. With no
event loop, no per-connection objects beyond the socket and no parsing of the JSON, a read costs
a few microseconds however many frames it holds, so the receivers keep up and the server's
writes find the sockets ready, as they would with clients reading at network speed.

For every N, the server sends M ``textDocument/remoteChange`` notifications (about 250 bytes of
JSON, built with orjson) to the N connections with each strategy:

``frame_once``
    encode once, frame once (``codesphere.protocol.wsframe.frame_text``), then
    ``transport.write(frame)`` for each recipient in one synchronous pass: what the hub does.
``aiohttp_send_str``
    encode once, ``await ws.send_str(text)`` for each recipient: aiohttp frames each time.
``encode_per_recipient``
    ``orjson.dumps`` and ``await ws.send_str`` for each recipient: the naive server.
``task_per_recipient``
    encode once, ``asyncio.create_task(ws.send_str(text))`` for each recipient, then gather.
``frame_once_compressed``
    ``aiohttp_send_str`` on the ``/wsz`` connections, where permessage-deflate was negotiated:
    every recipient has its own compressor, so every delivery is compressed separately.

Each message is followed by ``await asyncio.sleep(0)`` (one turn of the event loop, as separate
edits arrive in separate turns). The server's ``time.process_time()`` (this process only, every
thread) and ``time.perf_counter()`` are read before the first message and after every
connection's transport buffer is empty (``get_write_buffer_size() == 0``, polled every 0.5 ms),
so the CPU figure includes the system calls that move the bytes into the kernel (the JSON also
gives the user-space part, from ``resource.getrusage``). The receivers
then confirm that every connection got exactly the expected number of messages; any other count
aborts the benchmark. They also report when the last frame arrived (``time.monotonic()``, the
same clock in both processes), giving end-to-end deliveries per second.

Runs of the strategies are interleaved ``--repeat`` times after a warm-up of M/10 messages
each; the table reports the median run. Columns: server CPU µs per delivery (one message to one
connection), deliveries per second of wall time over the same window, that CPU cost relative to
``frame_once`` at the same N, end-to-end deliveries per second (until the last frame is read)
and how busy the server was (CPU / wall time over the broadcast). A server busy near 100 % with
nothing left queued at the end of the loop (``backlog_kb`` in the JSON) was not waiting for the
receivers. The receivers themselves read every frame as it lands, so their core is busy too
(``receiver_cpu_pct`` in the JSON); they fall behind only when the server stops being busy.

On loopback the kernel does both ends of TCP, and much of the receiving end runs in the sending
process's system calls, so the server's CPU includes work a real NIC would take elsewhere; it is
the same for every strategy, and is why even writing ready-made bytes costs microseconds.
The JSON also holds every run, the bytes still queued in the server when the broadcast loop
ended (``backlog_kb``: non-zero means the receivers fell behind) and the CPU that other
processes used on the two cores meanwhile (``other_cpu_pct``, from ``/proc/stat`` clock ticks,
so coarse); a note is printed when that passes 10 % of a core, as wall times are then suspect.

Usage::

    .venv/bin/python bench/fanout.py [--messages 2000] [--receivers-list 10,50,200]
                                     [--repeat 3] [--output FILE]

Prints a table and writes JSON (default ``bench/results/fanout.json``). Not a test: numbers on a
shared machine vary, so read them as a trend.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import resource
import select
import socket
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from codesphere.build import core_build
from codesphere.protocol.wsframe import frame_text

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "bench" / "results" / "fanout.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: Seconds the receivers wait for a strategy's messages before reporting a short count.
REPORT_TIMEOUT = 30.0
#: Seconds the receivers keep listening after the expected count, to catch surplus frames.
GRACE = 0.02


# -- the messages ---------------------------------------------------------------------------


def make_messages(count: int) -> list[dict[str, Any]]:
    """``count`` remote-change notifications as the hub sends them, one typed character each."""
    snippet = "for item in self.pending_changes:"
    messages: list[dict[str, Any]] = []
    for i in range(count):
        line, character = 120 + i // 40, 8 + i % 40
        position = {"line": line, "character": character}
        messages.append(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/remoteChange",
                "params": {
                    "path": "src/app/main.py",
                    "revision": 48_210 + i,
                    "memberId": "m-q3ZkT0xvB9aP",
                    "contentChanges": [
                        {
                            "range": {"start": position, "end": position},
                            "text": snippet[i % len(snippet)],
                        }
                    ],
                },
            }
        )
    return messages


# -- the receivers (run in their own process) -----------------------------------------------


class Receiver:
    """One WebSocket client socket that counts the server's data frames and discards them."""

    def __init__(self, port: int, path: str, deflate: bool) -> None:
        self.count = 0
        self.deflate = deflate
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if deflate
            else ""
        )
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"{path}: closed during the handshake")
            response += chunk
        head, _, self.pending = response.partition(b"\r\n\r\n")
        head = head.lower()
        if not head.startswith(b"http/1.1 101"):
            raise ConnectionError(f"{path}: {head.splitlines()[0].decode()}")
        if (b"permessage-deflate" in head) != deflate:
            raise ConnectionError(f"{path}: permessage-deflate not as requested")
        self.sock.setblocking(False)

    def read(self) -> int:
        """Read what the socket holds; the number of complete messages in it."""
        try:
            chunk = self.sock.recv(1 << 18)
        except BlockingIOError:
            return 0
        if not chunk:
            raise ConnectionError("the server closed a connection")
        data = self.pending + chunk if self.pending else chunk
        pos, size, got = 0, len(data), 0
        while size - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F  # server frames are never masked
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", data, pos + 2)
                start = pos + 10
            end = start + length
            if end > size:
                break
            if first & 0x0F < 8:
                got += first >> 7  # a final data frame completes a message
            pos = end
        self.pending = data[pos:]
        self.count += got
        return got


@dataclass
class Group:
    """The receivers of one route, with their running count of messages."""

    receivers: list[Receiver] = field(default_factory=list)
    total: int = 0
    target: int = 0
    reached_at: float | None = None

    def add(self, n: int) -> None:
        self.total += n
        if self.reached_at is None and self.target and self.total >= self.target:
            self.reached_at = time.monotonic()

    def expect(self, per_conn: int) -> None:
        """Watch for every receiver having ``per_conn`` messages in all."""
        self.target = per_conn * len(self.receivers)
        self.reached_at = time.monotonic() if self.total >= self.target else None


def run_receivers(n: int, port: int) -> None:
    """Connect ``n`` plain and ``n`` deflate clients, then count and answer stdin's commands.

    Commands, one a line: ``expect GROUP K`` (every receiver of GROUP will have K messages in
    all), ``report GROUP`` (reply once they do, or after :data:`REPORT_TIMEOUT`), ``quit``.
    """
    groups = {
        "plain": Group([Receiver(port, "/ws", False) for _ in range(n)]),
        "deflate": Group([Receiver(port, "/wsz", True) for _ in range(n)]),
    }
    poller = select.epoll()
    owners: dict[int, tuple[Receiver, Group]] = {}
    for group in groups.values():
        for r in group.receivers:
            poller.register(r.sock.fileno(), select.EPOLLIN)
            owners[r.sock.fileno()] = (r, group)
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.EPOLLIN)
    commands = b""
    reporting: Group | None = None
    deadline = 0.0
    reply({"event": "ready", "cpu": time.process_time()})
    while True:
        timeout = -1.0
        if reporting is not None:
            if reporting.reached_at is not None:
                deadline = min(deadline, reporting.reached_at + GRACE)
            timeout = max(0.0, deadline - time.monotonic())
        for fd, _ in poller.poll(timeout):
            if fd != stdin:
                r, group = owners[fd]
                got = r.read()
                if got:
                    group.add(got)
                continue
            chunk = os.read(stdin, 4096)
            if not chunk:
                return
            commands += chunk
            while b"\n" in commands:
                line, commands = commands.split(b"\n", 1)
                words = line.decode().split()
                if words[0] == "expect":
                    groups[words[1]].expect(int(words[2]))
                    reply({"event": "expecting", "cpu": time.process_time()})
                elif words[0] == "report":
                    reporting = groups[words[1]]
                    deadline = time.monotonic() + REPORT_TIMEOUT
                elif words[0] == "quit":
                    for g in groups.values():
                        for r in g.receivers:
                            r.sock.close()
                    return
        if reporting is not None and time.monotonic() >= deadline:
            counts = [r.count for r in reporting.receivers]
            reply(
                {
                    "event": "report",
                    "total": reporting.total,
                    "min": min(counts),
                    "max": max(counts),
                    "reached_at": reporting.reached_at,
                    "cpu": time.process_time(),
                }
            )
            reporting = None


def reply(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


# -- the server and the strategies ----------------------------------------------------------


@dataclass(slots=True)
class Peer:
    """One server-side WebSocket and the transport under it."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport


@dataclass
class Registry:
    """The connected peers of each route."""

    plain: list[Peer] = field(default_factory=list)
    deflate: list[Peer] = field(default_factory=list)


def make_handler(
    registry: Registry, compress: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=compress, max_msg_size=1 << 20)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        if bool(ws.compress) != compress:
            raise RuntimeError("permessage-deflate was not negotiated as expected")
        peers = registry.deflate if compress else registry.plain
        peer = Peer(ws, transport)
        peers.append(peer)
        try:
            async for _ in ws:
                pass
        finally:
            peers.remove(peer)
        return ws

    return handler


Send = Callable[[list[Peer], dict[str, Any]], Awaitable[None]]


async def frame_once(peers: list[Peer], message: dict[str, Any]) -> None:
    """Encode and frame once; the same bytes to every transport, in one synchronous pass."""
    frame = frame_text(orjson.dumps(message))
    for p in peers:
        p.transport.write(frame)


async def aiohttp_send_str(peers: list[Peer], message: dict[str, Any]) -> None:
    """Encode once; aiohttp encodes the text to UTF-8 and frames it for every recipient."""
    text = orjson.dumps(message).decode()
    for p in peers:
        await p.ws.send_str(text)


async def encode_per_recipient(peers: list[Peer], message: dict[str, Any]) -> None:
    """Serialise the message again for every recipient, then send it with aiohttp."""
    for p in peers:
        await p.ws.send_str(orjson.dumps(message).decode())


async def task_per_recipient(peers: list[Peer], message: dict[str, Any]) -> None:
    """One task per recipient sending with aiohttp, gathered before the next message."""
    text = orjson.dumps(message).decode()
    await asyncio.gather(*[asyncio.create_task(p.ws.send_str(text)) for p in peers])


#: name -> (send one message to every peer, route group).
STRATEGIES: dict[str, tuple[Send, str]] = {
    "frame_once": (frame_once, "plain"),
    "aiohttp_send_str": (aiohttp_send_str, "plain"),
    "encode_per_recipient": (encode_per_recipient, "plain"),
    "task_per_recipient": (task_per_recipient, "plain"),
    "frame_once_compressed": (aiohttp_send_str, "deflate"),
}


@dataclass
class Run:
    """One strategy run: seconds of server CPU and wall time, and what the receivers saw."""

    cpu_s: float
    user_s: float
    wall_s: float
    e2e_s: float
    receiver_cpu_s: float
    backlog_bytes: int
    window_s: float
    other_cpu_s: float


@dataclass
class Row:
    """One line of the table: the median of a strategy's runs at one receiver count."""

    receivers: int
    strategy: str
    messages: int
    deliveries: int
    cpu_us_per_delivery: float
    user_us_per_delivery: float
    deliveries_per_s: float
    e2e_deliveries_per_s: float
    server_busy_pct: float
    receiver_cpu_pct: float
    backlog_kb: float
    other_cpu_pct: float
    ratio_vs_frame_once: float
    runs: list[dict[str, float]]


class Receivers:
    """The receiver process for one N, driven over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.cpu = 0.0
        self.delivered = {"plain": 0, "deflate": 0}

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the receiver process exited ({await self.proc.wait()})")
        event: dict[str, Any] = json.loads(line)
        if "cpu" in event:
            self.cpu = event["cpu"]
        return event

    async def command(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read()


async def drained(peers: list[Peer]) -> None:
    """Return once every transport has handed all its bytes to the kernel."""
    while any(p.transport.get_write_buffer_size() for p in peers):
        await asyncio.sleep(0.0005)


async def measure(
    rx: Receivers,
    peers: list[Peer],
    group: str,
    send: Send,
    messages: list[dict[str, Any]],
    cores: set[int] | None,
) -> Run:
    """Broadcast ``messages`` with ``send``; check that every receiver got every one."""
    rx.delivered[group] += len(messages)
    gc.collect()
    await rx.command(f"expect {group} {rx.delivered[group]}")
    rx_cpu0 = rx.cpu
    await asyncio.sleep(0.01)
    busy0 = busy_seconds(cores)
    u0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    t0, c0, m0 = time.perf_counter(), time.process_time(), time.monotonic()
    for message in messages:
        await send(peers, message)
        await asyncio.sleep(0)
    backlog = sum(p.transport.get_write_buffer_size() for p in peers)
    await drained(peers)
    c1, t1 = time.process_time(), time.perf_counter()
    u1 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    report = await rx.command(f"report {group}")
    c2, t2, busy2 = time.process_time(), time.perf_counter(), busy_seconds(cores)
    want = rx.delivered[group]
    if report["total"] != want * len(peers) or report["min"] != want or report["max"] != want:
        raise SystemExit(
            f"error: {len(peers)} receivers on {group}: expected {want} messages each, got"
            f" {report['total']} in all (min {report['min']}, max {report['max']})"
        )
    rx_cpu = rx.cpu - rx_cpu0
    other = max(0.0, busy2 - busy0 - (c2 - c0) - rx_cpu)
    e2e = report["reached_at"] - m0
    return Run(c1 - c0, u1 - u0, t1 - t0, e2e, rx_cpu, backlog, t2 - t0, other)


def busy_seconds(cores: set[int] | None) -> float:
    """CPU seconds spent so far on ``cores`` (every core when None), by anyone, from /proc/stat.

    Counted in clock ticks (usually 10 ms), so only sums over many runs mean much.
    """
    total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *ticks = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                if cores is None or int(name[3:]) in cores:
                    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
                    total += user + nice + system + irq + softirq + steal
    except OSError:
        return 0.0
    return total / CLK_TCK


async def wait_for_peers(registry: Registry, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(registry.plain) != n or len(registry.deflate) != n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(registry.plain)}+{len(registry.deflate)} of {n}+{n} peers")
        await asyncio.sleep(0.01)


async def bench_receivers(
    registry: Registry,
    port: int,
    n: int,
    cores: tuple[int | None, int | None],
    messages: list[dict[str, Any]],
    repeat: int,
) -> list[Row]:
    """Run every strategy ``repeat`` times with ``n`` receivers; one row per strategy."""
    server_core, receiver_core = cores
    watched = None
    if server_core is not None and receiver_core is not None:
        watched = {server_core, receiver_core}
    argv = [__file__, "--receivers", str(n), "--port", str(port)]
    if receiver_core is not None:
        argv += ["--core", str(receiver_core)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    rx = Receivers(proc)
    try:
        await rx.read()  # ready
        await wait_for_peers(registry, n)
        warmup = messages[: max(1, len(messages) // 10)]
        for send, group in STRATEGIES.values():
            await measure(rx, getattr(registry, group), group, send, warmup, watched)
        runs: dict[str, list[Run]] = {name: [] for name in STRATEGIES}
        for _ in range(repeat):
            for name, (send, group) in STRATEGIES.items():
                peers = getattr(registry, group)
                runs[name].append(await measure(rx, peers, group, send, messages, watched))
        assert proc.stdin is not None
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    deadline = time.monotonic() + 10
    while (registry.plain or registry.deflate) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)

    deliveries = n * len(messages)
    rows: list[Row] = []
    for name, name_runs in runs.items():
        mid = sorted(name_runs, key=lambda r: r.cpu_s)[len(name_runs) // 2]
        rows.append(
            Row(
                receivers=n,
                strategy=name,
                messages=len(messages),
                deliveries=deliveries,
                cpu_us_per_delivery=1e6 * mid.cpu_s / deliveries,
                user_us_per_delivery=1e6 * mid.user_s / deliveries,
                deliveries_per_s=deliveries / statistics.median(r.wall_s for r in name_runs),
                e2e_deliveries_per_s=deliveries / statistics.median(r.e2e_s for r in name_runs),
                server_busy_pct=100 * mid.cpu_s / mid.wall_s,
                receiver_cpu_pct=100 * mid.receiver_cpu_s / mid.e2e_s,
                backlog_kb=statistics.median(r.backlog_bytes for r in name_runs) / 1024,
                other_cpu_pct=100
                * sum(r.other_cpu_s for r in name_runs)
                / sum(r.window_s for r in name_runs),
                ratio_vs_frame_once=0.0,
                runs=[asdict(r) for r in name_runs],
            )
        )
    base = rows[0].cpu_us_per_delivery
    for row in rows:
        row.ratio_vs_frame_once = row.cpu_us_per_delivery / base
    return rows


def print_header() -> None:
    print(
        f"{'receivers':>9}  {'strategy':<22} {'µs CPU/delivery':>15} {'deliveries/s':>13}"
        f" {'ratio':>6}  {'e2e deliveries/s':>16} {'server busy %':>13}"
    )


def print_row(r: Row) -> None:
    print(
        f"{r.receivers:>9}  {r.strategy:<22} {r.cpu_us_per_delivery:>15.2f}"
        f" {r.deliveries_per_s:>13,.0f} {r.ratio_vs_frame_once:>5.2f}x"
        f"  {r.e2e_deliveries_per_s:>16,.0f} {r.server_busy_pct:>13.0f}",
        flush=True,
    )


def choose_cores() -> tuple[int | None, int | None]:
    """A core for the server and another for the receivers, when there are two."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[0], cores[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def conduct(
    args: argparse.Namespace, server_core: int | None, receiver_core: int | None
) -> list[Row]:
    """Serve, then run every receiver count in turn; the rows of the table."""
    if server_core is not None:
        os.sched_setaffinity(0, {server_core})
    registry = Registry()
    app = web.Application()
    app.router.add_get("/ws", make_handler(registry, compress=False))
    app.router.add_get("/wsz", make_handler(registry, compress=True))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    messages = make_messages(args.messages)
    rows: list[Row] = []
    print_header()
    try:
        for n in args.receivers_list:
            n_rows = await bench_receivers(
                registry, port, n, (server_core, receiver_core), messages, args.repeat
            )
            for row in n_rows:
                print_row(row)
            rows += n_rows
            other = max(r.other_cpu_pct for r in n_rows)
            if other > 10:
                print(f"{'':>11}note: other processes kept up to {other:.0f}% of a core busy")
    finally:
        await runner.cleanup()
    return rows


def receivers_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per strategy run")
    parser.add_argument(
        "--receivers-list",
        type=receivers_list,
        default=[10, 50, 200],
        help="comma-separated receiver counts (default 10,50,200)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per strategy (median kept)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--receivers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.receivers is not None:
        if args.core is not None:
            os.sched_setaffinity(0, {args.core})
        run_receivers(args.receivers, args.port)
        return 0
    if args.messages < 1 or args.repeat < 1:
        parser.error("--messages and --repeat must be at least 1")

    server_core, receiver_core = choose_cores()
    env = {
        "python": platform.python_version(),
        "core": core_build(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "orjson": orjson.__version__,
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "server_core": server_core,
        "receiver_core": receiver_core,
    }
    pinning = (
        f"server on core {server_core}, receivers on core {receiver_core}"
        if server_core is not None
        else "not pinned (one core)"
    )
    print(
        f"python {env['python']}, aiohttp {env['aiohttp']}, orjson {env['orjson']},"
        f" {env['cores']} cores ({pinning}); {args.messages} messages × {args.repeat} runs"
        f" per strategy, median shown"
    )
    size = len(frame_text(orjson.dumps(make_messages(1)[0])))
    print(f"message: textDocument/remoteChange, {size} bytes framed")
    started = time.perf_counter()
    rows = asyncio.run(conduct(args, server_core, receiver_core))
    print(f"total {time.perf_counter() - started:.1f} s")

    report = {
        "benchmark": "fanout",
        **env,
        "messages": args.messages,
        "repeat": args.repeat,
        "frame_bytes": size,
        "unit": "server CPU µs per delivery (median run); deliveries/s over broadcast + drain",
        "results": [asdict(r) for r in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
