"""The Neovim plugin (extensions/neovim) against a real server, through the stdio bridge."""

from __future__ import annotations

import pynvim
import pytest

from codesphere.client import CodeSphereClient
from tests.neovim.conftest import wait_for
from tests.neovim.helpers import ada_editing, buffer_text, join, open_file, settled, status
from tests.tokens import TOKENS, operator_token

pytestmark = pytest.mark.timeout(90)


def test_join_and_open_show_the_server_text(server, room, make_nvim) -> None:
    _, room_id, _ = room
    nvim = make_nvim("Ada")
    joined = join(nvim, server, operator_token("ada"), room_id)
    assert joined["state"] == "joined", joined
    assert joined["room"]["name"] == "demo"
    assert joined["files"] == ["a.txt"]
    buf = open_file(nvim, "a.txt")
    assert nvim.current.buffer[:] == ["héllo", "wörld"]
    assert nvim.current.buffer.name == "codesphere://a.txt"
    assert buffer_text(nvim, buf) == "héllo\nwörld\n"
    assert nvim.exec_lua("return vim.bo.modifiable") is True
    line = nvim.exec_lua("return require('codesphere').statusline()")
    assert line.startswith("CS demo 2 online"), line
    users = "\n".join(nvim.exec_lua("return require('codesphere').users_lines()"))
    assert "Ada" in users and "Py" in users and "(you)" in users
    assert nvim.call("getcompletion", "CodeSphereOpen a", "cmdline") == ["a.txt"]


def test_typing_reaches_the_server(aloop, server, room, make_nvim) -> None:
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    nvim.input("ihello 😀 中文<Esc>")
    expected = "hello 😀 中文héllo\nwörld\n"

    wait_for(lambda: doc.text == expected, what="the server text")
    wait_for(lambda: settled(nvim, "a.txt"), what="acknowledged")
    assert buffer_text(nvim, buf) == expected
    # More: a new line at the end, a deleted line, joined lines.
    nvim.input("Gonew line 😀<Esc>ggddJ")
    wait_for(lambda: settled(nvim, "a.txt"), what="acknowledged")
    local = buffer_text(nvim, buf)
    assert local == "wörld new line 😀\n"

    wait_for(lambda: doc.text == local, what="the server text")


def test_a_python_edit_appears_in_the_buffer(aloop, server, room, make_nvim) -> None:
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    aloop.run(doc.insert(0, "😀 "))
    aloop.run(doc.insert(len(doc.text), "end"))  # after the final newline
    wait_for(lambda: buffer_text(nvim, buf) == "😀 héllo\nwörld\nend", what="remote edits")
    assert nvim.current.buffer[:] == ["😀 héllo", "wörld", "end"]
    assert nvim.exec_lua("return vim.bo.eol") is False
    assert nvim.exec_lua("return vim.bo.modified") is False
    # Both sides edit at once; they converge.
    nvim.input("GAx<Esc>")
    aloop.run(doc.insert(0, "中"))
    wait_for(
        lambda: settled(nvim, "a.txt") and buffer_text(nvim, buf) == doc.text, what="convergence"
    )
    assert doc.text == "中😀 héllo\nwörld\nendx"


def test_a_viewer_buffer_is_not_modifiable(aloop, server, make_nvim) -> None:
    # The link carries only a token: join through a viewer invite of the room's owner.
    owner = aloop.run(
        CodeSphereClient.connect(server.url, name="Own", token=TOKENS.mint_user("olga"))
    )
    try:
        room2 = aloop.run(owner.create_room("view", [{"path": "v.txt", "text": "read me\n"}]))
        aloop.run(owner.join(room2))
        invite_token = aloop.run(owner.request("invite/create", {"role": "viewer"}))["token"]
        nvim = make_nvim("Vera")
        joined = join(nvim, server, invite_token, "")
        assert joined["state"] == "joined" and joined["you"]["role"] == "viewer"
        buf = open_file(nvim, "v.txt")
        assert nvim.exec_lua("return vim.bo.modifiable") is False
        assert "viewer" in nvim.exec_lua("return require('codesphere').statusline()")
        with pytest.raises(pynvim.api.NvimError):
            nvim.command("normal! ix")
        # The owner's edits still show.
        odoc = aloop.run(owner.open("v.txt"))
        aloop.run(odoc.insert(0, "please "))
        wait_for(lambda: buffer_text(nvim, buf) == "please read me\n", what="remote edit")
        assert nvim.exec_lua("return vim.bo.modifiable") is False
    finally:
        aloop.run(owner.close())


