"""The asyncio CodeSphere client: one connection, one room, its documents, presence and chat.

Typical use::

    client = await CodeSphereClient.connect("ws://127.0.0.1:8080/ws", name="Ada")
    await client.join(room_id)
    doc = await client.open("main.py")
    await doc.insert(0, "# hello\\n")
    await doc.settled()
    await client.close()

Everything the server sends is handled in the connection's reader, in order; subscribe to any
notification with :meth:`CodeSphereClient.on`, or await one with
:meth:`CodeSphereClient.next_notification`. After a dropped connection,
:meth:`CodeSphereClient.reconnect` resumes the room and every open document without losing the
edits made meanwhile (protocol.md §6.5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from codesphere.client.document import RemoteDocument, position_to_json
from codesphere.client.errors import ClientError, DocumentClosed, NotConnected, RpcError
from codesphere.client.rpc import Handler, NotificationRouter, RpcConnection, silence
from codesphere.core.positions import ENCODINGS, Encoding, position_at

logger = logging.getLogger("codesphere.client")

__version__ = "0.1.0"

JsonObject = dict[str, Any]


class CodeSphereClient:
    """A connection to a CodeSphere server, speaking protocol version 1.

    Create one with :meth:`connect`. Attributes describing the session:

    Attributes:
        url: the server's WebSocket URL.
        client_id: this client's stable id (sent again on reconnect).
        encoding: the negotiated position encoding.
        limits: the server's announced limits (``initialize`` result).
        server_info: the server's name and version.
        room: ``{"id", "name"}`` of the joined room, or ``None``.
        me: our own ``Member`` in the room, or ``None``.
        members: every member of the room by ``memberId`` (``online`` kept up to date).
        presence: the latest ``presence/didChange`` params of each other member.
        workspace: the room's files by path (``{"path", "revision", "eol"}``).
        documents: the open documents by path.
        auto_resync: whether documents re-open themselves when their text may have diverged.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "guest",
        encodings: Sequence[str] = ("utf-16",),
        client_id: str | None = None,
        client_name: str = "codesphere-python",
        auto_resync: bool = True,
        request_timeout: float | None = 30.0,
        token: str | None = None,
    ) -> None:
        self.url = url
        #: Sent in ``initialize``; replaced by the member token a ``room/join`` with an
        #: invite answers with, so that reconnecting does not use the invite again.
        self.token = token
        self.name = name
        self.encodings = list(encodings)
        self.client_id = client_id
        self.client_name = client_name
        self.auto_resync = auto_resync
        self.request_timeout = request_timeout
        self.encoding: Encoding = "utf-16"
        self.limits: JsonObject = {}
        self.server_info: JsonObject = {}
        self.room: JsonObject | None = None
        self.me: JsonObject | None = None
        self.members: dict[str, JsonObject] = {}
        self.presence: dict[str, JsonObject] = {}
        self.workspace: dict[str, JsonObject] = {}
        self.documents: dict[str, RemoteDocument] = {}
        self._role: str | None = None
        self._seqs: dict[str, int] = {}  # last edit seq per path, kept across open/close
        self._conn: RpcConnection | None = None
        self._opens: dict[str, asyncio.Future[RemoteDocument]] = {}  # didOpen in flight
        self._router = NotificationRouter()
        self._shut = False
        self._internal: dict[str, Callable[[Any], None]] = {
            "room/memberJoined": self._on_member_joined,
            "room/memberLeft": self._on_member_left,
            "textDocument/remoteChange": self._on_remote_change,
            "presence/didChange": self._on_presence,
            "workspace/didCreateFile": self._on_file_created,
            "workspace/didRenameFile": self._on_file_renamed,
            "workspace/didDeleteFile": self._on_file_deleted,
        }

    # -- connecting --------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str = "guest",
        encodings: Sequence[str] = ("utf-16",),
        client_id: str | None = None,
        client_name: str = "codesphere-python",
        auto_resync: bool = True,
        request_timeout: float | None = 30.0,
        token: str | None = None,
    ) -> CodeSphereClient:
        """Open a connection and initialize it.

        Args:
            url: the server's WebSocket URL (path ``/ws``).
            name: the display name shown to others.
            encodings: position encodings we can use, preferred first.
            client_id: a stable id to reuse (for example after a restart); the server makes
                one when ``None``.
            client_name: sent as ``clientInfo.name``.
            auto_resync: re-open documents automatically when their text may have diverged.
            request_timeout: default seconds to wait for a response (``None``: forever).
            token: a user, invite or member token (protocol.md §3).

        Raises:
            OSError: the server cannot be reached.
            RpcError: the server refused ``initialize`` (``Unauthorized``: a bad token).
        """
        client = cls(
            url,
            name=name,
            encodings=encodings,
            client_id=client_id,
            client_name=client_name,
            auto_resync=auto_resync,
            request_timeout=request_timeout,
            token=token,
        )
        await client._open()
        return client

    async def _open(self) -> None:
        conn = await RpcConnection.open(self.url, self._on_notification, self._on_connection_closed)
        params: JsonObject = {
            "clientInfo": {"name": self.client_name, "version": __version__},
            "capabilities": {"general": {"positionEncodings": self.encodings}},
            "displayName": self.name,
        }
        if self.client_id is not None:
            params["clientId"] = self.client_id
        if self.token is not None:
            params["token"] = self.token
        try:
            result = await conn.request("initialize", params, timeout=self.request_timeout)
            encoding = result["capabilities"]["positionEncoding"]
            if encoding not in ENCODINGS:
                raise ClientError(f"the server chose an unknown encoding {encoding!r}")
            await conn.notify("initialized", {})
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self.client_id = str(result["clientId"])
        self.encoding = encoding
        self.limits = dict(result.get("limits") or {})
        self.server_info = dict(result.get("serverInfo") or {})
        rate = self.limits.get("requestsPerSecond")
        if isinstance(rate, int | float) and rate > 0:
            # Stay under the server's limit so that no edit is ever refused for speed.
            conn.set_rate(rate * 0.9, burst=max(1, int(rate)))

    @property
    def connection(self) -> RpcConnection | None:
        """The current connection (possibly closed), or ``None`` before the first."""
        return self._conn

    def require_connection(self) -> RpcConnection:
        """The current connection if it is open.

        Raises:
            NotConnected: there is none.
        """
        if self._conn is None or not self._conn.is_open:
            raise NotConnected("not connected to the server")
        return self._conn

    @property
    def connected(self) -> bool:
        """Whether the connection is open."""
        return self._conn is not None and self._conn.is_open

    @property
    def closed(self) -> asyncio.Future[int | None]:
        """Resolves with the close code once the current connection closes.

        Raises:
            NotConnected: never connected.
        """
        if self._conn is None:
            raise NotConnected("never connected")
        return self._conn.closed

    @property
    def close_code(self) -> int | None:
        """The close code of the current connection, once it has closed."""
        return None if self._conn is None else self._conn.close_code

    # -- JSON-RPC ----------------------------------------------------------------------------

    async def request(self, method: str, params: Any = None, *, timeout: float | None = -1) -> Any:
        """Send a request and return its result.

        Args:
            method: the method.
            params: its params (omitted when ``None``).
            timeout: seconds to wait; default: the client's ``request_timeout``.

        Raises:
            RpcError: an error response.
            NotConnected: no open connection (or it closed before the answer).
            TimeoutError: no answer in time.
        """
        if timeout is not None and timeout < 0:
            timeout = self.request_timeout
        return await self.require_connection().request(method, params, timeout=timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification.

        Raises:
            NotConnected: no open connection.
        """
        await self.require_connection().notify(method, params)

    def on(self, method: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(params)`` for each notification ``method`` (after the client's own
        bookkeeping); ``"*"`` receives ``{"method", "params"}`` of every notification.

        Returns:
            A function that unsubscribes.
        """
        return self._router.on(method, handler)

    async def next_notification(
        self,
        method: str,
        timeout: float | None = 5.0,
        predicate: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Remove and return the params of the oldest unconsumed ``method`` notification.

        Every notification is kept (up to 1024 per method) until consumed here, so one that
        arrived before the call is returned too.

        Raises:
            TimeoutError: none arrived in time.
        """
        return await self._router.next_notification(method, timeout, predicate)

    def notifications(self, method: str) -> list[Any]:
        """The unconsumed ``method`` notifications, oldest first."""
        return self._router.backlog(method)

    def clear_notifications(self, method: str | None = None) -> None:
        """Drop the unconsumed notifications of ``method`` (``None``: all)."""
        self._router.clear(method)

    def _on_notification(self, method: str, params: Any) -> None:
        handler = self._internal.get(method)
        if handler is not None:
            try:
                handler(params)
            except Exception:
                logger.exception("codesphere: could not handle %s", method)
        self._router.dispatch(method, params)

    def _on_connection_closed(self, conn: RpcConnection) -> None:
        if conn is not self._conn:
            return
        for doc in list(self.documents.values()):
            doc._detach()

    # -- rooms -------------------------------------------------------------------------------

    async def create_room(self, name: str, files: Sequence[JsonObject] | None = None) -> str:
        """Create a room (we become its owner; we must still :meth:`join` it).

        Args:
            name: the room's name.
            files: initial files, each ``{"path", "text"}``.

        Returns:
            The new room's id.
        """
        params: JsonObject = {"name": name}
        if files is not None:
            params["files"] = [dict(f) for f in files]
        result = await self.request("room/create", params)
        return str(result["roomId"])

    async def join(
        self, room_id: str | None = None, role: str | None = None, token: str | None = None
    ) -> JsonObject:
        """Join a room (leaving any other); returns the ``room/join`` result.

        Args:
            room_id: the room; ``None`` for the room an invite or member token names.
            role: ``"viewer"`` to join read-only; ``None`` for the token's role.
            token: a token for this join only; by default the connection's.

        Raises:
            RpcError: ``Unauthorized`` (no or a bad token), ``Forbidden`` (the token does not
                open the room).
        """
        params: JsonObject = {}
        if room_id is not None:
            params["roomId"] = room_id
        if role is not None:
            params["role"] = role
        if token is not None:
            params["token"] = token
        result: JsonObject = await self.request("room/join", params)
        if result.get("memberToken"):
            self.token = str(result["memberToken"])
        if self.room is not None and self.room.get("id") != result["room"]["id"]:
            self._drop_documents()
        self._role = role
        self._take_join(result)
        return result

    def _take_join(self, result: JsonObject) -> None:
        self.room = dict(result["room"])
        self.me = dict(result["you"])
        self.members = {m["memberId"]: dict(m) for m in result.get("members") or ()}
        self.members[self.me["memberId"]] = self.me
        self.workspace = {f["path"]: dict(f) for f in result.get("files") or ()}
        self.presence.clear()

    @property
    def role(self) -> str | None:
        """Our role in the room (``owner``, ``editor`` or ``viewer``), once joined."""
        return None if self.me is None else self.me.get("role")

    async def leave(self) -> None:
        """Leave the room; its documents are closed."""
        await self.request("room/leave")
        self._drop_documents()
        self.room = None
        self.me = None
        self._role = None
        self.members.clear()
        self.presence.clear()
        self.workspace.clear()

    def _drop_documents(self) -> None:
        for doc in list(self.documents.values()):
            self._forget(doc)
            doc._set_closed()

    def _on_member_joined(self, params: Any) -> None:
        member = dict(params["member"])
        self.members[member["memberId"]] = member

    def _on_member_left(self, params: Any) -> None:
        member_id = params["memberId"]
        member = self.members.get(member_id)
        if member is not None:
            self.members[member_id] = {**member, "online": False}
        self.presence.pop(member_id, None)

    # -- files -------------------------------------------------------------------------------

    async def files(self) -> list[JsonObject]:
        """The room's files, each ``{"path", "revision", "eol"}``."""
        result = await self.request("workspace/files")
        files: list[JsonObject] = list(result["files"])
        self.workspace = {f["path"]: dict(f) for f in files}
        return files

    async def create_file(self, path: str, text: str = "") -> JsonObject:
        """Create a file; returns ``{"path", "revision", "eol"}``.

        Raises:
            RpcError: ``AlreadyExists``, ``InvalidParams``, ``Forbidden``.
        """
        result: JsonObject = await self.request(
            "workspace/createFile", {"path": path, "text": text}
        )
        self.workspace[result["path"]] = dict(result)
        return result

    async def rename_file(self, path: str, new_path: str) -> None:
        """Rename a file; an open document follows it to ``new_path``.

        Raises:
            RpcError: ``DocumentNotFound``, ``AlreadyExists``, ``Forbidden``.
        """
        await self.request("workspace/renameFile", {"path": path, "newPath": new_path})
        self._renamed(path, new_path)

    async def delete_file(self, path: str) -> None:
        """Delete a file; if it is open here, its document is closed.

        Raises:
            RpcError: ``DocumentNotFound``, ``Forbidden``.
        """
        await self.request("workspace/deleteFile", {"path": path})
        self._deleted(path)

    def _renamed(self, path: str, new_path: str) -> None:
        info = self.workspace.pop(path, None)
        if info is not None:
            self.workspace[new_path] = {**info, "path": new_path}
        doc = self.documents.pop(path, None)
        if doc is not None:
            doc._state.path = new_path
            self.documents[new_path] = doc
        if path in self._seqs:
            moved = self._seqs.pop(path)
            self._seqs[new_path] = max(moved, self._seqs.get(new_path, 0))

    def _deleted(self, path: str) -> None:
        self.workspace.pop(path, None)
        doc = self.documents.get(path)
        if doc is not None:
            self._forget(doc)
            doc._set_closed()

    def _on_file_created(self, params: Any) -> None:
        path = params["path"]
        self.workspace[path] = {
            "path": path,
            "revision": params.get("revision", 0),
            "eol": params.get("eol", "\n"),
        }

    def _on_file_renamed(self, params: Any) -> None:
        self._renamed(params["path"], params["newPath"])

    def _on_file_deleted(self, params: Any) -> None:
        self._deleted(params["path"])

    # -- documents ---------------------------------------------------------------------------

    async def open(self, path: str) -> RemoteDocument:
        """Open a document (an already open one is returned as it is).

        Raises:
            RpcError: ``DocumentNotFound``, ``NotInRoom``.
        """
        existing = self.documents.get(path)
        if existing is not None:
            return existing
        task = self._opens.get(path)
        if task is None:
            task = self._opens[path] = asyncio.ensure_future(self._open_document(path))
            task.add_done_callback(lambda _: self._opens.pop(path, None))
            silence(task)
        return await asyncio.shield(task)

    async def _open_document(self, path: str) -> RemoteDocument:
        conn = self.require_connection()
        opened: list[RemoteDocument] = []

        def on_reply(result: Any, error: RpcError | None) -> None:
            # Runs in the reader, so the document exists before its first remote change.
            if error is not None:
                return
            current = self.documents.get(path)
            if current is not None:
                opened.append(current)
                return
            doc = RemoteDocument(
                self,
                path,
                str(result["text"]),
                int(result["revision"]),
                str(result.get("eol", "\n")),
                self.encoding,
                # Continue after every edit the server has from this client id.
                last_seq=max(self._seqs.get(path, 0), int(result.get("lastSeq", 0))),
            )
            self.documents[path] = doc
            opened.append(doc)

        call = conn.send_request("textDocument/didOpen", {"path": path}, on_reply)
        async with asyncio.timeout(self.request_timeout):
            await call.reply
        return opened[0]

    def _forget(self, doc: RemoteDocument) -> None:
        """Stop routing to ``doc`` (closed or deleted); keep its edit counter."""
        if self.documents.get(doc.path) is doc:
            del self.documents[doc.path]
        self._seqs[doc.path] = max(self._seqs.get(doc.path, 0), doc._state.last_seq)

    def _on_remote_change(self, params: Any) -> None:
        doc = self.documents.get(params["path"])
        if doc is not None:
            doc._on_remote_change(params)

    # -- presence ----------------------------------------------------------------------------

    async def update_presence(
        self, path: str | None, selections: Sequence[tuple[int, int]] = ()
    ) -> None:
        """Show our selections in an open document (``path=None``: in no document).

        Args:
            path: an open document's path, or ``None``.
            selections: ``(anchor, active)`` code-point offsets into the document's current
                text; a bare cursor has ``anchor == active``.

        Raises:
            DocumentClosed: ``path`` is not open here.
            PositionError: an offset is outside the text.
        """
        if path is None:
            await self.request("presence/update", {"path": None})
            return
        doc = self.documents.get(path)
        if doc is None:
            raise DocumentClosed(f"{path} is not open")
        text, encoding = doc.text, doc.encoding
        params = {
            "path": path,
            "revision": doc.revision,
            "selections": [
                {
                    "anchor": position_to_json(position_at(text, anchor, encoding)),
                    "active": position_to_json(position_at(text, active, encoding)),
                }
                for anchor, active in selections
            ],
        }
        await self.request("presence/update", params)

    def _on_presence(self, params: Any) -> None:
        self.presence[params["memberId"]] = dict(params)

    # -- chat --------------------------------------------------------------------------------

    async def send_chat(self, text: str) -> JsonObject:
        """Send a chat message; returns the stored ``ChatMessage``."""
        result = await self.request("chat/send", {"text": text})
        message: JsonObject = result["message"]
        return message

    async def chat_history(
        self, before: int | None = None, limit: int = 50
    ) -> tuple[list[JsonObject], bool]:
        """The newest ``limit`` messages before seq ``before``, oldest first, and ``hasMore``."""
        params: JsonObject = {"limit": limit}
        if before is not None:
            params["before"] = before
        result = await self.request("chat/history", params)
        return list(result["messages"]), bool(result["hasMore"])

    # -- liveness and closing ----------------------------------------------------------------

    async def ping(self) -> float:
        """Send ``$/ping``; returns the round-trip time in seconds."""
        started = time.perf_counter()
        await self.request("$/ping", {})
        return time.perf_counter() - started

    async def close(self, timeout: float = 5.0) -> None:
        """Say goodbye (``shutdown``, ``exit``) and close the socket; safe to call twice."""
        if self._shut:
            return
        self._shut = True
        conn = self._conn
        for doc in list(self.documents.values()):
            self._forget(doc)
            doc._set_closed()
        if conn is None:
            return
        if conn.is_open:
            try:
                await conn.request("shutdown", timeout=timeout)
                await conn.notify("exit")
                await conn.wait_closed(timeout)
            except (ClientError, TimeoutError):
                pass
        await conn.close()

    async def reconnect(self, url: str | None = None) -> None:
        """Open a new connection and resume the session (protocol.md §6.5).

        Initializes with the same ``client_id``, re-joins the room, then re-opens every open
        document: a document with kept edits resumes at its revision and resends them all;
        the others are re-opened plainly.

        Args:
            url: a different server URL to use from now on.

        Raises:
            ClientError: the client was closed with :meth:`close`.
            OSError, RpcError: the new connection could not be set up.
        """
        if self._shut:
            raise ClientError("the client was closed")
        if url is not None:
            self.url = url
        old = self._conn
        if old is not None:
            self._on_connection_closed(old)
            self._conn = None
            await old.close()
        old_encoding = self.encoding
        await self._open()
        conn = self.require_connection()
        if self.room is None:
            return
        await self.join(str(self.room["id"]), self._role)
        for doc in list(self.documents.values()):
            if self.encoding != old_encoding:
                doc._state.encoding = self.encoding
                doc.needs_resync = True
            await doc._resume(conn)
