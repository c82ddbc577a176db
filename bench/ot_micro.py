"""Micro-benchmark of the operation algebra: compose, transform, compose_all and friends.

Times each case against two versions of ``codesphere/core/operation.py``, both run as plain
Python source: the working tree's ("after") and the one committed at ``--ref`` ("before",
default ``HEAD``), loaded from ``git show`` into a temporary module. ``--before FILE`` takes the
old version from a file instead.

Every case is built from the same seeded random splices on a 3 kB text with newlines, once per
version, and both versions must give the same result (compared through ``to_json``) before
anything is timed.

Usage::

    .venv/bin/python bench/ot_micro.py [--ref REV | --before FILE] [--repeat N] [--output FILE]

Times are µs per call, the best of ``--repeat`` rounds of ``timeit`` (each about 0.2 s); the
two versions take turns round after round.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import subprocess
import sys
import tempfile
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODULE_PATH = "server/codesphere/core/operation.py"
DEFAULT_OUTPUT = REPO / "bench" / "results" / "ot_micro.json"

#: A splice as ``(offset, deleted, inserted)``, applied to the text the previous one produced.
Splice = tuple[int, str, str]

WORDS = (
    "def", "return", "self", "value", "for", "in", "if", "else", "None", "import", "x", "i",
    "(", ")", ":", "=", "+", "[", "]", ",", "#", "'", "range", "len", "print", "class", "0", "1",
)  # fmt: skip


def make_text(rng: random.Random, size: int) -> str:
    """Code-like text of exactly ``size`` code points, with a newline every few words."""
    parts: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(WORDS)
        sep = "\n    " if rng.random() < 0.12 else " "
        parts.append(word + sep)
        total += len(word) + len(sep)
    return "".join(parts)[:size]


def random_splice(rng: random.Random, text: str) -> Splice:
    """A small typing-like replacement: mostly inserts, some deletes, some both."""
    offset = rng.randrange(len(text) + 1)
    kind = rng.random()
    deleted_len = 0 if kind < 0.5 else rng.randint(1, 8)
    deleted = text[offset : offset + deleted_len]
    inserted = "" if 0.5 <= kind < 0.75 else make_text(rng, rng.randint(1, 10))
    if not deleted and not inserted:
        inserted = "z"
    return offset, deleted, inserted


def apply_splice(text: str, splice: Splice) -> str:
    offset, deleted, inserted = splice
    return text[:offset] + inserted + text[offset + len(deleted) :]


def splices_for(mod: ModuleType, rng: random.Random, text: str, components: int) -> list[Splice]:
    """Successive splices whose composition has at least ``components`` components."""
    out: list[Splice] = []
    op = mod.TextOperation.identity(len(text))
    while len(op.components) < components:
        s = random_splice(rng, text)
        op = op.compose(mod.TextOperation.splice(len(text), s[0], s[1], s[2]))
        out.append(s)
        text = apply_splice(text, s)
    return out


def build(mod: ModuleType, text: str, splices: list[Splice]) -> tuple[Any, str]:
    """The composition of ``splices`` on ``text`` in module ``mod``, and its result text."""
    op = mod.TextOperation.identity(len(text))
    for s in splices:
        op = op.compose(mod.TextOperation.splice(len(text), s[0], s[1], s[2]))
        text = apply_splice(text, s)
    return op, text


def splice_ops(mod: ModuleType, text: str, splices: list[Splice]) -> list[Any]:
    """Each splice as its own operation (each on the previous one's result)."""
    ops = []
    for s in splices:
        ops.append(mod.TextOperation.splice(len(text), s[0], s[1], s[2]))
        text = apply_splice(text, s)
    return ops


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    shape: str
    stmt: str
    #: Builds the statement's namespace for one module.
    setup: Any


def cases(text: str, seed: int, probe: ModuleType) -> list[Case]:
    """The benchmark cases; ``probe`` is only used to size the generated operations."""
    rng = random.Random(seed)

    def seq(n_components: int, on: str) -> list[Splice]:
        return splices_for(probe, rng, on, n_components)

    # compose: a on text, b on a's result
    small_a = [random_splice(rng, text)]
    small_b = [random_splice(rng, apply_splice(text, small_a[0]))]
    big60 = seq(60, text)
    big60_end = build(probe, text, big60)[1]
    after60 = [random_splice(rng, big60_end)]
    small_then60 = seq(60, apply_splice(text, small_a[0]))
    mid30 = seq(30, text)
    mid30_end = build(probe, text, mid30)[1]
    next30 = seq(30, mid30_end)
    # transform: both on text
    t_small_b = [random_splice(rng, text)]
    t_mid30_b = seq(30, text)
    # compose_all: successive splices
    runs = {n: [random_splice(rng, text)] for n in (5, 10, 30)}
    for n, run in runs.items():
        t = apply_splice(text, run[0])
        while len(run) < n:
            run.append(random_splice(rng, t))
            t = apply_splice(t, run[-1])

    def compose_pair(first: list[Splice], first_on: str, second: list[Splice]) -> Any:
        def setup(mod: ModuleType) -> dict[str, Any]:
            a, mid = build(mod, first_on, first)
            b, _ = build(mod, mid, second)
            return {"a": a, "b": b}

        return setup

    def transform_pair(first: list[Splice], second: list[Splice]) -> Any:
        def setup(mod: ModuleType) -> dict[str, Any]:
            return {
                "a": build(mod, text, first)[0],
                "b": build(mod, text, second)[0],
                "transform": mod.transform,
            }

        return setup

    def all_of(run: list[Splice]) -> Any:
        def setup(mod: ModuleType) -> dict[str, Any]:
            return {"ops": splice_ops(mod, text, run), "n": len(text), "f": mod.compose_all}

        return setup

    def single(splices: list[Splice]) -> Any:
        def setup(mod: ModuleType) -> dict[str, Any]:
            op, _ = build(mod, text, splices)
            return {"op": op, "text": text, "f": mod.transform_offset, "at": len(text) // 2}

        return setup

    def shape(*groups: list[Splice], on: str = text) -> str:
        sizes = []
        for g in groups:
            op, on = build(probe, on, g)
            sizes.append(str(len(op.components)))
        return "+".join(sizes)

    return [
        Case("compose small+small", shape(small_a, small_b), "a.compose(b)",
             compose_pair(small_a, text, small_b)),
        Case("compose 60+small", shape(big60, after60), "a.compose(b)",
             compose_pair(big60, text, after60)),
        Case("compose small+60", shape(small_a, small_then60), "a.compose(b)",
             compose_pair(small_a, text, small_then60)),
        Case("compose 30+30", shape(mid30, next30), "a.compose(b)",
             compose_pair(mid30, text, next30)),
        Case("transform small,small", f"{shape(small_a)},{shape(t_small_b)}",
             "transform(a, b)", transform_pair(small_a, t_small_b)),
        Case("transform 60,small", f"{shape(big60)},{shape(t_small_b)}", "transform(a, b)",
             transform_pair(big60, t_small_b)),
        Case("transform small,60", f"{shape(t_small_b)},{shape(big60)}", "transform(a, b)",
             transform_pair(t_small_b, big60)),
        Case("transform 30,30", f"{shape(mid30)},{shape(t_mid30_b)}", "transform(a, b)",
             transform_pair(mid30, t_mid30_b)),
        Case("compose_all 5 splices", "5x", "f(ops, n)", all_of(runs[5])),
        Case("compose_all 10 splices", "10x", "f(ops, n)", all_of(runs[10])),
        Case("compose_all 30 splices", "30x", "f(ops, n)", all_of(runs[30])),
        Case("invert 60", shape(big60), "op.invert()", single(big60)),
        Case("apply 60 (3 kB)", shape(big60), "op.apply(text)", single(big60)),
        Case("transform_offset 60", shape(big60), "f(op, at)", single(big60)),
    ]  # fmt: skip


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_before(ref: str, before: Path | None, tmp: Path) -> ModuleType:
    if before is None:
        source = subprocess.run(
            ["git", "show", f"{ref}:{MODULE_PATH}"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        before = tmp / "operation_before.py"
        before.write_text(source, encoding="utf-8")
    return load_module(before, "ot_micro_before")


def best_us(stmt: str, namespaces: list[dict[str, Any]], repeat: int) -> list[float]:
    """Best µs per call of ``stmt`` in each namespace.

    The namespaces take turns round after round, so that a change in machine load during the
    measurement affects both versions alike.
    """
    timers = [timeit.Timer(stmt, globals=ns) for ns in namespaces]
    numbers = []
    for timer in timers:
        number, elapsed = timer.autorange()
        numbers.append(max(1, int(number * 0.2 / max(elapsed, 1e-9))))
    best = [float("inf")] * len(timers)
    for _ in range(repeat):
        for k, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
            best[k] = min(best[k], timer.timeit(number) / number * 1e6)
    return best


def outcome(value: Any) -> Any:
    """A comparable form of a statement's result across the two module versions."""
    if isinstance(value, tuple):
        return [outcome(v) for v in value]
    if hasattr(value, "to_json"):
        return [value.to_json(), value.base_length, value.target_length]
    return value


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    shape: str
    before_us: float
    after_us: float
    speedup: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="git revision of the 'before' version")
    parser.add_argument("--before", type=Path, help="file holding the 'before' version")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    # The working tree's source, not an installed build: both sides run as plain Python, so
    # the comparison is between the two algorithms (setup.py may compile the installed one).
    after = load_module(REPO / MODULE_PATH, "operation_after")

    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(args.ref, args.before, Path(tmp))

    text = make_text(random.Random(args.seed), 3000)
    rows: list[Row] = []
    print(f"{'case':<24} {'components':>11} {'before µs':>10} {'after µs':>10} {'speedup':>8}")
    for case in cases(text, args.seed, after):
        ns_before = case.setup(before)
        ns_after = case.setup(after)
        got_before = outcome(eval(case.stmt, ns_before))
        got_after = outcome(eval(case.stmt, ns_after))
        if got_before != got_after:
            print(f"{case.name}: results differ between versions", file=sys.stderr)
            return 1
        t_before, t_after = best_us(case.stmt, [ns_before, ns_after], args.repeat)
        row = Row(case.name, case.shape, t_before, t_after, t_before / t_after)
        rows.append(row)
        print(
            f"{row.case:<24} {row.shape:>11} {row.before_us:>10.2f} {row.after_us:>10.2f}"
            f" {row.speedup:>7.2f}x"
        )

    report = {
        "benchmark": "ot_micro",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "before": str(args.before) if args.before else f"git {args.ref}:{MODULE_PATH}",
        "after": "working tree",
        "text_chars": len(text),
        "repeat": args.repeat,
        "seed": args.seed,
        "unit": "µs per call (best of repeat)",
        "results": [asdict(r) for r in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
