"""The operator commands of the ``codesphere`` CLI, on a real data directory."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codesphere.app.server import DB_NAME, start_server
from codesphere.auth.tokens import UserClaims
from codesphere.cli import main
from codesphere.client import CodeSphereClient
from codesphere.client import errors as codes
from tests.rawclient import insert
from tests.serve import ServeProcess
from tests.server.support import change, connect
from tests.tokens import TEST_SECRET, operator_token


def run(*args: str) -> str:
    """Run the CLI in-process; fail the test if it fails."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.decode("utf-8")  # as written: ``output`` folds \r\n


def test_room_commands_create_list_and_show_rooms(tmp_path: Path) -> None:
    """room create keeps the files (with their line ends), room list and show report them."""
    data = str(tmp_path / "data")
    crlf = tmp_path / "win.txt"
    crlf.write_bytes(b"one\r\ntwo\r\n")
    plain = tmp_path / "main.py"
    plain.write_text("print('hi')\n", encoding="utf-8")
    room_id = run("room", "create", "demo", "--file", str(crlf), "--file", str(plain),
                  "--data-dir", data).strip()  # fmt: skip
    assert room_id.startswith("r-")
    assert room_id in run("room", "list", "--data-dir", data)
    shown = run("room", "show", room_id, "--data-dir", data)
    assert "demo" in shown
    assert "win.txt\trevision 0\tcrlf" in shown
    assert "main.py\trevision 0\tlf" in shown
    assert run("doc", "show", room_id, "win.txt", "--data-dir", data) == "one\r\ntwo\r\n"
    assert "main.py\trevision 0" in run("doc", "list", room_id, "--data-dir", data)
    # Owned by the user the owner link signs in, unless told otherwise.
    assert "owner" in shown
    result = CliRunner().invoke(
        main, ["room", "create", "x", "--owner", "no one", "--data-dir", data]
    )
    assert result.exit_code == 2 and "user id" in result.output


