"""The browser client in real Chromium: typing together, presence, chat, viewers, reconnects."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.async_api import Page
from tests.browser.conftest import Pages, Site, editor_text, eventually
from tests.conftest import timeout
from tests.tokens import TOKENS

from codesphere.client import CodeSphereClient

REPO = Path(__file__).resolve().parents[2]
START = "# shared\n"


async def owner_room(
    site: Site, files: dict[str, str] | None = None
) -> tuple[CodeSphereClient, str]:
    """The room's owner as a Python client (user 'olga'), joined."""
    owner = await CodeSphereClient.connect(site.ws_url, name="Olga", token=TOKENS.mint_user("olga"))
    files = files if files is not None else {"shared.txt": START}
    room = await owner.create_room(
        "Pairing", files=[{"path": p, "text": t} for p, t in files.items()]
    )
    await owner.join(room)
    return owner, room


async def invite_link(site: Site, owner: CodeSphereClient, role: str) -> str:
    invite: dict[str, Any] = await owner.request("invite/create", {"role": role})
    return f"{site.url}/#token={invite['token']}&room={owner.room['id'] if owner.room else ''}"


async def open_file(page: Page, path: str) -> None:
    await page.locator(f'[data-testid="file-item"][data-path="{path}"]').click()
    await page.locator(f'[data-testid="tab"][data-path="{path}"][aria-selected="true"]').wait_for()
    await eventually(lambda: _has_text(page, path), what=f"{path} to load")


async def _has_text(page: Page, path: str) -> bool:
    return await editor_text(page, path) is not None


async def type_into(page: Page, text: str, at_end: bool = True) -> None:
    editor = page.get_by_test_id("editor")
    await editor.click()
    if at_end:
        await page.keyboard.press("Control+End")
    await page.keyboard.type(text, delay=5)


def is_subsequence(needle: str, haystack: str) -> bool:
    rest = iter(haystack)
    return all(ch in rest for ch in needle)


async def server_text(owner: CodeSphereClient, path: str) -> str:
    """The server's text, read by opening the document afresh."""
    reply: dict[str, Any] = await owner.request("textDocument/didOpen", {"path": path})
    return str(reply["text"])


# -- typing together ---------------------------------------------------------------------------


async def test_two_pages_and_a_python_client_type_at_once_and_converge(
    site: Site, pages: Pages
) -> None:
    owner, _ = await owner_room(site)
    ada = await pages.open(await invite_link(site, owner, "editor"), "Ada")
    ben = await pages.open(await invite_link(site, owner, "editor"), "Ben")
    for page in (ada, ben):
        await open_file(page, "shared.txt")
    doc = await owner.open("shared.txt")
    rng = random.Random(4)
    ada_types = "Ada says 😀 hello\n中文 line 2\nmore ✓ text\n"
    ben_types = "Ben: 👩‍👩‍👧 family\nλ and e\u0301\n"
    inserted: list[str] = []

    async def python_types() -> None:
        for _ in range(40):
            piece = rng.choice(["py", "é", "🙂", "\n", "字"])
            inserted.append(piece)
            await doc.insert(rng.randint(0, len(doc.text)), piece)
            await asyncio.sleep(0.02)

    await asyncio.gather(type_into(ada, ada_types), type_into(ben, ben_types), python_types())
    await doc.settled(timeout(20))

    async def converged() -> bool:
        truth = await server_text(owner, "shared.txt")
        texts = [await editor_text(ada, "shared.txt"), await editor_text(ben, "shared.txt")]
        return all(t == truth for t in texts) and doc.text == truth

    await eventually(converged, 30, "the pages, the Python client and the server to agree")
    final = await server_text(owner, "shared.txt")

    # Nobody deleted anything: every character typed anywhere is there exactly once, and each
    # typist's own text keeps its order (others' keystrokes may land in between). Spaces are
    # left out: Monaco indents a new line like the one above, which others' edits change.
    def typed(text: str) -> str:
        return text.replace(" ", "")

    expected = START + ada_types + ben_types + "".join(inserted)
    assert Counter(typed(final)) == Counter(typed(expected))
    assert is_subsequence(typed(ada_types), typed(final))
    assert is_subsequence(typed(ben_types), typed(final))
    # The page runs within its Content-Security-Policy: nothing it needs was refused.
    assert not [e for e in pages.console_errors if "Content Security Policy" in e]
    assert pages.dialogs == []
    await owner.close()


