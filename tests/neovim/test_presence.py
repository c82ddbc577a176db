"""Presence in the Neovim plugin: the others' cursors as extmarks, our own cursor sent."""

from __future__ import annotations

from typing import Any

import pytest

from codesphere.app.server import RunningServer
from codesphere.client import CodeSphereClient
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import ada_editing, join, open_file, settled, status
from tests.tokens import operator_token

pytestmark = pytest.mark.timeout(90)

MARKS = """
local buf = ...
local out = {}
for name, ns in pairs(vim.api.nvim_get_namespaces()) do
  local member = name:match('^codesphere_presence_(.+)$')
  if member then
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {details = true})) do
      local d = m[4]
      out[#out + 1] = {member = member, row = m[2], col = m[3], end_row = d.end_row,
        end_col = d.end_col, hl = d.hl_group, pos = d.virt_text_pos,
        text = d.virt_text and d.virt_text[1][1] or vim.NIL,
        vhl = d.virt_text and d.virt_text[1][2] or vim.NIL}
    end
  end
end
return out
"""


def marks(nvim: Any, buf: int) -> list[dict[str, Any]]:
    """The presence extmarks of `buf`, as plain dicts (every key present, maybe None)."""
    keys = ("member", "row", "col", "end_row", "end_col", "hl", "pos", "text", "vhl")
    return [{k: m.get(k) for k in keys} for m in nvim.exec_lua(MARKS, buf)]


def reconfigure(nvim: Any, **opts: Any) -> None:
    """setup() again with `opts` changed (keeping the test's bridge command and name)."""
    nvim.exec_lua(
        "local cs = require('codesphere') cs.setup(vim.tbl_extend('force', cs.config, ...))", opts
    )


def gui_colour(nvim: Any, group: str, what: str) -> str:
    """The GUI colour `what` ("fg#", "bg#") of highlight `group`."""
    return str(
        nvim.exec_lua(
            "local g, w = ... return vim.fn.synIDattr(vim.fn.hlID(g), w, 'gui')", group, what
        )
    )


def label(nvim: Any, buf: int, name: str) -> dict[str, Any] | None:
    """The extmark that shows `name` at the end of its line."""
    for m in marks(nvim, buf):
        if m["pos"] == "eol" and m["text"] == f" {name} ":
            return m
    return None


def caret(nvim: Any, buf: int, member: str) -> dict[str, Any] | None:
    """The extmark drawing the cursor of `member`."""
    for m in marks(nvim, buf):
        if m["member"] == member and (m["pos"] == "overlay" or "Cursor" in str(m["hl"])):
            return m
    return None


async def presence_at(
    client: CodeSphereClient, member: str, line: int, character: int, anchor: Any = None
) -> dict[str, Any]:
    """The next presence/didChange of `member` with its cursor at (line, character)."""

    def ok(p: Any) -> bool:
        if p["memberId"] != member or not p["selections"]:
            return False
        sel = p["selections"][0]
        if sel["active"] != {"line": line, "character": character}:
            return False
        return anchor is None or sel["anchor"] == anchor

    try:
        params: dict[str, Any] = await client.next_notification("presence/didChange", 10, ok)
    except TimeoutError:
        seen = client.notifications("presence/didChange")
        raise AssertionError(f"no presence of {member} at {line}:{character}: {seen}") from None
    return params


