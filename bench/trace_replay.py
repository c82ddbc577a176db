"""Replay real editing traces through the sync core and time it.

Each sequential trace of josephg/editing-traces (see ``shared/traces/README.md``) is replayed
into a :class:`~codesphere.core.document.Document`: every patch becomes a
:class:`~codesphere.core.operation.TextOperation` committed with its log entry, exactly as the
server commits a client's edit once it is ordered. The same patches are also applied by plain
string splicing, the least any Python implementation must do, as a baseline.

Usage::

    .venv/bin/python bench/trace_replay.py [--traces DIR] [--repeat N] [--output FILE]

Times are the best of ``--repeat`` runs (``time.perf_counter``). The final text of every run is
checked against the trace's ``endContent``; a mismatch aborts the benchmark.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from codesphere.build import core_build
from codesphere.core.document import Document
from codesphere.core.operation import TextOperation

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TRACES = REPO.parent / "shared" / "traces"
DEFAULT_OUTPUT = REPO / "bench" / "results" / "trace_replay.json"

#: Sequential traces, the headline one first.
TRACES = ("automerge-paper", "seph-blog1", "rustcode", "sveltecomponent")

#: Wall-time target for replaying automerge-paper through the core, in seconds.
TARGET_TRACE = "automerge-paper"
TARGET_SECONDS = 2.6

T = TypeVar("T")

#: A patch as ``(position, deleted count, inserted text)``, in code points.
Patch = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Trace:
    name: str
    start: str
    end: str
    patches: list[Patch]


@dataclass(frozen=True, slots=True)
class Result:
    trace: str
    edits: int
    start_chars: int
    end_chars: int
    ours_s: float
    baseline_s: float
    us_per_edit: float
    baseline_us_per_edit: float
    ours_runs: list[float]
    baseline_runs: list[float]


class TraceMismatch(Exception):
    """A replay did not end with the trace's ``endContent``."""


def load(path: Path) -> Trace:
    """Read a gzipped trace and flatten its transactions into one list of patches."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    patches: list[Patch] = []
    for txn in data["txns"]:
        if txn.get("parents") is not None or "agent" in txn:
            raise ValueError(f"{path.name} is a concurrent trace; only sequential ones replay")
        for patch in txn["patches"]:
            pos, deleted, inserted = patch[:3]
            patches.append((int(pos), int(deleted), str(inserted)))
    name = path.name.removesuffix(".json.gz")
    return Trace(name, data["startContent"], data["endContent"], patches)


def replay_core(trace: Trace) -> Document:
    """Commit every patch as an operation, with its log entry."""
    doc = Document(trace.start)
    splice = TextOperation.splice
    commit = doc.commit
    for i, (pos, deleted, inserted) in enumerate(trace.patches):
        text = doc.text
        op = splice(len(text), pos, text[pos : pos + deleted], inserted)
        commit(op, "trace", float(i))
    return doc


def replay_baseline(trace: Trace) -> str:
    """Apply every patch by slicing and concatenating strings."""
    text = trace.start
    for pos, deleted, inserted in trace.patches:
        text = text[:pos] + inserted + text[pos + deleted :]
    return text


def timed_runs(repeat: int, run: Callable[[], T], check: Callable[[T], None]) -> list[float]:
    """Time ``run()`` ``repeat`` times, checking each result with ``check``."""
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
        check(result)
    return times


def bench(trace: Trace, repeat: int) -> Result:
    def check_doc(doc: Document) -> None:
        if doc.text != trace.end:
            raise TraceMismatch(f"{trace.name}: the core's replay does not match endContent")
        if doc.revision != len(trace.patches):
            raise TraceMismatch(f"{trace.name}: {doc.revision} revisions, expected one per edit")

    def check_text(text: str) -> None:
        if text != trace.end:
            raise TraceMismatch(f"{trace.name}: the baseline replay does not match endContent")

    ours = timed_runs(repeat, lambda: replay_core(trace), check_doc)
    baseline = timed_runs(repeat, lambda: replay_baseline(trace), check_text)
    edits = len(trace.patches)
    return Result(
        trace=trace.name,
        edits=edits,
        start_chars=len(trace.start),
        end_chars=len(trace.end),
        ours_s=min(ours),
        baseline_s=min(baseline),
        us_per_edit=min(ours) / edits * 1e6,
        baseline_us_per_edit=min(baseline) / edits * 1e6,
        ours_runs=ours,
        baseline_runs=baseline,
    )


def print_table(results: list[Result]) -> None:
    header = f"{'trace':<17} {'edits':>8} {'ours s':>8} {'baseline s':>11} {'µs/edit':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.trace:<17} {r.edits:>8} {r.ours_s:>8.3f} {r.baseline_s:>11.3f}"
            f" {r.us_per_edit:>8.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay editing traces through the core.")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="trace directory")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    results: list[Result] = []
    for name in TRACES:
        path = args.traces / f"{name}.json.gz"
        if not path.exists():
            print(f"error: trace {path} not found", file=sys.stderr)
            return 2
        try:
            results.append(bench(load(path), args.repeat))
        except TraceMismatch as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    print_table(results)
    headline = next(r for r in results if r.trace == TARGET_TRACE)
    met = headline.ours_s <= TARGET_SECONDS
    print(
        f"\ntarget: {TARGET_TRACE} ≤ {TARGET_SECONDS} s through the core:"
        f" {headline.ours_s:.3f} s, {'met' if met else 'MISSED'}"
        f" (best of {args.repeat}; {headline.ours_s / headline.baseline_s:.2f}× plain splicing)"
    )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "trace_replay",
        "python": platform.python_version(),
        "core": core_build(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "repeat": args.repeat,
        "target": {"trace": TARGET_TRACE, "seconds": TARGET_SECONDS, "met": met},
        "results": [asdict(r) for r in results],
    }
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
