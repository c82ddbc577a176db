"""The ``codesphere`` command: run the server and look after rooms and documents.

``serve`` runs the server. The other commands work directly on a data directory's storage,
so an operator can use them with the server running or stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from codesphere import __version__
from codesphere.app.hub import new_id, stored_text_at
from codesphere.app.limits import Limits
from codesphere.app.rooms import PALETTE
from codesphere.app.server import DB_NAME, RunningServer, start_server
from codesphere.build import core_build
from codesphere.cli_common import data_dir_option, run_with_storage, when
from codesphere.cli_tokens import token
from codesphere.core.document import normalize_eol
from codesphere.core.operation import TextOperation
from codesphere.storage.base import (
    DocumentRecord,
    MemberRecord,
    NotFound,
    RoomRecord,
)
from codesphere.storage.sqlite import SqliteStorage
from codesphere.transports.bridge import run_bridge


@click.group()
@click.version_option(__version__, prog_name="codesphere")
def main() -> None:
    """CodeSphere: self-hosted real-time code collaboration."""


@main.command()
@click.option(
    "--host",
    envvar="CODESPHERE_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (env CODESPHERE_HOST).",
)
@click.option(
    "--port",
    envvar="CODESPHERE_PORT",
    default=8080,
    show_default=True,
    type=int,
    help="Port to listen on; 0 picks a free one (env CODESPHERE_PORT).",
)
@data_dir_option
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--requests-per-second",
    envvar="CODESPHERE_REQUESTS_PER_SECOND",
    type=float,
    default=Limits.requests_per_second,
    show_default=True,
    help="Sustained requests allowed per connection, bursts of twice that (env "
    "CODESPHERE_REQUESTS_PER_SECOND).",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop where installed (about a quarter less CPU per edit), else asyncio's.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    envvar="CODESPHERE_ALLOWED_ORIGINS",
    help="A web origin (https://host:port) whose pages may connect, besides the server's own;"
    " repeat for several (env CODESPHERE_ALLOWED_ORIGINS, space-separated).",
)
@click.option(
    "--no-owner-link",
    is_flag=True,
    help="Do not create the Welcome room in an empty data directory, and print no owner link.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    log_level: str,
    requests_per_second: float,
    loop_name: str,
    allowed_origins: tuple[str, ...],
    no_owner_link: bool,
) -> None:
    """Run the server until interrupted (Ctrl-C or SIGTERM)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    limits = Limits(
        requests_per_second=requests_per_second, request_burst=int(2 * requests_per_second)
    )
    collect_garbage_less_often()
    with asyncio.Runner(loop_factory=event_loop_factory(loop_name)) as runner:
        runner.run(
            _serve(host, port, data_dir, limits, allowed_origins, owner_link=not no_owner_link)
        )


