"""Hostile display names, chat messages and file names are shown as text and never run.

Every payload, if it ever ran, would open a dialog, set ``window.__pwned`` or add an element the
page never makes; the test fails on any of the three.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.browser.conftest import Pages, Site, eventually
from tests.browser.test_web_client import invite_link, owner_room
from tests.tokens import TOKENS

from codesphere.client import CodeSphereClient

RUN = "window.__pwned=1"

#: Ways to get markup or script into a page, each carrying ``RUN``.
TEMPLATES = [
    "<script>{run}</script>",
    "<img src=x onerror={run}>",
    '<img src=x onerror="{run}">',
    "<svg onload={run}>",
    "<svg><script>{run}</script></svg>",
    '"><script>{run}</script>',
    "'><img src=x onerror={run}>",
    '<iframe srcdoc="<script>parent.{run}</script>"></iframe>',
    '<iframe src="javascript:parent.{run}"></iframe>',
    '<a href="javascript:{run}">x</a>',
    "<body onload={run}>",
    "<details open ontoggle={run}>",
    "<video><source onerror={run}></video>",
    "<audio src=x onerror={run}>",
    "<input autofocus onfocus={run}>",
    "<marquee onstart={run}>",
    '<object data="javascript:{run}"></object>',
    '<embed src="javascript:{run}">',
    '<math><mi xlink:href="javascript:{run}">x</mi></math>',
    "<style>@import 'javascript:{run}';</style>",
    '<link rel=import href="data:text/html,<script>{run}</script>">',
    '<meta http-equiv=refresh content="0;url=javascript:{run}">',
    "<form><button formaction=javascript:{run}>x</button></form>",
    '<img src="x" onerror="&#119;indow.__pwned=1">',
    "<scr<script>ipt>{run}</scr</script>ipt>",
    "<ScRiPt>{run}</sCrIpT>",
    "<img/src=x/onerror={run}>",
    "<svg/onload={run}>",
    '" onmouseover="{run}',
    "' onfocus='{run}' autofocus='",
    "javascript:{run}",
    "${{{run}}}",
    "{{{{constructor.constructor('{run}')()}}}}",
    "<template><img src=x onerror={run}></template>",
    '<noscript><p title="</noscript><img src=x onerror={run}>">',
    '<div style="background:url(javascript:{run})">',
    "</textarea><script>{run}</script>",
    "</title><script>{run}</script>",
    "<!--<img src=x onerror={run}>-->",
    "<x onclick={run}>click</x>",
]

DECORATIONS = ["", "😀 ", "中文", "\u202e"]


def payloads() -> list[str]:
    """At least 100 distinct payloads: each template, plain and decorated."""
    out = []
    for template, decoration in itertools.product(TEMPLATES, DECORATIONS):
        out.append(decoration + template.format(run=RUN))
    return out


PAYLOADS = payloads()


def short(payload: str, limit: int) -> str:
    """A payload that fits a field of ``limit`` characters, still carrying its markup."""
    return payload if len(payload) <= limit else payload[:limit]


def as_path(payload: str, index: int) -> str:
    """A workspace path made of the payload (paths refuse backslashes and leading '/')."""
    cleaned = payload.replace("\\", "").lstrip("/").replace("/../", "/").replace("//", "/")
    segments = [s for s in cleaned.split("/") if s not in ("", ".", "..")]
    return f"x{index}/" + "/".join(segments)[:200] if segments else f"x{index}"


async def test_hostile_names_messages_and_file_names_never_run(site: Site, pages: Pages) -> None:
    assert len(set(PAYLOADS)) >= 100
    owner, _ = await owner_room(site)
    link = await invite_link(site, owner, "editor")
    ada = await pages.open(link, "Ada")
    baseline: dict[str, int] = await ada.evaluate(COUNT_ELEMENTS)

    # Display names: guests join with them (and stay, so the member list shows them all).
    guests = []
    for i, payload in enumerate(PAYLOADS[:40]):
        guest = await CodeSphereClient.connect(
            site.ws_url, name=short(payload, 64), token=TOKENS.mint_user(f"guest{i}", admin=True)
        )
        await guest.join(owner.room["id"] if owner.room else None)
        guests.append(guest)
    # Chat messages and file names from the owner.
    for payload in PAYLOADS:
        await owner.send_chat(payload)
    paths = [as_path(p, i) for i, p in enumerate(PAYLOADS[::3])]
    for path in paths:
        await owner.create_file(path, "")

    items = ada.get_by_test_id("member-item")
    await eventually(lambda: _at_least(items, 41), 30, "every guest in the member list")
    messages = ada.get_by_test_id("chat-text")
    await eventually(lambda: _at_least(messages, len(PAYLOADS)), 30, "every chat message")
    files = ada.get_by_test_id("file-item")
    await eventually(lambda: _at_least(files, len(paths)), 30, "every file in the tree")

    shown = await messages.all_text_contents()
    for payload in PAYLOADS[:10]:
        assert any(payload in text for text in shown), payload  # shown verbatim, as text
    # Open a hostile file, rename one, hover and click around the member list.
    await files.nth(len(paths) - 1).click()
    await items.nth(5).click()
    await ada.mouse.move(300, 300)

    assert pages.dialogs == []
    assert await ada.evaluate("window.__pwned") is None
    after: dict[str, int] = await ada.evaluate(COUNT_ELEMENTS)
    for tag, count in after.items():
        assert count <= baseline.get(tag, 0), (tag, baseline.get(tag, 0), count)
    for guest in guests:
        await guest.close()
    await owner.close()


async def _at_least(locator: Any, n: int) -> bool:
    return bool(await locator.count() >= n)


#: Elements a payload would add; counted outside Monaco, whose own markup is its business.
COUNT_ELEMENTS = """() => {
  const outside = (el) => !el.closest('.monaco-editor') && !el.closest('.monaco-aria-container');
  const count = (sel) => [...document.querySelectorAll(sel)].filter(outside).length;
  const tags = ['script', 'img', 'svg', 'iframe', 'object', 'embed', 'video', 'audio', 'details',
                'marquee', 'math', 'form', 'meta', 'link', 'template', 'noscript', 'x', 'body',
                'input', 'a[href^="javascript"]', '[onerror]', '[onload]', '[onclick]',
                '[onmouseover]', '[onfocus]', '[ontoggle]', '[onstart]'];
  const found = Object.fromEntries(tags.map((t) => [t, count(t)]));
  // The page and Monaco add style sheets as they go (member colours); none may be a payload's.
  found['style with a payload'] = [...document.querySelectorAll('style')]
    .filter((s) => s.textContent.includes('__pwned') || s.textContent.includes('javascript:'))
    .length;
  return found;
}"""


def test_payload_list_is_varied() -> None:
    """More than a hundred payloads over forty distinct ways in."""
    assert len(PAYLOADS) >= 160 and len(TEMPLATES) >= 40
    assert all(RUN in p or "&#119;indow" in p for p in PAYLOADS)
