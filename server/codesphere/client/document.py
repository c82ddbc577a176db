"""An open document, kept in step with the server by the revision rule (protocol.md §6).

:class:`RemoteDocument` wraps a :class:`~codesphere.client.state.ClientDocument` (the pure rule)
and does the I/O around it: every local edit is applied at once and sent as
``textDocument/didChange``; acknowledgements and ``textDocument/remoteChange`` notifications are
applied in the connection's reader, in the order the server sent them; any refusal of an edit
makes the document re-open itself (resynchronise), since its text may then differ from the
server's. Edits made while the connection is down are applied and kept, and resent after
:meth:`~codesphere.client.connection.CodeSphereClient.reconnect` (§6.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codesphere.client.errors import (
    DOCUMENT_NOT_FOUND,
    ClientError,
    ConnectionLost,
    DocumentClosed,
    NotConnected,
    ResyncNeeded,
    RpcError,
)
from codesphere.client.rpc import RpcConnection, Signal
from codesphere.client.state import ClientDocument, OutOfSync, PendingEdit
from codesphere.core.changes import ContentChange
from codesphere.core.errors import SyncError
from codesphere.core.positions import Encoding, Position, position_at

if TYPE_CHECKING:
    from codesphere.client.connection import CodeSphereClient

logger = logging.getLogger("codesphere.client")


def position_to_json(position: Position) -> dict[str, int]:
    """A ``(line, character)`` pair as a protocol ``Position``."""
    return {"line": position[0], "character": position[1]}


def position_from_json(raw: Any) -> Position:
    """A protocol ``Position`` as a ``(line, character)`` pair."""
    return int(raw["line"]), int(raw["character"])


def change_to_json(change: ContentChange) -> dict[str, Any]:
    """A content change as a protocol ``ContentChange``."""
    if change.range is None:
        return {"text": change.text}
    start, end = change.range
    return {
        "range": {"start": position_to_json(start), "end": position_to_json(end)},
        "text": change.text,
    }


def change_from_json(raw: Any) -> ContentChange:
    """A protocol ``ContentChange`` (with or without a range) as a :class:`ContentChange`."""
    text = str(raw["text"])
    range_ = raw.get("range")
    if range_ is None:
        return ContentChange(None, text)
    return ContentChange(
        (position_from_json(range_["start"]), position_from_json(range_["end"])), text
    )


class RemoteDocument:
    """A document open on a :class:`~codesphere.client.connection.CodeSphereClient`.

    Attributes:
        eol: the document's on-disk line-end style (``"\\n"`` or ``"\\r\\n"``); the text itself
            always uses ``\\n``.
        errors: every error the server answered this document's edits or re-opens with,
            oldest first.
        needs_resync: the text may differ from the server's: the document must be re-opened
            (done automatically unless the client was made with ``auto_resync=False``).
        lost_edits: how many local edits were abandoned because a resync replaced the text.
        closed: the document was closed (or deleted on the server).
    """

    def __init__(
        self,
        client: CodeSphereClient,
        path: str,
        text: str,
        revision: int,
        eol: str,
        encoding: Encoding,
        last_seq: int = 0,
    ) -> None:
        self._client = client
        self._state = ClientDocument(path, text, revision, encoding, last_seq=last_seq)
        self.eol = eol
        self.errors: list[RpcError] = []
        self.needs_resync = False
        self.lost_edits = 0
        self.closed = False
        self._generation = 0  # replies to messages of an older generation are ignored
        self._attached = True  # open on the current connection: edits may be sent
        self._opening = False  # a plain didOpen is in flight: edits wait, remote edits ignored
        self._resync_task: asyncio.Task[None] | None = None
        self._changed = Signal()

    # -- state -------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The document's path in the room's workspace."""
        return self._state.path

    @property
    def text(self) -> str:
        """The client's current text: the server's at :attr:`revision` plus unacked edits."""
        return self._state.text

    @property
    def revision(self) -> int:
        """The last server revision applied to :attr:`text`."""
        return self._state.revision

    @property
    def unacked(self) -> int:
        """How many sent (or queued) edits await an acknowledgement."""
        return self._state.unacked

    @property
    def pending(self) -> list[PendingEdit]:
        """Edits kept since :attr:`revision` last moved (resent after a reconnect)."""
        return list(self._state.pending)

    @property
    def encoding(self) -> Encoding:
        """The position encoding of every change and position of this document."""
        return self._state.encoding

    @property
    def is_settled(self) -> bool:
        """No edit awaits an acknowledgement and no re-open is needed or in flight."""
        return (
            self._state.unacked == 0
            and self._attached
            and not self._opening
            and not self.needs_resync
        )

    def __repr__(self) -> str:
        return (
            f"RemoteDocument({self.path!r}, revision={self.revision}, unacked={self.unacked},"
            f" length={len(self.text)})"
        )

    # -- editing -----------------------------------------------------------------------------

    async def edit(self, changes: Sequence[ContentChange]) -> PendingEdit:
        """Apply ``changes`` (positions in :attr:`encoding`) locally, then send them.

        Returns once the edit is sent (or kept for after a reconnect when disconnected); the
        acknowledgement is not awaited: see :meth:`settled`.

        Raises:
            DocumentClosed: the document is closed.
            ResyncNeeded: the document must be re-opened first and that cannot happen now.
            PositionError, InvalidChange: a change does not fit :attr:`text`; nothing changed.
        """
        await self._ready_for_edit()
        return await self._edit_now(list(changes))

    async def replace(self, start: int, end: int, text: str) -> PendingEdit:
        """Replace the code points ``start:end`` of :attr:`text` with ``text``.

        Raises:
            ValueError: ``end < start``.
            PositionError: an offset is outside :attr:`text`.
        """
        if end < start:
            raise ValueError(f"range end {end} is before its start {start}")
        await self._ready_for_edit()
        current = self._state.text
        first = position_at(current, start, self.encoding)
        last = first if end == start else position_at(current, end, self.encoding)
        return await self._edit_now([ContentChange((first, last), text)])

    async def insert(self, offset: int, text: str) -> PendingEdit:
        """Insert ``text`` at code-point ``offset`` of :attr:`text`."""
        return await self.replace(offset, offset, text)

    async def delete(self, start: int, end: int) -> PendingEdit:
        """Delete the code points ``start:end`` of :attr:`text`."""
        return await self.replace(start, end, "")

    async def _ready_for_edit(self) -> None:
        while True:
            self._check_open()
            if self._opening:
                await self._changed.wait()
                continue
            if not self.needs_resync:
                return
            connection = self._client.connection
            if not self._client.auto_resync or connection is None or not connection.is_open:
                raise ResyncNeeded(f"{self.path} must be re-opened before it is edited again")
            await self.resync()

    async def _edit_now(self, changes: list[ContentChange]) -> PendingEdit:
        # Nothing here may suspend before the edit is queued: the order of edits is the order
        # in which they are applied locally.
        edit = self._state.local_edit(changes)
        self._changed.notify()
        connection = self._client.connection
        if self._attached and connection is not None and connection.is_open:
            sent = self._send_edit(connection, edit)
            # On a lost connection the edit stays in ``pending``, resent after a reconnect.
            with contextlib.suppress(ConnectionLost):
                await asyncio.shield(sent)
        return edit

    def _send_edit(self, connection: RpcConnection, edit: PendingEdit) -> asyncio.Future[None]:
        generation = self._generation

        def on_reply(result: Any, error: RpcError | None) -> None:
            self._on_edit_reply(generation, result, error)

        params = {
            "path": self.path,
            "revision": edit.base,
            "seq": edit.seq,
            "contentChanges": [change_to_json(c) for c in edit.changes],
        }
        return connection.send_request("textDocument/didChange", params, on_reply).sent

    # -- what the server says (run in the connection's reader) -------------------------------

    def _on_edit_reply(self, generation: int, result: Any, error: RpcError | None) -> None:
        if generation != self._generation or self.closed:
            return  # an answer about a text that a re-open has since replaced
        if error is not None:
            logger.warning("codesphere: edit of %s refused: %s", self.path, error)
            self.errors.append(error)
            self._mark_resync()
            return
        if self._state.unacked <= 0:
            logger.warning("codesphere: unexpected acknowledgement for %s", self.path)
            return
        try:
            catch_up = [change_from_json(c) for c in result.get("catchUp") or ()]
            self._state.on_ack(int(result["revision"]), catch_up)
        except (SyncError, KeyError, TypeError, ValueError, AttributeError):
            logger.exception("codesphere: acknowledgement for %s does not fit", self.path)
            self._mark_resync()
        self._changed.notify()

    def _on_remote_change(self, params: Any) -> None:
        if self.closed or self._opening or self.needs_resync or not self._attached:
            return
        try:
            changes = [change_from_json(c) for c in params["contentChanges"]]
            if self._state.on_remote(int(params["revision"]), changes):
                self._changed.notify()
        except OutOfSync as exc:
            logger.warning("codesphere: %s is out of sync: %s", self.path, exc)
            self._mark_resync()
        except (SyncError, KeyError, TypeError, ValueError):
            logger.exception("codesphere: remote change for %s does not fit", self.path)
            self._mark_resync()

    def _mark_resync(self) -> None:
        """The text may differ from the server's: stop sending and re-open if allowed."""
        if self.needs_resync:
            return
        self.needs_resync = True
        self._generation += 1
        self._changed.notify()
        if self._client.auto_resync and not self.closed:
            self._resync_soon()

    def _resync_soon(self) -> None:
        if self._resync_task is not None and not self._resync_task.done():
            return

        async def run() -> None:
            try:
                await self._reopen()
            except NotConnected:
                pass  # the reconnect will re-open the document
            except RpcError as exc:
                logger.warning("codesphere: could not re-open %s: %s", self.path, exc)
            except Exception:
                logger.exception("codesphere: could not re-open %s", self.path)

        self._resync_task = asyncio.create_task(run(), name=f"codesphere-resync-{self.path}")

    # -- re-opening --------------------------------------------------------------------------

    async def resync(self) -> None:
        """Re-open the document plainly and take the server's text (unacked edits are lost).

        Raises:
            NotConnected: there is no connection.
            RpcError: the server refused the re-open (for example the file was deleted).
        """
        self._check_open()
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.create_task(self._reopen())
        await asyncio.shield(self._resync_task)

    async def _reopen(self) -> None:
        connection = self._client.connection
        if connection is None or not connection.is_open:
            self.needs_resync = True
            self._changed.notify()
            raise NotConnected("not connected")
        call = self._send_open(connection, None)
        try:
            await call
        except ConnectionLost:
            self._opening = False
            self.needs_resync = True
            self._attached = False
            self._changed.notify()
            raise

    def _send_open(self, connection: RpcConnection, resume: int | None) -> asyncio.Future[Any]:
        """Queue a ``didOpen``: plain (take the server's text) or resuming at ``resume``."""
        self._generation += 1
        generation = self._generation
        params: dict[str, Any] = {"path": self.path}
        if resume is None:
            self._opening = True
        else:
            params["revision"] = resume
        self._attached = False
        self._changed.notify()

        def on_reply(result: Any, error: RpcError | None) -> None:
            if resume is None:
                self._on_open_reply(generation, result, error)

        return connection.send_request("textDocument/didOpen", params, on_reply).reply

    def _on_open_reply(self, generation: int, result: Any, error: RpcError | None) -> None:
        if generation != self._generation or self.closed:
            return
        self._opening = False
        if error is not None:
            self.errors.append(error)
            self.needs_resync = True
            if error.code == DOCUMENT_NOT_FOUND:
                self._client._forget(self)
                self._set_closed()
        else:
            self.lost_edits += len(self._state.pending)
            self._state.reset(str(result["text"]), int(result["revision"]))
            # Continue after every edit the server has from this client id (protocol §6.1).
            self._state.last_seq = max(self._state.last_seq, int(result.get("lastSeq", 0)))
            self.eol = str(result.get("eol", self.eol))
            self.needs_resync = False
            self._attached = True
        self._changed.notify()

    async def _resume(self, connection: RpcConnection) -> None:
        """After a reconnect: re-open as protocol.md §6.5 says, resending kept edits."""
        if self.closed:
            return
        if self.needs_resync or not self._state.pending:
            with contextlib.suppress(RpcError):  # recorded by _on_open_reply
                await self._send_open(connection, None)
            return
        reply = self._send_open(connection, self._state.revision)
        generation = self._generation
        try:
            result = await reply
        except RpcError as exc:
            if generation != self._generation or self.closed:
                return  # re-opened meanwhile
            # Too far behind (or otherwise unplaceable): open plainly; the kept edits are lost.
            logger.warning("codesphere: kept edits of %s could not be placed: %s", self.path, exc)
            self.errors.append(exc)
            self.needs_resync = True
            with contextlib.suppress(RpcError):
                await self._send_open(connection, None)
            return
        if generation != self._generation or self.closed:
            return  # re-opened plainly meanwhile: the kept edits went with it
        self.eol = str(result.get("eol", self.eol))
        # Queued in one go, so nothing can come between them; edits made while the didOpen
        # was in flight are in ``pending`` too and go with them.
        self._attached = True
        for edit in self._state.resume():
            self._send_edit(connection, edit)
        self._changed.notify()

    def _detach(self) -> None:
        """The connection is gone: keep edits locally until the next reconnect."""
        self._attached = False
        self._opening = False
        self._generation += 1
        self._changed.notify()

    # -- waiting and checking ----------------------------------------------------------------

    async def settled(self, timeout: float | None = 10.0) -> None:
        """Wait until every edit is acknowledged and no re-open is needed or in flight.

        While the connection is down this waits for :meth:`CodeSphereClient.reconnect`.

        Raises:
            TimeoutError: not settled within ``timeout`` seconds.
            DocumentClosed: the document was closed meanwhile.
            ResyncNeeded: it needs a re-open that will not happen by itself.
        """

        def done() -> bool:
            self._check_open()
            if self.needs_resync and not self._opening and not self._client.auto_resync:
                raise ResyncNeeded(f"{self.path} must be re-opened")
            return self.is_settled

        await self._changed.wait_for(done, timeout)

    async def checksum(self, timeout: float | None = 10.0) -> bool:
        """Whether the server's text at our revision hashes like ours (waits until settled).

        Raises:
            TimeoutError: not settled within ``timeout`` seconds.
            NotConnected: there is no connection.
        """
        await self.settled(timeout)
        text, revision = self._state.text, self._state.revision
        connection = self._client.require_connection()
        result = await connection.request(
            "textDocument/checksum",
            {"path": self.path, "revision": revision},
            timeout=timeout,
        )
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return bool(result["revision"] == revision and result["sha256"] == digest)

    # -- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the document (``textDocument/didClose``); closing twice does nothing."""
        if self.closed:
            return
        self._client._forget(self)
        self._set_closed()
        connection = self._client.connection
        if connection is not None and connection.is_open:
            with contextlib.suppress(ClientError):
                await connection.notify("textDocument/didClose", {"path": self.path})

    def _set_closed(self) -> None:
        self.closed = True
        self._generation += 1
        self._opening = False
        self._changed.notify()

    def _check_open(self) -> None:
        if self.closed:
            raise DocumentClosed(f"{self.path} is closed")