def collect_garbage_less_often() -> None:
    """Run Python's cycle collector a fourteenth as often as by default.

    Every edit allocates a few hundred objects that reference counting frees at once, yet each
    700 allocations start a collection that walks all young objects, and each ten of those one
    that walks older ones too: pauses of 0.5 and 1.5 ms on the event loop, several a second,
    and now and then one of the whole heap. Scenario (b) of bench/load.py read a p99 of
    2.8-6.7 ms with the defaults and 2.4-2.8 ms with these; the memory used stayed the same.
    """
    gc.set_threshold(10_000, 10, 10)


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop ``serve`` runs on (``None``: asyncio's default)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise click.ClickException("uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


async def _serve(
    host: str,
    port: int,
    data_dir: Path,
    limits: Limits,
    allowed_origins: tuple[str, ...],
    *,
    owner_link: bool = True,
) -> None:
    server = await start_server(host, port, data_dir, limits, allowed_origins=allowed_origins)
    # What exists now (modules, the app) lives as long as the process: keep it out of the
    # collector's full passes, which otherwise stall the loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    click.echo(f"CodeSphere {__version__} is listening on {server.http_url}")
    click.echo(f"Clients connect to {server.url}")
    click.echo(f"Data is kept in {data_dir.resolve()}")
    build = core_build()
    if build != "compiled":
        click.echo(
            f"Note: the sync core is {'only partly' if build == 'mixed' else 'not'} compiled, so"
            " every edit costs more CPU; reinstall with a C compiler to compile it (setup.py)."
        )
    click.echo("Create a room with: codesphere room create NAME --data-dir " + str(data_dir))
    try:
        if owner_link:
            # The token travels in the URL's fragment (after '#'), which browsers keep to
            # themselves: it never reaches this server, a proxy or an access log. It is only
            # ever printed here, on stdout, and never logged.
            click.echo(f"Owner link: {await make_owner_link(server)}")
        await stop.wait()
    finally:
        click.echo("Shutting down...")
        await server.close()


#: The user the start-up owner link is for, and how long its token lasts.
OWNER_USER = "owner"
OWNER_LINK_TTL = 30 * 86400
WELCOME_README = """\
# Welcome to CodeSphere

This room was made for you when the server first started, and you own it.

Everyone in a room edits its files together, live. To bring someone in, create an
invite and share its token:

- from a CodeSphere client: `invite/create` with the role `viewer` (reads and chats),
  `editor` (also edits) or `owner` (also manages the room);
- or on the server's command line:
  `codesphere token mint-invite --room ROOM_ID --role editor --expires 7d`

Revoke an invite at any time: whoever joined through it loses access at once.
"""


async def make_owner_link(server: RunningServer) -> str:
    """A link that signs the ``owner`` user in, to the oldest room they own if any.

    In a data directory with no room at all a "Welcome" room owned by ``owner`` is made
    first, so that a fresh server has somewhere to start.
    """
    hub = server.hub
    if not await hub.storage.list_rooms():
        await hub.create_room("Welcome", [("README.md", WELCOME_README)], OWNER_USER, "Owner")
    token = hub.tokens.mint_user(OWNER_USER, name="Owner", ttl=OWNER_LINK_TTL)
    owned = [
        room
        for room, member in await hub.storage.rooms_of_user(OWNER_USER)
        if member.role == "owner"
    ]
    link = f"{server.http_url}/#token={token}"
    if owned:
        oldest = min(owned, key=lambda room: (room.created_at, room.id))
        link += f"&room={oldest.id}"
    return link


# -- offline administration ------------------------------------------------------------------


@main.group()
def room() -> None:
    """Create, list and inspect rooms."""


_USER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _user_id(value: str) -> str:
    if not _USER_ID.fullmatch(value):
        raise click.BadParameter("a user id is 1-100 characters of A-Z a-z 0-9 _ . : -")
    return value


@room.command("create")
@click.argument("name")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to put in the room (repeatable); kept by its name.",
)
@click.option(
    "--owner",
    default=OWNER_USER,
    show_default=True,
    callback=lambda ctx, param, value: _user_id(value),
    help="The user who owns the room (by default the one the owner link signs in).",
)
@data_dir_option
def room_create(name: str, files: tuple[Path, ...], owner: str, data_dir: Path) -> None:
    """Create a room called NAME and print its id."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / DB_NAME).exists():
        (data_dir / DB_NAME).touch()

    async def go(storage: SqliteStorage) -> str:
        now = time.time()
        room_id = new_id("r")
        await storage.create_room(RoomRecord(room_id, name, now, now))
        member = MemberRecord(room_id, owner, owner, PALETTE[0], "owner", now, owner)
        await storage.upsert_member(member)
        for f in files:
            text, eol = normalize_eol(f.read_bytes().decode("utf-8"))
            record = DocumentRecord(room_id, new_id("d"), f.name, eol, now, 0)
            await storage.create_document(record, text)
        return room_id

    click.echo(run_with_storage(data_dir, go))


@room.command("list")
@data_dir_option
def room_list(data_dir: Path) -> None:
    """List every room."""

    async def go(storage: SqliteStorage) -> list[RoomRecord]:
        return await storage.list_rooms()

    rooms = run_with_storage(data_dir, go)
    if not rooms:
        click.echo("no rooms")
    for r in rooms:
        click.echo(f"{r.id}\t{r.name}\tcreated {when(r.created_at)}\tupdated {when(r.updated_at)}")


@room.command("show")
@click.argument("room_id")
@data_dir_option
def room_show(room_id: str, data_dir: Path) -> None:
    """Show a room's members and documents."""

    async def go(storage: SqliteStorage) -> dict[str, Any]:
        record = await storage.get_room(room_id)
        if record is None:
            raise click.ClickException(f"no room {room_id}")
        chat = await storage.chat_history(room_id, None, 1)
        return {
            "room": record,
            "members": await storage.list_members(room_id),
            "docs": await storage.list_documents(room_id),
            "messages": chat[-1].seq if chat else 0,
        }

    info = run_with_storage(data_dir, go)
    r = info["room"]
    click.echo(f"room {r.id}: {r.name} (created {when(r.created_at)})")
    click.echo(f"members ({len(info['members'])}):")
    for m in info["members"]:
        click.echo(f"  {m.id}\t{m.name}\t{m.role}")
    click.echo(f"documents ({len(info['docs'])}):")
    for d in info["docs"]:
        eol = "crlf" if d.eol == "\r\n" else "lf"
        click.echo(f"  {d.path}\trevision {d.revision}\t{eol}")
    click.echo(f"chat messages: {info['messages']}")


