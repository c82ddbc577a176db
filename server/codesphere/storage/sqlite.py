"""SQLite storage backend built on the standard library ``sqlite3`` module.

Threading model:

* **One writer thread** owns the only read-write connection. Async callers put
  a write request (a function of the connection) on a queue and await a
  future. The thread blocks on the queue, drains every queued request (up to
  :data:`MAX_BATCH`), runs them in a single transaction, commits once (*group
  commit*), then resolves all the batch's futures with one ``loop.call_soon_threadsafe``. A
  request that fails (for example a :class:`~codesphere.storage.base.RevisionConflict`) fails
  alone: the transaction is rolled back and the batch rerun with each request in its own
  ``SAVEPOINT``, so that the rest of the batch still commits. While the server is busy, the
  writer first sleeps a moment so that more requests share the commit (see
  :mod:`~codesphere.storage.commit_window`).
* **One reader thread** owns a read-only connection. Each read runs in its own
  read transaction, so multi-statement reads see one consistent snapshot, and
  every read sees all writes whose futures have already resolved.
* **One checkpoint thread** copies the write-ahead log into the database file
  (``PRAGMA wal_checkpoint(PASSIVE)``) about once a second while there are new
  commits. Checkpoints are the only writes that fsync; left to SQLite they would
  run inside a commit every thousand pages and hold up every write queued behind
  it for milliseconds (seen as the p99 of edit latency). A passive checkpoint
  never blocks the writer.

The event loop never waits on SQLite: it only enqueues work and awaits futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import orjson

from codesphere.storage import _sqlite_sql as sql
from codesphere.storage.base import (
    EOLS,
    ROLES,
    ChatRecord,
    DocumentRecord,
    InviteRecord,
    MemberRecord,
    OpRecord,
    RevisionConflict,
    RoomRecord,
    StorageError,
    StoredDocument,
)
from codesphere.storage.commit_window import CommitWindow

__all__ = ["MAX_BATCH", "SqliteStorage"]

T = TypeVar("T")

MAX_BATCH: Final = 512
"""Maximum number of write requests committed in one transaction."""

CHECKPOINT_INTERVAL_S: Final = 1.0
"""How often the checkpoint thread looks for new commits to copy into the database file."""

BUSY_TIMEOUT_S: Final = 10.0

_State = Literal["new", "opening", "open", "closed"]


@dataclass(slots=True)
class _Write:
    """A queued write: ``fn`` runs on the writer thread inside a savepoint."""

    fn: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


# (request, succeeded, result value or exception)
_Outcome = tuple[_Write, bool, Any]


class SqliteStorage:
    """:class:`~codesphere.storage.base.Storage` backed by one SQLite file.

    Use from a single event loop. Cancelling a caller awaiting a write does not
    withdraw the write: once queued it is applied (or rejected) regardless.

    Attributes:
        path: The database file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Create a closed storage for the database file at ``path``.

        Args:
            path: Database file; created with its schema on :meth:`open`.
        """
        self.path = Path(path)
        self._state: _State = "new"
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._close_task: asyncio.Future[None] | None = None
        self._commit_count = 0
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        #: How long the writer waits for more writes to share a commit (group commit).
        self.commit_window = CommitWindow()

    @property
    def commit_count(self) -> int:
        """Number of transactions committed by the writer thread so far."""
        return self._commit_count

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open both connections, create the schema if needed, start the writer.

        Raises:
            StorageError: Already opened, or the database cannot be opened or
                has a newer schema than this code understands.
        """
        if self._state != "new":
            raise StorageError(f"cannot open storage in state {self._state!r}")
        self._state = "opening"
        loop = asyncio.get_running_loop()
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codesphere-sqlite-read")
        write_conn: sqlite3.Connection | None = None
        try:
            write_conn = await asyncio.to_thread(self._connect_writer)
            await loop.run_in_executor(reader, self._connect_reader)
        except BaseException:
            if write_conn is not None:
                write_conn.close()
            await loop.run_in_executor(reader, self._close_reader)
            reader.shutdown(wait=False)
            self._state = "new"
            raise
        self._reader = reader
        self._writer = threading.Thread(
            target=self._writer_main,
            args=(write_conn,),
            name="codesphere-sqlite-write",
            daemon=True,
        )
        self._writer.start()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_main, name="codesphere-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()
        self._state = "open"

    async def close(self) -> None:
        """Apply all queued writes, stop both threads and close the connections.

        Idempotent; concurrent callers all wait for the same shutdown. Writes
        and reads issued after ``close`` starts raise :class:`StorageError`.
        """
        if self._state == "opening":
            raise StorageError("cannot close storage while it is opening")
        if self._state == "new":
            self._state = "closed"
        if self._close_task is None:
            if self._state == "closed":
                return
            self._state = "closed"
            self._queue.put(None)  # processed after every write queued before it
            self._close_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._close_task)

    async def _shutdown(self) -> None:
        assert self._writer is not None and self._reader is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reader, self._close_reader)
        await asyncio.to_thread(self._reader.shutdown, True)
        # The writer's connection is the last one closed, so SQLite checkpoints
        # the WAL into the main file and removes it.
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        await asyncio.to_thread(self._writer.join)

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StorageError(f"cannot enable WAL mode on {self.path} (got {mode!r})")
            # Durability promise: with WAL and synchronous=NORMAL a COMMIT appends
            # the transaction to the WAL file with a write() but does not fsync it
            # (fsync happens at checkpoints). The data is therefore in the OS page
            # cache when a write's future resolves and survives the process being
            # killed at any point, `kill -9` included. An OS crash or power loss may
            # lose the most recent commits but never corrupts the database. Use
            # synchronous=FULL if acknowledged writes must survive power loss.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoints run on their own thread (see the module docstring).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > sql.SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}, newer than {sql.SCHEMA_VERSION}"
                )
            if version == 0:
                conn.executescript(sql.SCHEMA)
            while 0 < version < sql.SCHEMA_VERSION:
                conn.executescript(sql.MIGRATIONS[version])
                version += 1
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot initialise {self.path}: {exc}") from exc
            raise
        return conn

    def _checkpoint_main(self) -> None:
        """Copy new commits from the WAL into the database file, off the commit path."""
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error:
            return  # nothing to do without it; closing the writer still checkpoints
        try:
            done = self._commit_count
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL_S):
                if self._commit_count == done:
                    continue
                done = self._commit_count
                with contextlib.suppress(sqlite3.Error):  # busy: the next round catches up
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def _connect_reader(self) -> None:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            self._read_conn = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path} for reading: {exc}") from exc

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    # --------------------------------------------------------------- writer side

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue ``fn`` for the writer thread and wait until its batch commits."""
        if self._state != "open":
            raise StorageError(f"storage is not open (state {self._state!r})")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.commit_window.observe()
        self._queue.put(_Write(fn, loop, future))
        return await future

    def _writer_main(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                batch: list[_Write] = []
                while item is not None:
                    batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                else:
                    stopping = True
                if batch:
                    try:
                        outcomes = self._run_batch(conn, batch)
                    except Exception as exc:  # keep the thread alive whatever happens
                        outcomes = self._abort_batch(conn, batch, exc)
                    _deliver(outcomes)
                # Under load, let the next writes queue up for a moment to share a commit.
                # Sleeping here, rather than waiting on the queue, means that while the load
                # lasts the queue is never empty when this thread comes back for it, so no
                # write has to wake it (a write after a quiet spell commits at once).
                wait = self.commit_window.seconds
                if wait and not stopping:
                    time.sleep(wait)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> list[_Outcome]:
        """Run ``batch`` in one transaction; a request that fails changes nothing.

        The requests first run back to back. Should one fail, the transaction is rolled back
        and the batch runs again with each request in a savepoint of its own, so that only the
        failing one fails. Failures are rare, and a savepoint for every request would cost two
        more statements each.
        """
        settled: list[_Outcome] = []
        remaining = batch
        guarded = False
        while remaining:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                err = StorageError(f"cannot begin transaction: {exc}")
                return settled + [(w, False, err) for w in remaining]
            outcomes: list[_Outcome] = []
            aborted_at: int | None = None
            rerun = False
            for index, write in enumerate(remaining):
                if guarded:
                    conn.execute("SAVEPOINT write")
                try:
                    value = write.fn(conn)
                except Exception as exc:
                    error = _as_storage_error(exc)
                    if not guarded and conn.in_transaction:
                        conn.execute("ROLLBACK")
                        if len(remaining) > 1:
                            rerun = guarded = True  # all of them again, each in a savepoint
                            break
                    if not conn.in_transaction:
                        # The whole transaction is gone (rolled back above, or by SQLite on
                        # e.g. a full disk): fail this request, rerun the others afresh.
                        settled.append((write, False, error))
                        aborted_at = index
                        break
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    outcomes.append((write, False, error))
                else:
                    if guarded:
                        conn.execute("RELEASE write")
                    outcomes.append((write, True, value))
            if rerun:
                continue
            if aborted_at is not None:
                remaining = remaining[:aborted_at] + remaining[aborted_at + 1 :]
                continue
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                err = StorageError(f"commit failed: {exc}")
                return settled + [(w, False, err) for w, _, _ in outcomes]
            self._commit_count += 1
            return settled + outcomes
        return settled

    @staticmethod
    def _abort_batch(
        conn: sqlite3.Connection, batch: list[_Write], exc: Exception
    ) -> list[_Outcome]:
        """Roll back whatever is open and fail every request of the batch."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        error = StorageError(f"write batch failed: {exc!r}")
        error.__cause__ = exc
        return [(write, False, error) for write in batch]

    # --------------------------------------------------------------- reader side

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction on the reader thread."""
        if self._state != "open" or self._reader is None:
            raise StorageError(f"storage is not open (state {self._state!r})")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn
        if conn is None:
            raise StorageError("storage is closed")
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise _as_storage_error(exc) from exc

    # ---------------------------------------------------------------------- rooms

    async def create_room(self, room: RoomRecord) -> None:
        """See :meth:`codesphere.storage.base.Storage.create_room`."""
        await self._write(partial(sql.w_create_room, room))

    async def get_room(self, room_id: str) -> RoomRecord | None:
        """See :meth:`codesphere.storage.base.Storage.get_room`."""
        return await self._read(partial(sql.r_get_room, room_id))

    async def list_rooms(self) -> list[RoomRecord]:
        """See :meth:`codesphere.storage.base.Storage.list_rooms`."""
        return await self._read(sql.r_list_rooms)

    async def delete_room(self, room_id: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.delete_room`."""
        await self._write(partial(sql.w_delete_room, room_id))

    async def touch_room(self, room_id: str, updated_at: float) -> None:
        """See :meth:`codesphere.storage.base.Storage.touch_room`."""
        await self._write(partial(sql.w_touch_room, room_id, updated_at))

    # -------------------------------------------------------------------- members

    async def upsert_member(self, member: MemberRecord) -> None:
        """See :meth:`codesphere.storage.base.Storage.upsert_member`."""
        if member.role not in ROLES:
            raise ValueError(f"invalid role {member.role!r}")
        await self._write(partial(sql.w_upsert_member, member))

    async def list_members(self, room_id: str) -> list[MemberRecord]:
        """See :meth:`codesphere.storage.base.Storage.list_members`."""
        return await self._read(partial(sql.r_list_members, room_id))

    async def get_member(self, room_id: str, member_id: str) -> MemberRecord | None:
        """See :meth:`codesphere.storage.base.Storage.get_member`."""
        return await self._read(partial(sql.r_get_member, room_id, member_id))

    async def delete_member(self, room_id: str, member_id: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.delete_member`."""
        await self._write(partial(sql.w_delete_member, room_id, member_id))

    async def rooms_of_user(self, user_id: str) -> list[tuple[RoomRecord, MemberRecord]]:
        """See :meth:`codesphere.storage.base.Storage.rooms_of_user`."""
        return await self._read(partial(sql.r_rooms_of_user, user_id))

    # -------------------------------------------------------------------- invites

    async def create_invite(self, invite: InviteRecord) -> None:
        """See :meth:`codesphere.storage.base.Storage.create_invite`."""
        if invite.role not in ROLES:
            raise ValueError(f"invalid role {invite.role!r}")
        if invite.max_uses is not None and invite.max_uses < 1:
            raise ValueError(f"max_uses must be at least 1, not {invite.max_uses}")
        await self._write(partial(sql.w_create_invite, invite))

    async def get_invite(self, invite_id: str) -> InviteRecord | None:
        """See :meth:`codesphere.storage.base.Storage.get_invite`."""
        return await self._read(partial(sql.r_get_invite, invite_id))

    async def list_invites(self, room_id: str) -> list[InviteRecord]:
        """See :meth:`codesphere.storage.base.Storage.list_invites`."""
        return await self._read(partial(sql.r_list_invites, room_id))

    async def revoke_invite(self, room_id: str, invite_id: str, at: float) -> None:
        """See :meth:`codesphere.storage.base.Storage.revoke_invite`."""
        await self._write(partial(sql.w_revoke_invite, room_id, invite_id, at))

    async def redeem_invite(self, invite_id: str, now: float, member: MemberRecord) -> None:
        """See :meth:`codesphere.storage.base.Storage.redeem_invite`."""
        if member.role not in ROLES:
            raise ValueError(f"invalid role {member.role!r}")
        await self._write(partial(sql.w_redeem_invite, invite_id, now, member))

    # ------------------------------------------------------------------ documents

    async def create_document(self, record: DocumentRecord, text: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.create_document`."""
        if record.revision != 0:
            raise ValueError(f"a new document must be at revision 0, not {record.revision}")
        if record.eol not in EOLS:
            raise ValueError(f"invalid eol {record.eol!r}")
        await self._write(partial(sql.w_create_document, record, text))

    async def rename_document(self, room_id: str, doc_id: str, new_path: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.rename_document`."""
        await self._write(partial(sql.w_rename_document, room_id, doc_id, new_path))

    async def delete_document(self, room_id: str, doc_id: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.delete_document`."""
        await self._write(partial(sql.w_delete_document, room_id, doc_id))

    async def list_documents(self, room_id: str) -> list[DocumentRecord]:
        """See :meth:`codesphere.storage.base.Storage.list_documents`."""
        return await self._read(partial(sql.r_list_documents, room_id))

    async def load_document(self, room_id: str, doc_id: str) -> StoredDocument:
        """See :meth:`codesphere.storage.base.Storage.load_document`."""
        return await self._read(partial(sql.r_load_document, room_id, doc_id))

    async def append_ops(
        self, room_id: str, doc_id: str, expected_head: int, ops: list[OpRecord]
    ) -> None:
        """See :meth:`codesphere.storage.base.Storage.append_ops`."""
        for index, op in enumerate(ops):
            if op.revision != expected_head + 1 + index:
                raise RevisionConflict(
                    f"op #{index} has revision {op.revision}, expected {expected_head + 1 + index}"
                )
        rows = [
            (
                room_id,
                doc_id,
                op.revision,
                op.author,
                op.timestamp,
                orjson.dumps(op.op).decode(),
                op.seq,
                op.member,
            )
            for op in ops
        ]
        await self._write(partial(sql.w_append_ops, room_id, doc_id, expected_head, rows))

    async def read_ops(
        self, room_id: str, doc_id: str, since_revision: int, limit: int | None = None
    ) -> list[OpRecord]:
        """See :meth:`codesphere.storage.base.Storage.read_ops`."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return await self._read(partial(sql.r_read_ops, room_id, doc_id, since_revision, limit))

    async def save_snapshot(self, room_id: str, doc_id: str, revision: int, text: str) -> None:
        """See :meth:`codesphere.storage.base.Storage.save_snapshot`."""
        if revision < 0:
            raise ValueError(f"revision must be >= 0, not {revision}")
        await self._write(partial(sql.w_save_snapshot, room_id, doc_id, revision, text))

    # ----------------------------------------------------------------------- chat

    async def append_chat(
        self,
        room_id: str,
        id: str,
        author_id: str,
        author_name: str,
        text: str,
        timestamp: float,
    ) -> ChatRecord:
        """See :meth:`codesphere.storage.base.Storage.append_chat`."""
        return await self._write(
            partial(sql.w_append_chat, room_id, id, author_id, author_name, text, timestamp)
        )

    async def chat_history(
        self, room_id: str, before_seq: int | None = None, limit: int = 50
    ) -> list[ChatRecord]:
        """See :meth:`codesphere.storage.base.Storage.chat_history`."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return await self._read(partial(sql.r_chat_history, room_id, before_seq, limit))


# ------------------------------------------------------------------------ helpers


def _deliver(outcomes: list[_Outcome]) -> None:
    """Hand outcomes to their event loops: one ``call_soon_threadsafe`` per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop has no waiters left
            loop.call_soon_threadsafe(_settle, items)


def _settle(outcomes: list[_Outcome]) -> None:
    for write, ok, value in outcomes:
        if write.future.done():  # the caller was cancelled
            continue
        if ok:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)


def _as_storage_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        error = StorageError(f"sqlite error: {exc}")
        error.__cause__ = exc
        return error
    return exc
