"""`u` and CTRL-R in a CodeSphere buffer take back only the user's own changes.

Neovim's undo would take back the edits of others too (they are changes in the buffer like any
other); the plugin keeps its own history of the user's changes. An undo is a local edit: it
reaches the server, and everyone converges.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import (
    ada_editing,
    buffer_text,
    kill_bridge,
    settled,
    status,
    wait_reconnected,
)

pytestmark = pytest.mark.timeout(90)


def converged(nvim: Any, buf: int, doc: Any) -> bool:
    return settled(nvim, "a.txt") and doc.is_settled and buffer_text(nvim, buf) == doc.text


def same_everywhere(aloop: Loop, nvim: Any, buf: int, doc: Any, expected: str) -> None:
    wait_for(lambda: converged(nvim, buf, doc), what="convergence")
    assert buffer_text(nvim, buf) == doc.text == expected
    assert aloop.run(doc.checksum())  # the server's text too


def without_ends(nvim: Any, buf: int) -> str:
    """The buffer's text without the "[i]" the Python client puts at the end of a line."""
    return re.sub(r"\[\d+\]", "", buffer_text(nvim, buf))


def keys(nvim: Any, typed: str) -> None:
    """Types `typed` and waits until Neovim has run it (mappings included)."""
    nvim.feedkeys(nvim.replace_termcodes(typed, True, True, True), "mtx", False)


def test_u_undoes_the_local_insert_and_keeps_the_remote_one(aloop, server, room, make_nvim):
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    keys(nvim, "GAabc😀<Esc>")
    same_everywhere(aloop, nvim, buf, doc, "héllo\nwörldabc😀\n")
    # Someone adds a line above (ours moves down) and text on our line, just before ours.
    aloop.run(doc.insert(0, "中文\n"))
    aloop.run(doc.insert(len("中文\nhéllo\nwörld"), "e\u0301"))
    wait_for(lambda: buffer_text(nvim, buf) == "中文\nhéllo\nwörlde\u0301abc😀\n", what="remote")

    keys(nvim, "u")
    assert buffer_text(nvim, buf) == "中文\nhéllo\nwörlde\u0301\n"
    same_everywhere(aloop, nvim, buf, doc, "中文\nhéllo\nwörlde\u0301\n")

    keys(nvim, "<C-r>")
    same_everywhere(aloop, nvim, buf, doc, "中文\nhéllo\nwörlde\u0301abc😀\n")
    keys(nvim, "u")
    same_everywhere(aloop, nvim, buf, doc, "中文\nhéllo\nwörlde\u0301\n")
    keys(nvim, "u")  # nothing more of ours: nothing changes
    same_everywhere(aloop, nvim, buf, doc, "中文\nhéllo\nwörlde\u0301\n")


def test_steps_are_neovims_and_swallowed_changes_come_back(aloop, server, room, make_nvim):
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    keys(nvim, "ciwhi 中<Esc>")  # a deletion and an insertion: one step, as in Neovim
    keys(nvim, "x")
    keys(nvim, "x")
    same_everywhere(aloop, nvim, buf, doc, "hi\nwörld\n")
    aloop.run(doc.insert(len(doc.text), "end\n"))
    wait_for(lambda: buffer_text(nvim, buf) == "hi\nwörld\nend\n", what="remote")
    keys(nvim, "2u")
    assert buffer_text(nvim, buf) == "hi 中\nwörld\nend\n"
    keys(nvim, "u")
    same_everywhere(aloop, nvim, buf, doc, "héllo\nwörld\nend\n")

    # A line typed, then deleted with more: undoing the deletion brings back the line, and the
    # next undo still knows where the typed text is.
    keys(nvim, "Gofoo 😀<Esc>")
    keys(nvim, "kdG")
    same_everywhere(aloop, nvim, buf, doc, "héllo\nwörld\n")
    aloop.run(doc.insert(0, "<"))
    wait_for(lambda: buffer_text(nvim, buf) == "<héllo\nwörld\n", what="remote")
    keys(nvim, "u")
    assert buffer_text(nvim, buf) == "<héllo\nwörld\nend\nfoo 😀\n"
    keys(nvim, "u")
    same_everywhere(aloop, nvim, buf, doc, "<héllo\nwörld\nend\n")
    keys(nvim, "2<C-r>")
    same_everywhere(aloop, nvim, buf, doc, "<héllo\nwörld\n")


