""":CodeSphereChat: the room's chat in a Neovim split, both ways with a Python client."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from codesphere.app.server import RunningServer
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import join
from tests.tokens import operator_token

pytestmark = pytest.mark.timeout(90)


def chat_lines(nvim: Any) -> list[str]:
    return list(nvim.exec_lua("return require('codesphere.chat').lines()"))


def shown(nvim: Any, name: str, text: str) -> list[str]:
    """The chat lines "HH:MM name: text"."""
    pattern = re.compile(rf"^\d\d:\d\d {re.escape(name)}: {re.escape(text)}$")
    return [line for line in chat_lines(nvim) if pattern.match(line)]


def test_chat_history_and_messages_both_ways(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, _ = room
    aloop.run(client.send_chat("bonjour 😀 中文"))
    aloop.run(client.send_chat("two\nlines"))
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)

    nvim.command("CodeSphereChat")
    assert nvim.current.buffer.name.startswith("codesphere-chat://")
    wait_for(lambda: shown(nvim, "Py", "bonjour 😀 中文"), what="the history")
    lines = chat_lines(nvim)
    assert lines[1:] == [lines[1], "      lines"] and lines[1].endswith(" Py: two")
    # The time is the message's, in local time.
    stamp = aloop.run(client.chat_history())[0][0]["timestamp"]
    assert lines[0].startswith(time.strftime("%H:%M ", time.localtime(stamp / 1000)))

    # Typed on the prompt line: sent, shown once (from the server), the prompt empty again.
    client.clear_notifications("chat/message")
    nvim.input("iça va ? ünïcödé 👍<CR>")
    got = aloop.run(client.next_notification("chat/message", 10), timeout=15)
    assert got["message"]["text"] == "ça va ? ünïcödé 👍"
    assert got["message"]["name"] == "Ada"
    wait_for(lambda: shown(nvim, "Ada", "ça va ? ünïcödé 👍"), what="our message shown")
    assert len(shown(nvim, "Ada", "ça va ? ünïcödé 👍")) == 1
    assert nvim.current.buffer[-1] == "> "
    assert not any(line.startswith(">") for line in chat_lines(nvim))

    # A live message from Py arrives while we are typing: what we typed stays.
    nvim.input("half")
    aloop.run(client.send_chat("live ✓"))
    wait_for(lambda: shown(nvim, "Py", "live ✓"), what="the live message")
    assert nvim.current.buffer[-1] == "> half"
    nvim.input("<Esc>")

    # :CodeSphereChat {message} sends at once.
    client.clear_notifications("chat/message")
    nvim.command("CodeSphereChat direct: 中文 | ok")
    got = aloop.run(client.next_notification("chat/message", 10), timeout=15)
    assert got["message"]["text"] == "direct: 中文 | ok"
    wait_for(lambda: shown(nvim, "Ada", "direct: 中文 | ok"), what="the direct message")
    assert len(chat_lines(nvim)) == 6
    # `q` closes the window; the messages are kept.
    nvim.input("q")
    wait_for(lambda: not nvim.current.buffer.name.startswith("codesphere-chat://"), what="closed")
    nvim.command("CodeSphereChat")
    assert len(chat_lines(nvim)) == 6


def test_chat_notifies_while_closed_and_reports_errors(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    client, room_id, _ = room
    nvim = make_nvim("Ada")
    join(nvim, server, operator_token("ada"), room_id)
    nvim.exec_lua("_G.seen = {} vim.notify = function(msg, level) table.insert(_G.seen, msg) end")
    aloop.run(client.send_chat("anyone? 🙂"))
    wait_for(
        lambda: "CodeSphere: Py: anyone? 🙂" in nvim.exec_lua("return _G.seen"),
        what="a notification",
    )
    # Errors are reported, not sent.
    too_long = "x" * 8193
    err = nvim.exec_lua(
        "local r require('codesphere').chat(..., function(e) r = e or 'ok' end)"
        " vim.wait(5000, function() return r ~= nil end) return r",
        too_long,
    )
    assert "at most 8192 characters" in err
    # With chat.notify = false, nothing is said.
    nvim.exec_lua(
        "local cs = require('codesphere')"
        " cs.setup(vim.tbl_extend('force', cs.config, {chat = {notify = false}}))"
        " _G.seen = {}"
    )
    nvim.exec_lua(
        "require('codesphere').join(...)",
        f"{server.http_url}/#token={operator_token('ada')}&room={room_id}",
    )
    wait_for(
        lambda: nvim.exec_lua("return require('codesphere').status().state") == "joined",
        what="rejoined",
    )
    aloop.run(client.send_chat("quiet"))
    nvim.command("CodeSphereChat")
    wait_for(lambda: shown(nvim, "Py", "quiet"), what="the message")
    assert not [m for m in nvim.exec_lua("return _G.seen") if "quiet" in m]