# -- presence ----------------------------------------------------------------------------------


async def test_each_page_shows_the_others_cursor_and_the_member_list_follows(
    site: Site, pages: Pages
) -> None:
    owner, _ = await owner_room(site)
    ada = await pages.open(await invite_link(site, owner, "editor"), "Ada")
    ben = await pages.open(await invite_link(site, owner, "editor"), "Ben")
    ada_id = await ada.evaluate("window.codesphere.client.me.memberId")
    ben_id = await ben.evaluate("window.codesphere.client.me.memberId")
    for page in (ada, ben):
        await open_file(page, "shared.txt")
    await type_into(ada, "x")
    await type_into(ben, "y")
    label_of_ada = ben.locator(f'[data-testid="remote-cursor-label"][data-member-id="{ada_id}"]')
    label_of_ben = ada.locator(f'[data-testid="remote-cursor-label"][data-member-id="{ben_id}"]')
    await label_of_ada.wait_for(timeout=timeout(15) * 1000)
    await label_of_ben.wait_for(timeout=timeout(15) * 1000)
    assert "Ada" in await label_of_ada.text_content() or ""
    assert "Ben" in (await label_of_ben.text_content() or "")

    member_of_ben = ada.locator(f'[data-testid="member-item"][data-member-id="{ben_id}"]')
    await member_of_ben.wait_for()
    assert "Ben" in (await member_of_ben.text_content() or "")
    # Ben closes his tab, as a user would, then his browser. (Closing the context alone has now
    # and then left Ada waiting more than 15 s for his departure; the cause is not known yet.)
    await ben.close()
    await ben.context.close()

    async def ben_gone() -> bool:
        if await member_of_ben.count() == 0:
            return True
        return await member_of_ben.get_attribute("data-online") == "false"

    await eventually(ben_gone, 30, "Ben to leave Ada's member list")
    await owner.close()


# -- chat --------------------------------------------------------------------------------------


async def test_chat_round_trip_with_a_python_client_and_history_after_reload(
    site: Site, pages: Pages
) -> None:
    owner, _ = await owner_room(site)
    link = await invite_link(site, owner, "editor")
    ada = await pages.open(link, "Ada")
    await ada.get_by_test_id("chat-input").fill("hello from the page 👋")
    await ada.get_by_test_id("chat-send").click()
    received = await owner.next_notification("chat/message", timeout=timeout(10))
    assert received["message"]["text"] == "hello from the page 👋"
    assert received["message"]["name"] == "Ada"
    await owner.send_chat("hi page, from Python")
    messages = ada.get_by_test_id("chat-message")
    await ada.get_by_test_id("chat-text").filter(has_text="hi page, from Python").wait_for()
    first = messages.filter(has_text="hello from the page")
    assert "Ada" in (await first.get_by_test_id("chat-name").text_content() or "")
    assert (await first.get_by_test_id("chat-time").text_content() or "").strip()

    await ada.reload()
    await ada.wait_for_function("window.codesphere !== undefined")
    await ada.evaluate("window.codesphere.ready")
    texts = ada.get_by_test_id("chat-text")
    await texts.filter(has_text="hi page, from Python").wait_for()
    assert [t.strip() for t in await texts.all_text_contents()] == [
        "hello from the page 👋",
        "hi page, from Python",
    ]
    await owner.close()


# -- viewers -----------------------------------------------------------------------------------


