"""Real headless Chromium (Debian's) driven by Playwright, against a real server on loopback.

``playwright install`` cannot download browsers here, so Playwright is pointed at
``/usr/bin/chromium`` (``CODESPHERE_CHROMIUM`` overrides it). The page is the built client in
``web/dist``: ``make test`` builds it before running these tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from tests.conftest import timeout
from tests.tokens import TEST_SECRET

from codesphere.app.server import RunningServer, start_server
from codesphere.app.webapp import web_dir

CHROMIUM = os.environ.get("CODESPHERE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A loopback port nothing listens on now (the server must come back on the same one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """A server on a fixed loopback port that a test can stop and start again."""

    data_dir: Path
    port: int
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> RunningServer:
        self.server = await start_server("127.0.0.1", self.port, self.data_dir, secret=TEST_SECRET)
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    if not (web_dir() / "index.html").is_file():
        pytest.fail("the browser client is not built: run 'make test' (or npm run build in web/)")
    running = Site(tmp_path / "data", free_port())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: 'make test' installs Debian's chromium")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Pages:
    """Pages opened in fresh browser contexts (each its own storage, like another person)."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def open(self, link: str, name: str | None = None) -> Page:
        """Open ``link``; answer the name dialog with ``name``; wait until the room is joined."""
        context = await self.browser.new_context(viewport={"width": 1400, "height": 860})
        self.contexts.append(context)
        page = await context.new_page()
        page.on("dialog", self._on_dialog)
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        await page.goto(link)
        if name is not None:
            await page.get_by_test_id("name-input").fill(name)
            await page.get_by_test_id("name-submit").click()
        await page.wait_for_function("window.codesphere !== undefined", timeout=timeout(20) * 1000)
        await page.evaluate("window.codesphere.ready")
        return page

    async def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    opened = Pages(browser)
    try:
        yield opened
    finally:
        await opened.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], wait: float = 20, what: str = "the condition"
) -> None:
    """Poll ``check`` until it is true, failing after ``wait`` (scaled) seconds."""
    try:
        async with asyncio.timeout(timeout(wait)):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def editor_text(page: Page, path: str | None = None) -> str | None:
    """The text of the page's Monaco model for ``path`` (default: the active file)."""
    value: str | None = await page.evaluate("(p) => window.codesphere.text(p ?? undefined)", path)
    return value
