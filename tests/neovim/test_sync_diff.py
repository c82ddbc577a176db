"""Local edits become ContentChanges that rebuild the buffer's text exactly (no server).

A fake connection records every didChange and acknowledges it at once; the changes, applied to
the previous text as the server would (UTF-8 byte columns, never clamped), must give the
buffer's protocol text after every command: lines joined with "\\n", plus "\\n" with 'eol'.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.neovim.conftest import wait_for

pytestmark = pytest.mark.timeout(60)

FAKE = """
local sync = require('codesphere.sync')
_G.sent = {}
local rev = 0
local conn = {
  request = function(method, params, cb)
    table.insert(_G.sent, params)
    rev = rev + 1
    vim.schedule(function() cb(nil, {revision = rev, catchUp = {}}) end)
    return true
  end,
  notify = function() return true end,
}
_G.doc = sync.new({buf = vim.api.nvim_get_current_buf(), path = 'x', conn = conn})
_G.doc:load(..., 0, 0)
"""


def apply(text: str, change: dict[str, Any]) -> str:
    if "range" not in change:
        return str(change["text"])
    data = text.encode()
    lines = data.split(b"\n")

    def offset(p: dict[str, int]) -> int:
        assert p["line"] < len(lines), (p, text)
        assert p["character"] <= len(lines[p["line"]]), (p, text)
        start = sum(len(line) + 1 for line in lines[: p["line"]])
        return start + p["character"]

    s, e = offset(change["range"]["start"]), offset(change["range"]["end"])
    assert s <= e
    return (data[:s] + change["text"].encode() + data[e:]).decode()  # fails inside a character


KEYS = [
    "ggJ",
    "Gonew<Esc>",
    "ggdd",
    "Gdd",
    "ix<Esc>",
    ":set noeol nofixeol<CR>",
    "Goz<Esc>",
    "Gdd",
    "ggdG",
    "ihi<CR>there<Esc>",
    "yyp",
    "ggVGd",
    "o中<CR>😀<Esc>",
    ":%s/中/x/<CR>",
    "ggJx",
    ":1,$d<CR>",
    "i  indent<Esc>0>>",
    "u",
    "<C-r>",
    ":set eol<CR>",
    "ia😀b<Esc>hx",
    "Go<Esc>",
    ":set fixeol<CR>",
    "GddGdd",
    "i😀😀<Esc>hr中",
    "yy3p",
    "ggJJ",
    "ggvjd",
    ":set noeol nofixeol<CR>",
    "GA end<Esc>",
    "Gdd",
    "ggdG",
    "ie\u0301👩\u200d👩\u200d👧<Esc>",
    "hhx",
    # An empty line put after the last line of a 'noeol' buffer: Neovim (0.7 to 0.11) reports
    # no on_bytes for it, only on_lines.
    ":set noeol nofixeol<CR>",
    "Go<Esc>dd",
    "p",
    "p",
]


@pytest.mark.parametrize("initial", ["a\nb\nc\n", "a\nb", "", "😀\n中文\n"])
def test_every_command_is_sent_exactly(make_nvim: Any, initial: str) -> None:
    nvim = make_nvim()
    nvim.exec_lua(FAKE, initial)
    text = nvim.exec_lua("return _G.doc:text()")
    assert text == initial
    for keys in KEYS:
        # Typed keys, executed before feedkeys returns ("x"); the sending is scheduled after.
        nvim.feedkeys(nvim.replace_termcodes(keys, True, True, True), "xt", False)
        wait_for(lambda: nvim.exec_lua("return _G.doc:pending()") == 0, what=keys)
        for params in nvim.exec_lua("local s = _G.sent; _G.sent = {}; return s"):
            for change in params["contentChanges"]:
                text = apply(text, change)
        assert nvim.exec_lua("return _G.doc:text()") == text, keys
