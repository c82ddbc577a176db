"""The operator commands of the ``codesphere`` CLI, on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from codesphere.app.server import start_server
from codesphere.cli import main
from codesphere.client import CodeSphereClient


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
    server = await start_server("127.0.0.1", 0, data)
    try:
        client = await CodeSphereClient.connect(server.url, name="Ada", encodings=("utf-8",))
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