def test_both_type_at_once_and_converge(aloop, server, room, make_nvim) -> None:
    """Keystrokes gathered while an edit is in flight, remote edits dropped and caught up."""
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    nvim.input("Go")
    for i in range(30):
        nvim.input(f"{i}é😀 ")
        if i % 3 == 0:
            aloop.run(doc.insert(0, f"<{i}>"))
    nvim.input("<Esc>ggJ")
    wait_for(
        lambda: settled(nvim, "a.txt") and doc.is_settled and buffer_text(nvim, buf) == doc.text,
        timeout=20,
        what="convergence",
    )
    text = doc.text
    assert "".join(f"{i}é😀 " for i in range(30)) in text
    assert all(f"<{i}>" in text for i in range(0, 30, 3))
    assert aloop.run(doc.checksum())  # the Python client's text is the server's
    assert status(nvim)["docs"]["a.txt"]["revision"] == doc.revision


def test_users_and_leave(aloop, server, room, make_nvim) -> None:
    client, room_id, _ = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    out = nvim.exec_lua("return vim.api.nvim_exec('CodeSphereUsers', true)")
    assert "Ada [editor] online (you)" in out and "Py [" in out
    client.clear_notifications("room/memberLeft")
    nvim.command("CodeSphereLeave")
    wait_for(lambda: status(nvim)["state"] == "closed", what="left")
    left = aloop.run(client.next_notification("room/memberLeft", timeout=10), timeout=15)
    assert left["memberId"] == status(nvim)["you"]["memberId"]
    assert nvim.exec_lua("return require('codesphere').statusline()") == "CS offline"


def test_a_bad_link_or_token_is_reported(server, make_nvim) -> None:
    nvim = make_nvim("Ada")
    err = nvim.exec_lua(
        "local r; require('codesphere').join(..., function(e) r = e or 'ok' end)"
        " vim.wait(5000, function() return r ~= nil end) return r",
        "http://127.0.0.1:1/no-fragment",
    )
    assert "not a CodeSphere link" in err
    err = nvim.exec_lua(
        "local r; require('codesphere').join(..., function(e) r = e or 'ok' end)"
        " vim.wait(5000, function() return r ~= nil end) return r",
        f"{server.http_url}/#token=not.a.token&room=r-x",
    )
    assert "initialize failed" in err and "1007" in err


def test_a_missing_bridge_is_reported(server, make_nvim) -> None:
    nvim = make_nvim("Ada")
    nvim.exec_lua("require('codesphere').setup({cmd = {'/nonexistent/codesphere', 'bridge'}})")
    err = nvim.exec_lua(
        "local r; require('codesphere').join(..., function(e) r = e or 'ok' end)"
        " vim.wait(5000, function() return r ~= nil end) return r",
        f"{server.http_url}/#token=x&room=r-x",
    )
    assert "could not start the bridge" in err
    assert nvim.exec_lua("return require('codesphere').status().state") == "closed"


def test_reopen_after_bdelete_and_edit_reloads(aloop, server, room, make_nvim) -> None:
    _, room_id, doc = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    open_file(nvim, "a.txt")
    nvim.command("bdelete")
    wait_for(lambda: "a.txt" not in status(nvim)["docs"], what="closed")
    aloop.run(doc.insert(0, "1"))
    buf = open_file(nvim, "a.txt")
    wait_for(lambda: buffer_text(nvim, buf) == "1héllo\nwörld\n", what="reopened")
    nvim.command("edit")
    wait_for(lambda: buffer_text(nvim, buf) == "1héllo\nwörld\n", what="reloaded")
    nvim.input("x")
    wait_for(lambda: doc.text == "héllo\nwörld\n", what="edit after reload")


def test_a_remote_deletion_of_the_last_lines_keeps_the_final_newline(
    aloop, server, room, make_nvim
) -> None:
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    aloop.run(doc.delete(len("héllo\n"), len(doc.text)))
    wait_for(lambda: buffer_text(nvim, buf) == "héllo\n", what="remote deletion")
    # The lines go; no empty last line without 'eol' stands in for the final newline.
    assert nvim.current.buffer[:] == ["héllo"]
    assert nvim.exec_lua("return vim.bo.eol") is True
