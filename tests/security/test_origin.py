"""Cross-site WebSocket hijacking: which upgrades the Origin check lets through.

A browser always sends ``Origin`` on a WebSocket upgrade, and with it ``Sec-Fetch-*`` headers
and any cookies; editors and scripts send none of these. protocol.md §4.1: a browser's upgrade
is refused with 403 unless its Origin is the server's own or one the operator allowed, and a
missing or ``null`` Origin from a browser is refused too. Origins compare without a trailing
slash and without regard to case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codesphere.app.server import RunningServer, start_server
from tests.security.support import refused_upgrade, server_still_serves, upgrade_status
from tests.tokens import TEST_SECRET

ALLOWED = ["https://app.example.com", "HTTPS://Editor.Example.org:8443/"]

BROWSER_HEADERS = {
    "Sec-Fetch-Mode": "websocket",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Dest": "empty",
}


@pytest.fixture
async def configured(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server whose operator allowed two other origins (one spelt carelessly)."""
    running = await start_server(
        "127.0.0.1", 0, tmp_path / "configured", secret=TEST_SECRET, allowed_origins=ALLOWED
    )
    try:
        yield running
    finally:
        await running.close()


def own_origin(server: RunningServer) -> str:
    return server.http_url  # http://127.0.0.1:PORT


async def check_refused(server: RunningServer, headers: dict[str, str]) -> None:
    """403 before any upgrade, and the server serves the next client."""
    status, body = await refused_upgrade(server.url, headers)
    assert status == 403, (headers, status, body)
    await server_still_serves(server.url)


# -- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://evil.example",
        "http://localhost",  # the same machine, another origin
        "https://app.example.com",  # allowed on the configured server only
        "file://",
    ],
)
async def test_a_foreign_origin_is_refused(server: RunningServer, origin: str) -> None:
    await check_refused(server, {"Origin": origin, **BROWSER_HEADERS})
    await check_refused(server, {"Origin": origin})


async def test_an_origin_like_the_servers_own_but_not_it_is_refused(server: RunningServer) -> None:
    """Another port, scheme or host, a suffix or a prefix: none passes for the server's own."""
    own = own_origin(server)
    port = server.port
    for origin in (
        f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}",
        f"https://127.0.0.1:{port}",
        f"http://localhost:{port}",
        f"http://127.0.0.1:{port}.evil.example",
        f"http://evil.example/{own}",
        f"{own}/path",
        f"{own}@evil.example",
        f"http://127.0.0.1:{port}0",
    ):
        await check_refused(server, {"Origin": origin})


@pytest.mark.parametrize("origin", ["null", "NULL", " null "])
async def test_a_null_origin_is_refused(server: RunningServer, origin: str) -> None:
    """Sandboxed frames and file: pages send ``Origin: null``."""
    await check_refused(server, {"Origin": origin})


@pytest.mark.parametrize("header", [*BROWSER_HEADERS, "all"])
async def test_a_browser_upgrade_without_origin_is_refused(
    server: RunningServer, header: str
) -> None:
    """Any one Sec-Fetch-* header marks a browser, which must then send its Origin."""
    headers = BROWSER_HEADERS if header == "all" else {header: BROWSER_HEADERS[header]}
    await check_refused(server, dict(headers))


async def test_an_upgrade_with_a_cookie_but_without_origin_is_refused(
    server: RunningServer,
) -> None:
    await check_refused(server, {"Cookie": "session=abc123"})


async def test_the_configured_server_still_refuses_other_origins(
    configured: RunningServer,
) -> None:
    for origin in (
        "https://evil.example",
        "http://app.example.com",  # the scheme differs
        "https://app.example.com:444",  # the port differs
        "https://app.example.com.evil.example",
        "https://evil.app.example.com",
        "https://editor.example.org",  # the allowed one has a port
        "null",
    ):
        await check_refused(configured, {"Origin": origin, **BROWSER_HEADERS})


# -- allowed ---------------------------------------------------------------------------------


async def test_a_client_that_is_no_browser_is_allowed(server: RunningServer) -> None:
    """No Origin and no browser headers: an editor plugin or a script, with its token."""
    assert await upgrade_status(server.url, {}) == 101
    assert await upgrade_status(server.url, {"User-Agent": "codesphere-vim/1.0"}) == 101


async def test_the_servers_own_origin_is_allowed(server: RunningServer) -> None:
    own = own_origin(server)
    assert await upgrade_status(server.url, {"Origin": own}) == 101
    assert await upgrade_status(server.url, {"Origin": own, **BROWSER_HEADERS}) == 101
    cookie = {"Origin": own, "Cookie": "theme=dark", **BROWSER_HEADERS}
    assert await upgrade_status(server.url, cookie) == 101


@pytest.mark.parametrize("spelling", ["trailing-slash", "upper", "mixed"])
async def test_the_servers_own_origin_in_another_spelling_is_allowed(
    server: RunningServer, spelling: str
) -> None:
    own = own_origin(server)
    origin = {
        "trailing-slash": own + "/",
        "upper": own.upper(),
        "mixed": own.replace("http", "HtTp") + "/",
    }[spelling]
    assert await upgrade_status(server.url, {"Origin": origin, **BROWSER_HEADERS}) == 101


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com",
        "https://app.example.com/",
        "HTTPS://APP.EXAMPLE.COM",
        "https://editor.example.org:8443",  # configured with a slash and capitals
        "https://EDITOR.example.org:8443/",
    ],
)
async def test_a_configured_origin_is_allowed(configured: RunningServer, origin: str) -> None:
    assert await upgrade_status(configured.url, {"Origin": origin, **BROWSER_HEADERS}) == 101


async def test_the_configured_server_still_allows_its_own_origin(
    configured: RunningServer,
) -> None:
    assert await upgrade_status(configured.url, {"Origin": own_origin(configured)}) == 101