def test_a_remote_cursor_is_drawn_in_its_colour_with_its_name(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, _ = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    assert client.me is not None
    py = client.me["memberId"]
    colour = client.me["color"].lstrip("#").lower()

    # "héllo\nwörld\n": code point 8 is after "wö" on the second line, byte column 3 there.
    aloop.run(client.update_presence("a.txt", [(8, 8)]))
    mark = wait_for(lambda: label(nvim, buf, "Py"), what="the name label")
    assert (mark["row"], mark["col"]) == (1, 3)
    assert mark["vhl"] == f"CodeSphereName_{colour}"
    cur = caret(nvim, buf, py)
    assert cur is not None
    assert (cur["row"], cur["col"], cur["end_row"], cur["end_col"]) == (1, 3, 1, 4)  # the "r"
    assert cur["hl"] == f"CodeSphereCursor_{colour}"
    cursor_bg = gui_colour(nvim, f"CodeSphereCursor_{colour}", "bg#")
    assert cursor_bg == gui_colour(nvim, f"CodeSphereName_{colour}", "bg#") == f"#{colour}"
    assert gui_colour(nvim, f"CodeSphereSelection_{colour}", "bg#")  # blended, but defined

    # A selection from after "h" (byte 1: before the two bytes of "é") back to... the cursor.
    aloop.run(client.update_presence("a.txt", [(1, 8)]))
    wait_for(
        lambda: any(m["hl"] == f"CodeSphereSelection_{colour}" for m in marks(nvim, buf)),
        what="the selection",
    )
    sel = next(m for m in marks(nvim, buf) if m["hl"] == f"CodeSphereSelection_{colour}")
    assert (sel["row"], sel["col"], sel["end_row"], sel["end_col"]) == (0, 1, 1, 3)
    mark = label(nvim, buf, "Py")
    assert mark is not None and (mark["row"], mark["col"]) == (1, 3)

    # At the end of a line after multibyte text: a blank drawn over the end of the line.
    aloop.run(client.update_presence("a.txt", [(5, 5)]))  # after "héllo": byte 6
    wait_for(lambda: (m := label(nvim, buf, "Py")) and m["col"] == 6, what="the moved label")
    cur = caret(nvim, buf, py)
    assert cur is not None and cur["pos"] == "overlay" and (cur["row"], cur["col"]) == (0, 6)
    assert len(marks(nvim, buf)) == 2  # the old cursor and selection are gone

    # Looking at no document clears it.
    aloop.run(client.update_presence(None))
    wait_for(lambda: marks(nvim, buf) == [], what="marks cleared")


def test_remote_cursors_follow_edits_and_vanish_when_the_member_leaves(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)

    async def second() -> CodeSphereClient:
        bo = await CodeSphereClient.connect(server.url, name="Bo", token=operator_token("bo"))
        await bo.join(room_id)
        await bo.open("a.txt")
        await bo.update_presence("a.txt", [(10, 10)])  # "wörl|d"
        return bo

    bo = aloop.run(second())
    try:
        mark = wait_for(lambda: label(nvim, buf, "Bo"), what="Bo's label")
        assert (mark["row"], mark["col"]) == (1, 5)
        # Someone else types before it on its line: the extmark moves with the text.
        aloop.run(doc.insert(6, "😀"))
        wait_for(lambda: nvim.current.buffer[1] == "😀wörld", what="the remote edit")
        mark = wait_for(
            lambda: (m := label(nvim, buf, "Bo")) and m["col"] == 9 and m, what="moved label"
        )
        aloop.run(bo.leave())
        wait_for(lambda: label(nvim, buf, "Bo") is None, what="Bo's marks cleared")
        assert all(m["text"] != " Bo " for m in marks(nvim, buf))
    finally:
        aloop.run(bo.close())


def test_our_cursor_and_selection_reach_the_others(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, doc = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    open_file(nvim, "a.txt")
    ada = status(nvim)["you"]["memberId"]
    client.clear_notifications("presence/didChange")

    # The Python client counts UTF-16 units: after "wö" is character 2 (byte 3 in Neovim).
    nvim.input("jll")
    aloop.run(presence_at(client, ada, 1, 2), timeout=15)
    assert tuple(nvim.current.window.cursor) == (2, 3)

    # Visual mode includes the character under the cursor: "rl" is [2, 4).
    nvim.input("vl")
    aloop.run(presence_at(client, ada, 1, 4, anchor={"line": 1, "character": 2}), timeout=15)
    nvim.input("<Esc>")
    # Backwards over "é": the anchor's character stays selected.
    nvim.input("gg0llvh")  # anchor on the first "l" (byte 3), cursor on "é" (byte 1)
    aloop.run(presence_at(client, ada, 0, 1, anchor={"line": 0, "character": 3}), timeout=15)
    nvim.input("<Esc>")
    # Linewise: from the start of the anchor's line to the end of the cursor's.
    nvim.input("Vj")
    aloop.run(presence_at(client, ada, 1, 5, anchor={"line": 0, "character": 0}), timeout=15)
    nvim.input("<Esc>")
    # Blockwise: one range per line, the cursor's line first ("wö" and "hé").
    nvim.input("gg0<C-v>jl")
    block = aloop.run(presence_at(client, ada, 1, 2, anchor={"line": 1, "character": 0}))
    assert block["selections"][1:] == [
        {"anchor": {"line": 0, "character": 0}, "active": {"line": 0, "character": 2}}
    ]
    nvim.input("<Esc>")

    # Typing: the cursor is sent once the edit it follows has been sent (§7), so the server
    # never sees a position in text it does not have yet.
    nvim.input("A 😀 中<Esc>")
    aloop.run(presence_at(client, ada, 1, 9), timeout=15)  # on "中": "wörld 😀 " is 9 units
    wait_for(lambda: settled(nvim, "a.txt"), what="acknowledged")
    assert doc.text == "héllo\nwörld 😀 中\n"
    counts = status(nvim)["presence"]
    assert counts["sent"] >= 5 and counts["refused"] == 0, counts


def test_presence_follows_the_window_and_stops_outside_room_buffers(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, _ = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    open_file(nvim, "a.txt")
    ada = status(nvim)["you"]["memberId"]
    nvim.input("j")
    aloop.run(presence_at(client, ada, 1, 0), timeout=15)
    # A split with a local buffer while a.txt stays on screen: still looking at a.txt.
    nvim.command("new")
    nvim.input("ihello<Esc>")
    nvim.command("close")
    nvim.input("k")
    aloop.run(presence_at(client, ada, 0, 0), timeout=15)
    assert not [
        p
        for p in client.notifications("presence/didChange")
        if p["memberId"] == ada and p["path"] is None
    ]
    # A.txt no longer on screen: no document.
    client.clear_notifications("presence/didChange")
    nvim.command("enew")
    gone = aloop.run(
        client.next_notification(
            "presence/didChange", 10, lambda p: p["memberId"] == ada and p["path"] is None
        ),
        timeout=15,
    )
    assert gone["selections"] == []


def test_presence_options(aloop: Loop, server: RunningServer, room: Any, make_nvim: Any) -> None:
    """colors = false: the plain groups for everyone; presence = false: nothing either way."""
    client, room_id, _ = room
    plain = make_nvim("Ada")
    reconfigure(plain, colors=False)
    join(plain, server, operator_token("ada"), room_id)
    buf = open_file(plain, "a.txt")
    aloop.run(client.update_presence("a.txt", [(0, 2)]))
    mark = wait_for(lambda: label(plain, buf, "Py"), what="the label")
    assert mark["vhl"] == "CodeSphereName"
    assert {m["hl"] for m in marks(plain, buf)} >= {"CodeSphereCursor", "CodeSphereSelection"}
    assert plain.exec_lua("return vim.fn.hlexists('CodeSphereCursor')") == 1
    # A user's own definition wins over the plugin's default.
    plain.command("highlight CodeSphereName guifg=#123456")
    reconfigure(plain, colors=False)
    assert gui_colour(plain, "CodeSphereName", "fg#") == "#123456"

    off = make_nvim("Off")
    reconfigure(off, presence=False)
    join(off, server, operator_token("off"), room_id)
    obuf = open_file(off, "a.txt")
    off_id = status(off)["you"]["memberId"]
    client.clear_notifications("presence/didChange")
    off.input("jl")
    aloop.run(client.update_presence("a.txt", [(3, 3)]))
    wait_for(lambda: label(plain, buf, "Py") and label(plain, buf, "Py")["col"] == 4, what="moved")
    assert marks(off, obuf) == []
    assert all(p["memberId"] != off_id for p in client.notifications("presence/didChange"))