def test_typing_with_remote_edits_in_between_is_one_step(aloop, server, room, make_nvim):
    """Remote edits that arrive during an Insert session, even right after the typed text, stay
    when the session is undone (in Neovim's own undo they would join the session's step)."""
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    nvim.input("GA")  # typed as keys: Insert mode stays on while the remote edits arrive
    typed, fronts, backs = "", "", ""
    for i, ch in enumerate(" tippe 😀 中文 e\u0301!"):
        nvim.input(ch)
        typed += ch
        line_end = "wörld" + typed + "\n"
        wait_for(lambda e=line_end: without_ends(nvim, buf).endswith(e), what="typed")
        if i % 4 == 1:
            wait_for(lambda: settled(nvim, "a.txt"), what="sent")
            aloop.run(doc.insert(0, f"<{i}>"))
            aloop.run(doc.insert(len(doc.text) - 1, f"[{i}]"))  # at the end of our line
            fronts, backs = f"<{i}>" + fronts, backs + f"[{i}]"
            wait_for(lambda b=backs: b in buffer_text(nvim, buf), what="remote edits")
    nvim.input("<Esc>")
    wait_for(lambda: converged(nvim, buf, doc), what="convergence")
    before = doc.text

    keys(nvim, "u")
    same_everywhere(aloop, nvim, buf, doc, fronts + "héllo\nwörld" + backs + "\n")
    keys(nvim, "<C-r>")
    same_everywhere(aloop, nvim, buf, doc, before)


def test_undo_while_offline_reaches_the_server_after_the_reconnect(aloop, server, room, make_nvim):
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    keys(nvim, "ggI😀 <Esc>")
    same_everywhere(aloop, nvim, buf, doc, "😀 héllo\nwörld\n")
    killed = kill_bridge(nvim)
    wait_for(lambda: status(nvim)["state"] == "reconnecting", what="offline")
    aloop.run(doc.insert(len(doc.text), "中"))
    keys(nvim, "u")
    assert buffer_text(nvim, buf) == "héllo\nwörld\n"
    wait_reconnected(nvim, killed)
    same_everywhere(aloop, nvim, buf, doc, "héllo\nwörld\n中")


def test_remote_text_between_two_changes_of_ours_stays(aloop, server, room, make_nvim):
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    keys(nvim, "ggIXYZ<Esc>")
    keys(nvim, "ggIab😀<Esc>")  # right before the first
    same_everywhere(aloop, nvim, buf, doc, "ab😀XYZhéllo\nwörld\n")
    aloop.run(doc.insert(3, "R"))  # between them (UTF-16: the emoji is two units)
    wait_for(lambda: buffer_text(nvim, buf) == "ab😀RXYZhéllo\nwörld\n", what="remote")
    keys(nvim, "u")
    assert buffer_text(nvim, buf) == "RXYZhéllo\nwörld\n"
    keys(nvim, "u")
    same_everywhere(aloop, nvim, buf, doc, "Rhéllo\nwörld\n")
    keys(nvim, "2<C-r>")
    same_everywhere(aloop, nvim, buf, doc, "ab😀RXYZhéllo\nwörld\n")


#: Normal-mode commands (undo and redo among them) for the random sequences below.
COMMANDS = [
    "u", "u", "2u", "<C-r>", "<C-r>", "x", "dd", "ciwZ😀<Esc>", "Ahey<Esc>",
    "Onew 中<CR>line<Esc>", "ggJ", "Gdd", "p", "ggdG", "ie\u0301<Esc>", "3x",
    ":s/e/E/g<CR>", "Go<Esc>", "yyP", "gg", "G", "w", "j", "k",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_random_commands_undo_and_remote_edits_converge(aloop, server, room, make_nvim, seed):
    """Whatever the user does, undos included, while someone edits: after every command the
    buffer, the server and the Python client agree, and no undo fails."""
    rnd = random.Random(seed)
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    for step in range(50):
        command = rnd.choice(COMMANDS)
        keys(nvim, command)
        if rnd.random() < 0.3:
            wait_for(lambda: settled(nvim, "a.txt"), what="sent")
            n = len(doc.text)
            if n and rnd.random() < 0.4:
                start = rnd.randrange(n)
                aloop.run(doc.delete(start, min(n, start + rnd.randrange(4))))
            else:
                aloop.run(doc.insert(rnd.randrange(n + 1), rnd.choice(["R", "ℝ\n", "😀", "x\nz"])))
        wait_for(lambda: converged(nvim, buf, doc), what=f"convergence after {step}: {command}")
    assert aloop.run(doc.checksum())
    messages = nvim.exec_lua("return vim.api.nvim_exec('messages', true)")
    assert "cannot undo" not in messages and "Error" not in messages, messages


UNDOLEVELS_TRICK = """
local buf = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(buf, 0, -1, false, {'one', 'two'})
vim.cmd('normal! ggAabc')
local before = #vim.fn.undotree().entries
-- A remote edit applied with 'undolevels' at -1, as if to keep it out of the history.
local old = vim.bo[buf].undolevels
vim.bo[buf].undolevels = -1
vim.api.nvim_buf_set_text(buf, 1, 0, 1, 0, {'R'})
vim.bo[buf].undolevels = old
return {before, #vim.fn.undotree().entries}
"""


def test_neovims_undolevels_trick_would_clear_the_users_history(make_nvim) -> None:
    """Why the plugin keeps its own history: a change made with 'undolevels' at -1 does not
    stay out of Neovim's undo tree, it empties it (on both Neovims)."""
    nvim = make_nvim()
    before, after = nvim.exec_lua(UNDOLEVELS_TRICK)
    assert before > 0 and after == 0
