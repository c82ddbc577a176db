"""Two Neovims and a Python client typing into one file at once end identical to the server."""

from __future__ import annotations

from typing import Any

import pytest

from codesphere.app.server import RunningServer
from tests.neovim.conftest import Loop, wait_for
from tests.neovim.helpers import ada_editing, buffer_text, join, open_file, settled
from tests.tokens import operator_token

pytestmark = pytest.mark.timeout(120)

#: Combining acute accent, CJK, an emoji with a skin tone, a ZWJ family, a flag.
PIECES = ("e\u0301", "中文", "👍🏽", "👩\u200d👩\u200d👧", "🇯🇵")


def test_two_neovims_and_a_python_client_type_at_once(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    _, room_id, doc = room
    ada, bob = make_nvim("Ada"), make_nvim("Bob")
    bufs = {}
    for nvim, name in ((ada, "ada"), (bob, "bob")):
        assert join(nvim, server, operator_token(name), room_id)["state"] == "joined"
        bufs[name] = open_file(nvim, "a.txt")
    ada.input("ggA")  # Ada types at the end of the first line
    bob.input("GO")  # Bob on a new last line
    for i in range(24):
        piece = PIECES[i % len(PIECES)]
        ada.input(f"a{i}{piece} ")
        bob.input(f"b{i}{piece} ")
        if i % 4 == 0:
            aloop.run(doc.insert(0, f"[p{i}{piece}]"))
    ada.input("<Esc>")
    bob.input("<Esc>")

    def converged() -> bool:
        return (
            settled(ada, "a.txt")
            and settled(bob, "a.txt")
            and doc.is_settled
            and buffer_text(ada, bufs["ada"]) == doc.text == buffer_text(bob, bufs["bob"])
        )

    wait_for(converged, timeout=40, what="both Neovims and the Python client to agree")
    text = doc.text
    assert aloop.run(doc.checksum())  # the Python client's text is the server's
    typed_by_ada = "".join(f"a{i}{PIECES[i % len(PIECES)]} " for i in range(24))
    typed_by_bob = "".join(f"b{i}{PIECES[i % len(PIECES)]} " for i in range(24))
    assert typed_by_ada in text.splitlines()[0]
    assert typed_by_bob in text
    assert all(f"[p{i}{PIECES[i % len(PIECES)]}]" in text for i in range(0, 24, 4))
    assert text.count("a0") == 1 and text.count("b23") == 1  # nothing applied twice


def test_a_big_paste_and_a_substitution_on_every_line_reach_the_server(
    aloop: Loop, server: RunningServer, room: Any, make_nvim: Any
) -> None:
    _, room_id, doc = room
    nvim, buf = ada_editing(make_nvim, server, room_id)
    lines = [f"line {i} x 中文 😀 e\u0301 x" for i in range(4000)]  # about 160 kB
    nvim.exec_lua("vim.fn.setreg('a', ..., 'l')", lines)
    nvim.input('G"ap')
    wait_for(lambda: settled(nvim, "a.txt") and doc.text == buffer_text(nvim, buf), what="paste")
    assert doc.text == "héllo\nwörld\n" + "\n".join(lines) + "\n"
    nvim.command("%s/x/y/g")
    aloop.run(doc.insert(0, "👋 "))  # someone types meanwhile
    wait_for(
        lambda: settled(nvim, "a.txt") and doc.is_settled and doc.text == buffer_text(nvim, buf),
        timeout=30,
        what="the substitution",
    )
    expected = [line.replace("x", "y") for line in lines]
    assert doc.text == "👋 héllo\nwörld\n" + "\n".join(expected) + "\n"