def test_commands_refuse_a_missing_data_directory_or_room(tmp_path: Path) -> None:
    """Without data, or for an unknown room, the commands fail with a message, not a trace."""
    runner = CliRunner()
    result = runner.invoke(main, ["room", "list", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code != 0 and "no CodeSphere data" in result.output
    data = str(tmp_path / "data")
    run("room", "create", "x", "--data-dir", data)
    result = runner.invoke(main, ["room", "show", "r-nope", "--data-dir", data])
    assert result.exit_code != 0 and "no room r-nope" in result.output
    result = runner.invoke(main, ["doc", "show", "r-nope", "a.txt", "--data-dir", data])
    assert result.exit_code != 0 and "no room r-nope" in result.output


@pytest.mark.asyncio
async def test_doc_show_and_history_follow_edits_made_through_the_server(tmp_path: Path) -> None:
    """Edits made by clients are visible to doc show (at the head and at any past revision,
    across a snapshot) and to doc history, with their authors."""
    data = tmp_path / "data"
    # The CLI runs its own event loop, so from this test it runs in a thread.
    room_id = await asyncio.to_thread(run, "room", "create", "live", "--data-dir", str(data))
    room_id = room_id.strip()
    server = await start_server("127.0.0.1", 0, data, secret=TEST_SECRET)
    try:
        client = await CodeSphereClient.connect(
            server.url, name="Ada", encodings=("utf-8",), token=operator_token()
        )
        await client.join(room_id)
        await client.create_file("notes.md", "# notes\n")
        doc = await client.open("notes.md")
        for i in range(520):  # past one snapshot (every 500 revisions)
            await doc.insert(len(doc.text), f"{i} ")
        await doc.settled(timeout=30)
        final = doc.text
        await client.close()
    finally:
        await server.close()
    member = client.me["memberId"] if client.me else None
    await asyncio.to_thread(check_offline_views, str(data), room_id, final, member)


def check_offline_views(data: str, room_id: str, final: str, author: str | None) -> None:
    """What the operator commands show of the document edited in the test above."""
    assert run("doc", "show", room_id, "notes.md", "--data-dir", data) == final
    at_3 = run("doc", "show", room_id, "notes.md", "--revision", "3", "--data-dir", data)
    assert at_3 == "# notes\n0 1 2 "
    at_0 = run("doc", "show", room_id, "notes.md", "--revision", "0", "--data-dir", data)
    assert at_0 == "# notes\n"
    history = run("doc", "history", room_id, "notes.md", "--limit", "5", "--data-dir", data)
    lines = history.strip().splitlines()
    assert len(lines) == 5
    assert lines[-1].startswith("520\t") and str(author) in lines[-1]
    assert "'519 '" in lines[-1]
    shown = run("room", "show", room_id, "--data-dir", data)
    assert "notes.md\trevision 520" in shown and "Ada" in shown


# -- token -------------------------------------------------------------------------------------


@pytest.fixture
def token_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``codesphere token ...`` with no JWT_SECRET around, so the data dir's secret is used."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["token", *args], input=input, catch_exceptions=False)

    return invoke


def test_token_mint_user_then_inspect(tmp_path: Path, token_cli: Callable[..., Result]) -> None:
    """A minted token is one line on stdout, and inspect (argument, stdin or -) shows its claims."""
    data = str(tmp_path / "data")
    before = time.time()
    minted = token_cli("mint-user", "alice", "--name", "Alice L", "--admin", "--expires", "12h",
                       "--data-dir", data)  # fmt: skip
    assert minted.exit_code == 0, minted.output
    assert minted.stdout.count("\n") == 1
    token = minted.stdout.strip()
    assert token.count(".") == 2
    assert (tmp_path / "data" / "jwt_secret").is_file()

    shown = [
        token_cli("inspect", token, "--data-dir", data),
        token_cli("inspect", "--data-dir", data, input=token + "\n"),
        token_cli("inspect", "-", "--data-dir", data, input=token + "\n"),
    ]
    for result in shown:
        assert result.exit_code == 0, result.output
        assert result.stdout == shown[0].stdout
    claims = json.loads(shown[0].stdout)
    expires = dt.datetime.fromisoformat(claims.pop("expires_at"))
    assert claims == {
        "verified": True,
        "type": "user",
        "user": "alice",
        "name": "Alice L",
        "admin": True,
    }
    assert expires.tzinfo == dt.UTC
    assert before + 12 * 3600 <= expires.timestamp() <= time.time() + 12 * 3600 + 1


@pytest.mark.parametrize(
    ("expires", "seconds"), [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_token_mint_user_expiry_units(
    tmp_path: Path, token_cli: Callable[..., Result], expires: str, seconds: int
) -> None:
    data = str(tmp_path / "data")
    before = time.time()
    token = token_cli("mint-user", "u1", "--expires", expires, "--data-dir", data).stdout.strip()
    shown = json.loads(token_cli("inspect", token, "--data-dir", data).stdout)
    expires_at = dt.datetime.fromisoformat(shown["expires_at"]).timestamp()
    assert before + seconds <= expires_at <= time.time() + seconds + 1


@pytest.mark.parametrize("expires", ["10y", "0d", "abc", "-5m", "", "5", "1.5h", "9999d"])
def test_token_mint_user_rejects_a_bad_expiry(
    tmp_path: Path, token_cli: Callable[..., Result], expires: str
) -> None:
    result = token_cli("mint-user", "u1", "--expires", expires, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--expires" in result.output
    assert result.stdout == ""


def test_token_mint_user_rejects_a_bad_user_id(
    tmp_path: Path, token_cli: Callable[..., Result]
) -> None:
    result = token_cli("mint-user", "not an id", "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "user id" in result.output


def test_token_inspect_refuses_garbage_and_foreign_tokens(
    tmp_path: Path, token_cli: Callable[..., Result]
) -> None:
    data, other = str(tmp_path / "data"), str(tmp_path / "other")
    token_cli("mint-user", "u1", "--data-dir", data)
    for garbage in ("garbage", "a.b.c", ""):
        result = token_cli("inspect", garbage, "--data-dir", data)
        assert result.exit_code == 1
        assert result.stderr.startswith("invalid token: ")
        assert result.stdout == ""
    foreign = token_cli("mint-user", "u1", "--data-dir", other).stdout.strip()
    result = token_cli("inspect", "--data-dir", data, input=foreign)
    assert result.exit_code == 1
    assert result.stderr == "invalid token: token signature is invalid\n"


def test_token_inspect_needs_an_existing_secret(
    tmp_path: Path, token_cli: Callable[..., Result]
) -> None:
    """Checking a token against a freshly made secret could only fail: say so instead."""
    result = token_cli("inspect", "a.b.c", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 1 and "no JWT secret" in result.output
    assert not (tmp_path / "data").exists()


def test_token_inspect_no_verify_is_labelled_unverified(
    tmp_path: Path, token_cli: Callable[..., Result]
) -> None:
    token = token_cli("mint-user", "u1", "--data-dir", str(tmp_path / "a")).stdout.strip()
    result = token_cli("inspect", "--no-verify", token, "--data-dir", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "UNVERIFIED" in result.stderr
    shown = json.loads(result.stdout)
    assert shown["verified"] is False
    assert shown["header"]["alg"] == "HS256"
    assert shown["claims"]["sub"] == "u1" and shown["claims"]["typ"] == "user"
    assert dt.datetime.fromisoformat(shown["expires_at"]).timestamp() == shown["claims"]["exp"]
    assert not (tmp_path / "b").exists()  # no secret needed, none made
    bad = token_cli("inspect", "--no-verify", "nonsense", "--data-dir", str(tmp_path))
    assert bad.exit_code == 1 and "invalid token: token is malformed" in bad.stderr


# -- token mint-invite -------------------------------------------------------------------------


def make_room(data: str, tmp_path: Path) -> str:
    """A room made offline for the user ``ada`` (not ``owner``) holding ``a.txt``; its id."""
    text = tmp_path / "a.txt"
    text.write_text("abc\n", encoding="utf-8")
    args = ("room", "create", "demo", "--file", str(text), "--owner", "ada", "--data-dir", data)
    return run(*args).strip()


def stored_invites(data: str) -> int:
    """How many invites the data directory's database holds."""
    db = sqlite3.connect(Path(data) / DB_NAME)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM invites").fetchone()
    finally:
        db.close()
    return int(count)


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
async def test_token_mint_invite_admits_its_holder_with_its_role(
    tmp_path: Path, token_cli: Callable[..., Result], role: str
) -> None:
    """An invite minted offline opens the room, with its role, on a server reading the same
    data directory's secret; a single-use one admits once."""
    data = str(tmp_path / "data")
    room_id = await asyncio.to_thread(make_room, data, tmp_path)
    minted = await asyncio.to_thread(
        token_cli, "mint-invite", "--room", room_id, "--role", role, "--expires", "1h",
        "--max-uses", "1", "--data-dir", data,
    )  # fmt: skip
    assert minted.exit_code == 0, minted.output
    assert minted.stdout.count("\n") == 1
    invite_token = minted.stdout.strip()
    invite_id = re.search(r"invite (i-\S+) to room", minted.stderr)
    assert invite_id is not None, minted.stderr
    assert invite_token not in minted.stderr
    shown = json.loads((await asyncio.to_thread(token_cli, "inspect", invite_token,
                                                "--data-dir", data)).stdout)  # fmt: skip
    assert (shown["type"], shown["room"], shown["role"]) == ("invite", room_id, role)
    assert shown["invite"] == invite_id[1]
    assert stored_invites(data) == 1
    expires = dt.datetime.fromisoformat(shown["expires_at"]).timestamp()
    assert time.time() + 3500 < expires <= time.time() + 3600

    server = await start_server("127.0.0.1", 0, data)  # no secret: the data dir's file
    try:
        client = await connect(server.url, "Ivy", token=invite_token)
        joined = await client.call("room/join", {})
        assert joined["room"] == {"id": room_id, "name": "demo"}
        assert joined["you"]["role"] == role
        opened = await client.call("textDocument/didOpen", {"path": "a.txt"})
        reply = await client.request(
            "textDocument/didChange", change("a.txt", opened["revision"], 1, [insert(0, 0, "x")])
        )
        if role == "viewer":
            assert reply["error"]["code"] == codes.FORBIDDEN
        else:
            assert reply["result"]["revision"] == 1
        listed = await client.request("invite/list", {})
        if role == "owner":
            (invite,) = listed["result"]["invites"]
            assert invite["inviteId"] == invite_id[1]
            assert (invite["role"], invite["uses"], invite["maxUses"]) == (role, 1, 1)
        else:
            assert listed["error"]["code"] == codes.FORBIDDEN
        second = await connect(server.url, "Ike", token=invite_token)
        assert (await second.error("room/join", {}))["code"] == codes.FORBIDDEN
        await client.close()
        await second.close()
    finally:
        await server.close()


def test_token_mint_invite_refuses_an_unknown_room(
    tmp_path: Path, token_cli: Callable[..., Result]
) -> None:
    data = str(tmp_path / "data")
    make_room(data, tmp_path)
    result = token_cli("mint-invite", "--room", "r-nope", "--role", "editor", "--data-dir", data)
    assert result.exit_code == 1
    assert "no room r-nope" in result.stderr
    assert result.stdout == ""
    assert stored_invites(data) == 0
    result = token_cli("mint-invite", "--room", "r-nope", "--role", "editor",
                       "--data-dir", str(tmp_path / "empty"))  # fmt: skip
    assert result.exit_code == 1 and "no CodeSphere data" in result.stderr
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "admin"],
        ["--role", "editor", "--expires", "400d"],
        ["--role", "editor", "--expires", "0d"],
        ["--role", "editor", "--max-uses", "0"],
        [],  # --role is required
    ],
)
def test_token_mint_invite_refuses_bad_options(
    tmp_path: Path, token_cli: Callable[..., Result], args: list[str]
) -> None:
    data = str(tmp_path / "data")
    room_id = make_room(data, tmp_path)
    result = token_cli("mint-invite", "--room", room_id, *args, "--data-dir", data)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert stored_invites(data) == 0


# -- serve: the owner link ---------------------------------------------------------------------

OWNER_LINK = re.compile(r"^Owner link: (http://\S+)/#token=([A-Za-z0-9_.-]+)(?:&room=(\S+))?$")


@pytest.fixture
def no_jwt_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No JWT_SECRET in the environment or a .env, here or in a server process started."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)


def no_jwt_secret_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}


async def serve(data: Path, *args: str) -> tuple[list[str], str]:
    """Run ``codesphere serve`` until it has printed its start-up lines; its stdout lines
    and its WebSocket URL (the server is stopped)."""
    server = await ServeProcess.start(data, data.parent / "serve.log", *args,
                                      env=no_jwt_secret_env())  # fmt: skip
    try:
        url = await server.url()
        await server.line(r"^Create a room with")
        if "--no-owner-link" not in args:
            await server.line(r"^Owner link: ")
    finally:
        assert await server.stop() == 0
    return server.stdout.splitlines(), url


@pytest.mark.usefixtures("no_jwt_secret")
async def test_serve_prints_an_owner_link_into_a_welcome_room(tmp_path: Path) -> None:
    """A first start makes a Welcome room owned by ``owner`` and prints a link that signs in
    there; the next start makes no other room and links to the same one."""
    data = tmp_path / "data"
    lines, url = await serve(data)
    links = [m for m in map(OWNER_LINK.match, lines) if m]
    assert len(links) == 1, lines
    http_url, token, room_id = links[0].groups()
    assert url == http_url.replace("http://", "ws://") + "/ws"
    assert room_id is not None and room_id.startswith("r-")
    assert sum(token in line for line in lines) == 1
    assert any(line.startswith("Clients connect to ws://") for line in lines)

    server = await start_server("127.0.0.1", 0, data)  # no secret: the data dir's file
    try:
        claims = server.hub.tokens.verify(token)
        assert isinstance(claims, UserClaims)
        assert (claims.user, claims.name, claims.admin) == ("owner", "Owner", False)
        assert 29 * 86400 < claims.expires_at - time.time() <= 30 * 86400 + 1
        client = await connect(server.url, "Owner", token=token)
        joined = await client.call("room/join", {"roomId": room_id})
        assert joined["room"] == {"id": room_id, "name": "Welcome"}
        assert joined["you"]["role"] == "owner"
        assert [f["path"] for f in joined["files"]] == ["README.md"]
        readme = (await client.call("textDocument/didOpen", {"path": "README.md"}))["text"]
        assert "invite" in readme and "mint-invite" in readme
        await client.call("invite/create", {"role": "editor"})  # an owner indeed
        await client.close()
    finally:
        await server.close()

    again, _ = await serve(data)
    (second,) = [m for m in map(OWNER_LINK.match, again) if m]
    assert second[3] == room_id and second[2] != token
    rooms = (await asyncio.to_thread(run, "room", "list", "--data-dir", str(data))).splitlines()
    assert len(rooms) == 1 and "Welcome" in rooms[0]


@pytest.mark.usefixtures("no_jwt_secret")
async def test_serve_links_to_no_room_when_owner_owns_none(tmp_path: Path) -> None:
    """With rooms already there, none is made; ``owner`` owns none, so the link names none."""
    data = tmp_path / "data"
    room_id = await asyncio.to_thread(make_room, str(data), tmp_path)
    lines, _ = await serve(data)
    (link,) = [m for m in map(OWNER_LINK.match, lines) if m]
    assert link[3] is None and "&room=" not in link[0]
    rooms = (await asyncio.to_thread(run, "room", "list", "--data-dir", str(data))).splitlines()
    assert len(rooms) == 1 and rooms[0].startswith(room_id)


@pytest.mark.usefixtures("no_jwt_secret")
async def test_serve_no_owner_link_makes_no_room_and_prints_no_link(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lines, _ = await serve(data, "--no-owner-link")
    assert any(line.startswith("Clients connect to ws://") for line in lines)
    assert not [line for line in lines if "Owner link" in line or "token" in line]
    assert await asyncio.to_thread(run, "room", "list", "--data-dir", str(data)) == "no rooms\n"