async def test_a_viewer_page_cannot_change_the_document(site: Site, pages: Pages) -> None:
    owner, _ = await owner_room(site)
    vic = await pages.open(await invite_link(site, owner, "viewer"), "Vic")
    badge = vic.get_by_test_id("role-badge")
    assert "read-only" in (await badge.text_content() or "")
    await open_file(vic, "shared.txt")
    await type_into(vic, "viewer was here")
    await vic.keyboard.press("Backspace")
    await asyncio.sleep(0.5)
    assert await editor_text(vic, "shared.txt") == START
    assert await server_text(owner, "shared.txt") == START
    # Nothing a viewer may not do is offered.
    for control in ("new-file", "rename-file", "delete-file"):
        button = vic.get_by_test_id(control)
        offered = await button.count() > 0 and await button.is_visible()
        assert not offered or not await button.is_enabled(), control
    await owner.close()


# -- reconnecting ------------------------------------------------------------------------------


async def test_edits_made_while_the_server_is_down_arrive_after_it_returns(
    site: Site, pages: Pages
) -> None:
    owner, room = await owner_room(site)
    link = await invite_link(site, owner, "editor")
    await owner.close()
    ada = await pages.open(link, "Ada")
    await open_file(ada, "shared.txt")
    await type_into(ada, "before the cut\n")
    await site.stop()
    state = ada.get_by_test_id("connection-state")
    await eventually(lambda: _state_is(state, "offline", "connecting"), 15, "the page to notice")
    await type_into(ada, "typed while offline ✈\n")
    await site.start()
    await eventually(lambda: _state_is(state, "online"), 30, "the page to reconnect")
    owner = await CodeSphereClient.connect(site.ws_url, name="Olga", token=TOKENS.mint_user("olga"))
    await owner.join(room)

    async def arrived() -> bool:
        return (
            await server_text(owner, "shared.txt")
            == START + "before the cut\ntyped while offline ✈\n"
        )

    await eventually(arrived, 30, "the offline edits to reach the server")
    assert await editor_text(ada, "shared.txt") == await server_text(owner, "shared.txt")
    await owner.close()


async def _state_is(locator: Any, *states: str) -> bool:
    return (await locator.text_content() or "").strip() in states


# -- screenshot for the README -----------------------------------------------------------------


async def test_screenshot_of_a_room_with_two_members(
    site: Site, pages: Pages, tmp_path: Path
) -> None:
    """docs/screenshot.png when CODESPHERE_UPDATE_SCREENSHOT=1, else a temporary file."""
    code = 'def greet(name):\n    return f"Hello, {name}!"\n\nprint(greet("CodeSphere"))\n'
    owner, _ = await owner_room(site, {"main.py": code, "README.md": "# Pairing\n"})
    ada = await pages.open(await invite_link(site, owner, "editor"), "Ada")
    ben = await pages.open(await invite_link(site, owner, "editor"), "Ben")
    for page in (ada, ben):
        await open_file(page, "main.py")
    await type_into(ben, "# Ben was here\n")
    await ben.get_by_test_id("chat-input").fill("Looks good to me!")
    await ben.get_by_test_id("chat-send").click()
    await ada.get_by_test_id("chat-text").filter(has_text="Looks good").wait_for()
    ben_id = await ben.evaluate("window.codesphere.client.me.memberId")
    await ada.locator(f'[data-testid="remote-cursor-label"][data-member-id="{ben_id}"]').wait_for()
    update = os.environ.get("CODESPHERE_UPDATE_SCREENSHOT") == "1"
    target = REPO / "docs" / "screenshot.png" if update else tmp_path / "screenshot.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    await ada.screenshot(path=str(target))
    assert target.stat().st_size > 20_000
    await owner.close()


# -- the owner's invite panel, and follow mode --------------------------------------------------


async def test_the_owner_invites_from_the_page_and_the_guest_joins_with_that_role(
    site: Site, pages: Pages
) -> None:
    owner, room = await owner_room(site)
    olga = await pages.open(f"{site.url}/#token={TOKENS.mint_user('olga')}&room={room}", "Olga")
    assert "owner" in (await olga.get_by_test_id("role-badge").text_content() or "")
    await olga.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await olga.get_by_test_id("create-invite-viewer").click()
    link = olga.locator('[data-testid="invite-link"][data-role="viewer"]').first
    await link.wait_for()
    url = (await link.text_content() or "").strip()
    assert url.startswith(f"{site.url}/#token=")
    await olga.locator('[data-testid="copy-invite"][data-role="viewer"]').first.click()
    assert await olga.evaluate("navigator.clipboard.readText()") == url
    guest = await pages.open(url, "Gus")
    assert "viewer" in (await guest.get_by_test_id("role-badge").text_content() or "")
    assert await guest.evaluate("window.codesphere.client.room.id") == room
    await owner.close()


