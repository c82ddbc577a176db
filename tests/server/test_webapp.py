"""The built browser client is served at / and /assets/, compressed and cacheable."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
from aiohttp import web

from codesphere.app.webapp import IMMUTABLE, add_web_client

BUNDLE = b"console.log('hello from the bundle');\n" * 2000


def built(tmp_path: Path) -> Path:
    """A web/dist as the build leaves it: the page, a hashed bundle and its gzip copy."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><script src=/assets/app-3f2a.js></script>")
    (root / "assets" / "app-3f2a.js").write_bytes(BUNDLE)
    (root / "assets" / "app-3f2a.js.gz").write_bytes(gzip.compress(BUNDLE))
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


async def serve(directory: Path) -> tuple[web.AppRunner, str]:
    app = web.Application()
    add_web_client(app, directory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_page_and_hashed_assets(tmp_path: Path) -> None:
    runner, base = await serve(built(tmp_path))
    try:
        async with aiohttp.ClientSession(base_url=base, auto_decompress=False) as http:
            async with http.get("/") as r:
                assert r.status == 200 and "app-3f2a.js" in await r.text()
                assert r.headers["Cache-Control"] == "no-cache"
                assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            headers = {"Accept-Encoding": "gzip"}
            async with http.get("/assets/app-3f2a.js", headers=headers) as r:
                body = await r.read()
                assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
                assert gzip.decompress(body) == BUNDLE and len(body) < len(BUNDLE) // 10
                assert r.headers["Cache-Control"] == IMMUTABLE
                assert r.content_type in ("text/javascript", "application/javascript")
            async with http.get("/assets/app-3f2a.js", headers={"Accept-Encoding": ""}) as r:
                assert await r.read() == BUNDLE and "Content-Encoding" not in r.headers
            for path in ("/assets/nope.js", "/assets/../secret.txt", "/assets/%2e%2e/secret.txt",
                         "/assets/app-3f2a.js.gz"):  # fmt: skip
                async with http.get(path) as r:
                    assert r.status == 404, path
                    assert "not for the web" not in await r.text()
    finally:
        await runner.cleanup()


async def test_without_a_build_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    runner, base = await serve(tmp_path / "missing")
    try:
        async with aiohttp.ClientSession(base_url=base) as http, http.get("/") as r:
            assert r.status == 200 and "make run" in await r.text()
    finally:
        await runner.cleanup()
