""":CodeSphereShare: local files become documents of the room, and the buffer shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codesphere.app.server import RunningServer
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import buffer_text, join, settled, status
from tests.tokens import operator_token

pytestmark = pytest.mark.timeout(90)

SHARE = (
    "local r require('codesphere').share(..., function(errors, shared) r = {errors, shared} end)"
    " vim.wait(10000, function() return r ~= nil end) return r"
)


def share(nvim: Any, files: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Runs share(files) and returns its errors and shared documents."""
    errors, shared = nvim.exec_lua(SHARE, files)
    return list(errors), list(shared)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('héllo 😀')\n", encoding="utf-8")
    (root / "notes.txt").write_bytes("crlf ✓\r\nline two\r\n".encode())
    (root / "a.txt").write_text("a local a.txt\n", encoding="utf-8")
    (root / "latin1.txt").write_bytes(b"caf\xe9\n")
    return root


def test_share_the_current_buffer(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any, tmp_path: Path
) -> None:
    client, room_id, _ = room
    root = project(tmp_path)
    nvim = make_nvim("Ada")
    nvim.command(f"cd {root}")
    nvim.command("edit src/main.py")
    local = nvim.current.buffer.number
    nvim.input("Goadded()<Esc>")  # unsaved: what the buffer holds is shared
    join(nvim, server, operator_token("ada"), room_id)

    nvim.command("CodeSphereShare")
    wait_for(lambda: nvim.current.buffer.name == "codesphere://src/main.py", what="the document")
    buf = nvim.current.buffer.number
    assert buffer_text(nvim, buf) == "print('héllo 😀')\nadded()\n"
    assert "src/main.py" in status(nvim)["files"]
    assert nvim.call("getcompletion", "CodeSphereOpen src/", "cmdline") == ["src/main.py"]
    # The room has it; the local buffer is still there, unchanged.
    doc = aloop.run(client.open("src/main.py"))
    assert doc.text == "print('héllo 😀')\nadded()\n"
    assert nvim.api.buf_is_loaded(local)
    assert nvim.api.buf_get_lines(local, 0, -1, True)[-1] == "added()"
    # It is a document like any other: edits go both ways.
    nvim.input("ggA # ✓<Esc>")
    wait_for(lambda: doc.text.startswith("print('héllo 😀') # ✓\n"), what="our edit")
    wait_for(lambda: settled(nvim, "src/main.py"), what="acknowledged")


def test_share_files_by_name(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any, tmp_path: Path
) -> None:
    client, room_id, _ = room
    root = project(tmp_path)
    nvim = make_nvim("Ada")
    nvim.command(f"cd {root / 'src'}")
    join(nvim, server, operator_token("ada"), room_id)

    # Relative to the current directory; not loaded, so read from disk (its CRLF kept as eol).
    errors, shared = share(nvim, ["main.py", str(root / "notes.txt")])
    assert errors == [f"{root / 'notes.txt'} is not under the current directory {root / 'src'}"]
    assert [s["path"] for s in shared] == ["main.py"]
    # Its room buffer (codesphere://main.py) is not mistaken for the local file.
    errors, _ = share(nvim, ["main.py"])
    assert errors == ["main.py already exists in the room (:CodeSphereOpen main.py opens it)"]
    nvim.command(f"cd {root}")
    errors, shared = share(nvim, ["notes.txt"])
    assert errors == [] and [s["path"] for s in shared] == ["notes.txt"]
    assert nvim.current.buffer.name == "codesphere://notes.txt"
    files = {f["path"]: f for f in aloop.run(client.files())}
    assert files["notes.txt"]["eol"] == "\r\n"
    assert aloop.run(client.open("notes.txt")).text == "crlf ✓\nline two\n"

    # A name the room already has: a clear error, nothing changes.
    nvim.command("edit a.txt")
    errors, shared = share(nvim, [])
    assert errors == ["a.txt already exists in the room (:CodeSphereOpen a.txt opens it)"]
    assert shared == []
    assert nvim.current.buffer.name == str(root / "a.txt")
    assert aloop.run(client.open("a.txt")).text == "héllo\nwörld\n"
    # The command reports it too.
    nvim.command("CodeSphereShare")
    wait_for(
        lambda: (
            "a.txt already exists in the room"
            in nvim.exec_lua("return vim.api.nvim_exec('messages', true)")
        ),
        what="the error message",
    )

    # The command expands wildcards as :edit does.
    (root / "g1.md").write_text("one\n", encoding="utf-8")
    (root / "g2.md").write_text("two\n", encoding="utf-8")
    nvim.command("CodeSphereShare g*.md")
    wait_for(
        lambda: {"g1.md", "g2.md"} <= {f["path"] for f in aloop.run(client.files())},
        what="both shared",
    )
    wait_for(lambda: nvim.current.buffer.name == "codesphere://g1.md", what="the first shown")

    # Not UTF-8, a room buffer, a missing file.
    errors, _ = share(nvim, ["latin1.txt", "missing.txt"])
    assert errors == ["latin1.txt is not UTF-8 text", "cannot read missing.txt"]
    nvim.command("CodeSphereOpen notes.txt")
    errors, _ = share(nvim, [])
    assert errors == ["notes.txt is already a document of the room"]