@main.group()
def doc() -> None:
    """Read documents and their history."""


async def _find_doc(storage: SqliteStorage, room_id: str, path: str) -> DocumentRecord:
    try:
        docs = await storage.list_documents(room_id)
    except NotFound:
        raise click.ClickException(f"no room {room_id}") from None
    for d in docs:
        if d.path == path:
            return d
    raise click.ClickException(f"no document {path} in room {room_id}")


@doc.command("list")
@click.argument("room_id")
@data_dir_option
def doc_list(room_id: str, data_dir: Path) -> None:
    """List a room's documents."""

    async def go(storage: SqliteStorage) -> list[DocumentRecord]:
        try:
            return await storage.list_documents(room_id)
        except NotFound:
            raise click.ClickException(f"no room {room_id}") from None

    for d in run_with_storage(data_dir, go):
        click.echo(f"{d.path}\trevision {d.revision}")


@doc.command("show")
@click.argument("room_id")
@click.argument("path")
@click.option("--revision", type=int, default=None, help="Show the text at this revision.")
@data_dir_option
def doc_show(room_id: str, path: str, revision: int | None, data_dir: Path) -> None:
    """Print a document's text (at the head, or at --revision), with its line ends."""

    async def go(storage: SqliteStorage) -> str:
        record = await _find_doc(storage, room_id, path)
        stored = await storage.load_document(room_id, record.id)
        rev = record.revision if revision is None else revision
        if not 0 <= rev <= record.revision:
            raise click.ClickException(f"revision must be between 0 and {record.revision}")
        return (await stored_text_at(storage, stored, room_id, rev)).replace("\n", record.eol)

    click.echo(run_with_storage(data_dir, go), nl=False)


@doc.command("history")
@click.argument("room_id")
@click.argument("path")
@click.option("--limit", type=int, default=50, show_default=True)
@data_dir_option
def doc_history(room_id: str, path: str, limit: int, data_dir: Path) -> None:
    """List a document's latest edits: revision, time, author and what changed."""

    async def go(storage: SqliteStorage) -> list[Any]:
        record = await _find_doc(storage, room_id, path)
        since = max(0, record.revision - limit)
        return await storage.read_ops(room_id, record.id, since)

    for r in run_with_storage(data_dir, go):
        op = TextOperation.from_json(r.op)
        parts = [
            f"@{off} -{len(deleted)} +{len(inserted)} {inserted[:30]!r}"
            for off, deleted, inserted in op.splices()
        ]
        click.echo(f"{r.revision}\t{when(r.timestamp)}\t{r.member or r.author}\t{'; '.join(parts)}")


# -- the stdio bridge ------------------------------------------------------------------------


@main.command()
@click.argument("url")
def bridge(url: str) -> None:
    """Relay the protocol between stdio (LSP framing) and a server's WebSocket URL.

    For editors that speak JSON-RPC to a child process, as Neovim does with vim.lsp.rpc:
    each message read on stdin ('Content-Length' header, blank line, JSON) goes to URL
    (ws://host:port/ws) as one WebSocket message, and each message from the server comes out
    on stdout the same way. Exits when either side closes: 0 for a clean end, 1 when the
    server could not be reached or closed with an error, 2 for input that is not LSP-framed.
    """
    if not url.startswith(("ws://", "wss://")):
        raise click.BadParameter("must be a ws:// or wss:// URL", param_hint="URL")
    raise SystemExit(asyncio.run(run_bridge(url)))


main.add_command(token)
