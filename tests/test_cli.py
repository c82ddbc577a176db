"""The operator commands of the ``codesphere`` CLI, on a real data directory."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codesphere.app.server import start_server
from codesphere.cli import main
from codesphere.client import CodeSphereClient
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
    await asyncio.to_thread(check_offline_views, str(data), room_id, final, client.client_id)


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