async def test_following_a_member_goes_where_they_go_and_stops_on_typing(
    site: Site, pages: Pages
) -> None:
    owner, _ = await owner_room(site, {"one.txt": "first file\n", "two.txt": "second\nfile\n"})
    ada = await pages.open(await invite_link(site, owner, "editor"), "Ada")
    ben = await pages.open(await invite_link(site, owner, "editor"), "Ben")
    ben_id = await ben.evaluate("window.codesphere.client.me.memberId")
    await open_file(ada, "one.txt")
    await open_file(ben, "one.txt")
    await ada.locator(f'[data-testid="member-item"][data-member-id="{ben_id}"]').click()
    follow = ada.get_by_test_id("follow-state")
    await eventually(lambda: _contains(follow, "following Ben"), 10, "Ada to follow Ben")
    # Ben goes to the other file and moves there: Ada's editor goes with him.
    await open_file(ben, "two.txt")
    await type_into(ben, "")
    active = ada.locator('[data-testid="tab"][aria-selected="true"]')
    await eventually(lambda: _attr_is(active, "data-path", "two.txt"), 15, "Ada to follow")
    # Ada types: following stops, and she stays where she is when Ben moves on.
    await type_into(ada, "mine")
    await eventually(lambda: _not_contains(follow, "following"), 10, "following to stop")
    await open_file(ben, "one.txt")
    await type_into(ben, "")
    await asyncio.sleep(1)
    assert await active.get_attribute("data-path") == "two.txt"
    await owner.close()


async def _contains(locator: Any, text: str) -> bool:
    return text in (await locator.text_content() or "") and await locator.is_visible()


async def _not_contains(locator: Any, text: str) -> bool:
    return not await locator.is_visible() or text not in (await locator.text_content() or "")


async def _attr_is(locator: Any, name: str, value: str) -> bool:
    return await locator.count() > 0 and await locator.get_attribute(name) == value


async def test_remote_edits_do_not_move_the_local_cursor_wrongly(site: Site, pages: Pages) -> None:
    """Text inserted before the cursor pushes it along; text after it leaves it be."""
    owner, _ = await owner_room(site, {"main.py": "alpha\nbeta gamma\n"})
    ada = await pages.open(await invite_link(site, owner, "editor"), "Ada")
    await open_file(ada, "main.py")
    assert await ada.evaluate("window.codesphere.editor.getModel().getLanguageId()") == "python"
    await ada.evaluate(
        "window.codesphere.editor.focus(),"
        " window.codesphere.editor.setPosition({lineNumber: 2, column: 5})"
    )
    doc = await owner.open("main.py")
    await doc.insert(len("alpha\nbe"), "😀😀")  # before the cursor, on its line
    await doc.insert(0, "# top\n")  # a line above
    await doc.insert(len(doc.text), "tail\n")  # after the cursor
    await doc.settled(timeout(10))
    await eventually(
        lambda: _text_is(ada, "main.py", doc.text), 15, "the remote edits to reach the page"
    )
    position = await ada.evaluate("window.codesphere.editor.getPosition()")
    # Line 2 became 3; column 5 ("beta" + 1) moved past the two emoji (4 UTF-16 units).
    assert (position["lineNumber"], position["column"]) == (3, 9)
    await ada.keyboard.type("X")
    await eventually(
        lambda: _server_has(owner, "# top\nalpha\nbe😀😀taX gamma\ntail\n"), 15, "the edit"
    )
    await owner.close()


async def _text_is(page: Page, path: str, text: str) -> bool:
    return await editor_text(page, path) == text


async def _server_has(owner: CodeSphereClient, text: str) -> bool:
    return await server_text(owner, "main.py") == text
