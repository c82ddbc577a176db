"""The README's Neovim walk-through: a Neovim user and a browser user in the same file.

An owner (a Python client) makes the room and an editor invite. Neovim joins with
``:CodeSphereJoin <invite link>``, a guest opens the same kind of link in headless Chromium, and
both type at once, with emoji, CJK and combining marks. Everyone ends with the server's text;
each sees the other's cursor; chat goes from the page to Neovim and back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Playwright, async_playwright

from codesphere.app.server import RunningServer
from codesphere.app.webapp import web_dir
from codesphere.client import CodeSphereClient
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Pages, editor_text
from tests.neovim.conftest import Loop, t, wait_for
from tests.neovim.helpers import buffer_text, open_file, settled, status
from tests.tokens import TOKENS

pytestmark = pytest.mark.timeout(150)

START = "def greet(name):\n    return name\n"


class Browsers:
    """Headless Chromium with the browser tests' :class:`Pages`, run on the test loop's thread."""

    def __init__(self) -> None:
        self.playwright: Playwright | None = None
        self.pages: Pages | None = None

    async def start(self) -> None:
        self.playwright = await async_playwright().start()
        browser = await self.playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        self.pages = Pages(browser)

    async def stop(self) -> None:
        if self.pages is not None:
            await self.pages.close()
            await self.pages.browser.close()
        if self.playwright is not None:
            await self.playwright.stop()

    async def open(self, link: str, name: str) -> Page:
        assert self.pages is not None
        return await self.pages.open(link, name)


@pytest.fixture
def browsers(aloop: Loop) -> Iterator[Browsers]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: 'make test' installs Debian's chromium")
    if not (web_dir() / "index.html").is_file():
        pytest.fail("the browser client is not built: run 'make test' (or npm run build in web/)")
    running = Browsers()
    aloop.run(running.start(), timeout=60)
    try:
        yield running
    finally:
        with contextlib.suppress(Exception):
            aloop.run(running.stop(), timeout=30)


def test_a_neovim_user_and_a_browser_user_edit_one_file_together(
    aloop: Loop, server: RunningServer, make_nvim: Any, browsers: Browsers
) -> None:
    async def owner_and_invites() -> tuple[CodeSphereClient, str, str]:
        owner = await CodeSphereClient.connect(
            server.url, name="Olga", token=TOKENS.mint_user("olga")
        )
        room = await owner.create_room("pairing", [{"path": "greet.py", "text": START}])
        await owner.join(room)
        links = []
        for _ in range(2):
            invite = await owner.request("invite/create", {"role": "editor"})
            links.append(f"{server.http_url}/#token={invite['token']}&room={room}")
        return owner, links[0], links[1]

    owner, nvim_link, page_link = aloop.run(owner_and_invites())

    # Neovim, as the README says: join with the link, open the file.
    nvim = make_nvim("Ada")
    nvim.command(f"CodeSphereJoin {nvim_link}")
    wait_for(lambda: status(nvim)["state"] == "joined", what="Neovim to join")
    buf = open_file(nvim, "greet.py")
    assert buffer_text(nvim, buf) == START

    # The guest in the browser opens the same file.
    page = aloop.run(browsers.open(page_link, "Bea"), timeout=60)

    async def page_opens() -> None:
        await page.locator('[data-testid="file-item"][data-path="greet.py"]').click()
        await page.locator(
            '[data-testid="tab"][data-path="greet.py"][aria-selected="true"]'
        ).wait_for()

    aloop.run(page_opens(), timeout=30)
    wait_for(lambda: aloop.run(editor_text(page, "greet.py")) == START, what="the page's text")

    # Both type at once: Neovim on the first line, the page at the end.
    async def page_types(text: str) -> None:
        await page.get_by_test_id("editor").click()
        await page.keyboard.press("Control+End")
        await page.keyboard.type(text, delay=15)

    typing = asyncio.run_coroutine_threadsafe(
        page_types("print(greet('Bea 中文 e\u0301'))\n"), aloop.loop
    )
    nvim.input("ggA  # Ada 😀 naïve 中<Esc>")
    nvim.input("jA  # 🇫🇷 ok<Esc>")
    typing.result(t(60))

    def converged() -> bool:
        if not settled(nvim, "greet.py"):
            return False
        server_text = aloop.run(owner.request("textDocument/didOpen", {"path": "greet.py"}))
        return (
            buffer_text(nvim, buf) == server_text["text"]
            and aloop.run(editor_text(page, "greet.py")) == server_text["text"]
        )

    wait_for(converged, timeout=30, what="Neovim, the page and the server to agree")
    final = buffer_text(nvim, buf)
    assert final.startswith("def greet(name):  # Ada 😀 naïve 中\n    return name  # 🇫🇷 ok\n")
    assert "print(greet('Bea 中文 e\u0301'))\n" in final

    # Each sees the other's cursor: the page labels Ada's; Neovim draws Bea's with her name.
    ada_id = status(nvim)["you"]["memberId"]
    label = page.locator(f'[data-testid="remote-cursor-label"][data-member-id="{ada_id}"]')
    nvim.input("gg0")
    aloop.run(label.wait_for(timeout=t(15) * 1000), timeout=30)
    assert "Ada" in (aloop.run(label.text_content()) or "")

    def bea_label() -> bool:
        texts = nvim.exec_lua(
            """
            local buf, out = ..., {}
            for name, ns in pairs(vim.api.nvim_get_namespaces()) do
              if name:match('^codesphere_presence_') then
                local found = vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {details = true})
                for _, m in ipairs(found) do
                  if m[4].virt_text then out[#out + 1] = m[4].virt_text[1][1] end
                end
              end
            end
            return out
            """,
            buf,
        )
        return any("Bea" in text for text in texts)

    aloop.run(page.keyboard.press("ArrowUp"), timeout=10)
    wait_for(bea_label, what="Bea's cursor in Neovim")

    # Chat: from the page to Neovim's chat window, and back.
    async def page_says(text: str) -> None:
        await page.get_by_test_id("chat-input").fill(text)
        await page.get_by_test_id("chat-send").click()

    aloop.run(page_says("salut 👋"), timeout=10)
    nvim.command("CodeSphereChat")
    pattern = re.compile(r"^\d\d:\d\d Bea: salut 👋$")
    wait_for(
        lambda: any(
            pattern.match(line)
            for line in nvim.exec_lua("return require('codesphere.chat').lines()")
        ),
        what="the page's message in Neovim",
    )
    nvim.command("CodeSphereChat à bientôt")
    messages = page.get_by_test_id("chat-messages")
    wait_for(
        lambda: "à bientôt" in (aloop.run(messages.text_content()) or ""),
        what="Neovim's message on the page",
    )
    aloop.run(owner.close())
