""":CodeSphereFollow: Neovim shows the file and cursor of another member until the user acts."""

from __future__ import annotations

from typing import Any

import pytest

from codesphere.app.server import RunningServer
from codesphere.client import CodeSphereClient
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import join, status
from tests.tokens import operator_token

pytestmark = pytest.mark.timeout(90)


def where(nvim: Any) -> tuple[str, int, int]:
    """The current buffer's name and the cursor (1-based line, byte column)."""
    line, col = nvim.current.window.cursor
    return nvim.current.buffer.name, line, col


def follower(nvim: Any) -> dict[str, Any]:
    return nvim.exec_lua(
        "local f = require('codesphere').follower"
        " return {target = f.target or vim.NIL, watched = vim.tbl_keys(f.watched)}"
    )


def test_follow_opens_their_file_and_moves_with_them_until_we_type(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, _ = room

    async def two_files() -> None:
        await client.create_file("src/b.py", "x = 1\nprint('héllo')\n")
        await client.open("src/b.py")
        await client.update_presence("src/b.py", [(15, 15)])  # "print('hé|llo')": byte 10

    aloop.run(two_files())
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    assert not status(nvim)["docs"]
    assert nvim.call("getcompletion", "CodeSphereFollow ", "cmdline") == ["Py"]

    # Nothing of the room is open here: following finds Py by opening the room's files.
    nvim.command("CodeSphereFollow Py")
    wait_for(lambda: where(nvim) == ("codesphere://src/b.py", 2, 10), what="Py's place")
    assert "following Py" in nvim.exec_lua("return require('codesphere').statusline()")
    assert sorted(follower(nvim)["watched"]) == ["a.txt", "src/b.py"]

    # Py moves within the file, then to another one.
    aloop.run(client.update_presence("src/b.py", [(0, 0)]))
    wait_for(lambda: where(nvim) == ("codesphere://src/b.py", 1, 0), what="Py's move")
    aloop.run(client.update_presence("a.txt", [(8, 8)]))
    wait_for(lambda: where(nvim) == ("codesphere://a.txt", 2, 3), what="Py's other file")

    # Our own key in that window takes over: Py's next move is not followed.
    nvim.input("k")
    wait_for(lambda: follower(nvim)["target"] is None, what="following stopped")
    assert follower(nvim)["watched"] == []
    assert "following" not in nvim.exec_lua("return require('codesphere').statusline()")
    aloop.run(client.update_presence("a.txt", [(12, 12)]))
    aloop.run(client.update_presence("a.txt", [(3, 3)]))
    wait_for(
        lambda: (
            nvim.exec_lua(
                "return #vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace("
                "'codesphere_presence_' .. ...), {0, 4}, {0, 4}, {})",
                client.me and client.me["memberId"],
            )
            > 0
        ),
        what="Py's cursor drawn at its new place",
    )
    assert where(nvim) == ("codesphere://a.txt", 1, 3)


def test_follow_keeps_going_while_we_chat_and_stops_when_they_leave(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    _, room_id, _ = room

    async def member() -> CodeSphereClient:
        bo = await CodeSphereClient.connect(server.url, name="Bo Ek", token=operator_token("bo"))
        await bo.join(room_id)
        await bo.open("a.txt")
        return bo

    bo = aloop.run(member())
    try:
        nvim = make_nvim("Ada")
        join(nvim, server, operator_token("ada"), room_id)
        # Names with spaces complete and follow as a whole.
        assert nvim.call("getcompletion", "CodeSphereFollow Bo ", "cmdline") == ["Ek"]
        assert nvim.call("getcompletion", "CodeSphereFollow b", "cmdline") == []
        nvim.command("CodeSphereFollow Bo Ek")
        wait_for(lambda: follower(nvim)["target"] is not None, what="following")
        line = nvim.exec_lua("return require('codesphere').statusline()")
        assert "following Bo Ek (no file)" in line, line
        aloop.run(bo.update_presence("a.txt", [(1, 1)]))
        wait_for(lambda: where(nvim) == ("codesphere://a.txt", 1, 1), what="Bo's place")

        # Typing in another window (the chat) does not stop following.
        nvim.command("CodeSphereChat")
        nvim.input("ihi<Esc>")
        aloop.run(bo.update_presence("a.txt", [(7, 7)]))
        follow_win = nvim.exec_lua("return require('codesphere').follower.win")
        wait_for(
            lambda: tuple(nvim.api.win_get_cursor(follow_win)) == (2, 1), what="Bo's next place"
        )
        assert nvim.current.buffer.name.startswith("codesphere-chat://")

        aloop.run(bo.leave())
        wait_for(lambda: follower(nvim)["target"] is None, what="stopped when Bo left")
    finally:
        aloop.run(bo.close())


def test_follow_errors_and_unfollow(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    _, room_id, _ = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    follow = "return require('codesphere').follow(...)"
    assert nvim.exec_lua(follow, "Nobody") == "no other member online is called Nobody"
    assert nvim.exec_lua(follow, "Ada") == "you cannot follow yourself"
    assert nvim.exec_lua(follow, "py") is None  # case does not matter when unambiguous
    assert follower(nvim)["target"] is not None
    nvim.command("CodeSphereUnfollow")
    assert follower(nvim)["target"] is None
    out = nvim.exec_lua("return vim.api.nvim_exec('messages', true)")
    assert "stopped following Py" in out
