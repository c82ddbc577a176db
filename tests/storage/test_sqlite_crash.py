"""Durability of SqliteStorage across the writing process being killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

import codesphere
from codesphere.storage import SqliteStorage

DOCS = 4
ACKS_BEFORE_KILL = 300

# Appends to DOCS documents from concurrent tasks, 1 to 3 ops per call, and
# prints "<doc> <revision>" for every revision once append_ops has returned.
CHILD = textwrap.dedent(
    """
    import asyncio
    import sys

    from codesphere.storage import DocumentRecord, OpRecord, RoomRecord, SqliteStorage


    async def write_forever(storage, doc_id):
        head = 0
        call = 0
        while True:
            count = 1 + call % 3
            call += 1
            ops = [
                OpRecord(rev, "child", float(rev), ["ins", doc_id, rev])
                for rev in range(head + 1, head + 1 + count)
            ]
            await storage.append_ops("room", doc_id, head, ops)
            head += count
            sys.stdout.write("".join(f"{doc_id} {op.revision}\\n" for op in ops))
            sys.stdout.flush()


    async def main(path, docs):
        storage = SqliteStorage(path)
        await storage.open()
        await storage.create_room(RoomRecord("room", "crash", 0.0, 0.0))
        for i in range(docs):
            record = DocumentRecord("room", f"d{i}", f"f{i}", "\\n", 0.0, 0)
            await storage.create_document(record, "")
        print("ready", flush=True)
        await asyncio.gather(*(write_forever(storage, f"d{i}") for i in range(docs)))


    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def _parse_acks(lines: list[str]) -> dict[str, set[int]]:
    """Map each document to the revisions the child acknowledged in complete lines."""
    acked: dict[str, set[int]] = defaultdict(set)
    for line in lines:
        if not line.endswith("\n"):
            continue  # cut short by the kill: not a complete acknowledgement
        doc_id, revision = line.split()
        acked[doc_id].add(int(revision))
    return acked


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_ops_survive_sigkill(tmp_path: Path) -> None:
    """Every revision whose append_ops returned before a SIGKILL is present after reopening."""
    db = tmp_path / "crash.db"
    server_dir = str(Path(codesphere.__file__).resolve().parent.parent)
    python_path = [server_dir, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(DOCS)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        lines = [child.stdout.readline() for _ in range(ACKS_BEFORE_KILL)]
        assert all(lines), "child exited before being killed"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        # Lines still in the pipe were printed before the kill: they count too.
        lines += child.stdout.readlines()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()

    acked = _parse_acks(lines)
    assert sum(len(revisions) for revisions in acked.values()) >= ACKS_BEFORE_KILL

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    async def read_back() -> dict[str, list[tuple[int, list[object]]]]:
        storage = SqliteStorage(db)
        await storage.open()
        try:
            history = {}
            for i in range(DOCS):
                doc_id = f"d{i}"
                stored = await storage.load_document("room", doc_id)
                ops = await storage.read_ops("room", doc_id, 0)
                assert stored.record.revision == len(ops)
                history[doc_id] = [(op.revision, op.op) for op in ops]
            return history
        finally:
            await storage.close()

    history = asyncio.run(read_back())
    for doc_id, ops in history.items():
        # Gap-free history: revision n is the n-th op and carries its own payload.
        assert [revision for revision, _ in ops] == list(range(1, len(ops) + 1))
        assert all(payload == ["ins", doc_id, revision] for revision, payload in ops)
        missing = acked.get(doc_id, set()) - {revision for revision, _ in ops}
        assert not missing, f"{doc_id} lost acknowledged revisions {sorted(missing)}"
