"""The owner flow from a fresh start, with only what a person has: the printed owner link.

``codesphere serve`` on an empty data directory (no JWT_SECRET anywhere) prints an owner link;
its token creates invites over the REST API; a viewer joins with one and cannot edit, an editor
joins with the other and can, and the owner sees the editor's edit.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp

from codesphere.client import CodeSphereClient
from codesphere.client.errors import FORBIDDEN
from tests.conftest import timeout
from tests.serve import ServeProcess

OWNER_LINK = r"^Owner link: (http://\S+)/#token=([A-Za-z0-9_.-]+)&room=(\S+)$"


async def test_fresh_start_owner_link_invites_viewer_and_editor(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    server = await ServeProcess.start(tmp_path / "data", tmp_path / "server.log", env=env)
    try:
        url = await server.url()
        link = await server.line(OWNER_LINK)
        http_url, owner_token, room = link[1], link[2], link[3]
        headers = {"Authorization": f"Bearer {owner_token}"}
        invites = {}
        async with aiohttp.ClientSession(base_url=http_url) as http:
            for role in ("viewer", "editor"):
                body = {"role": role, "maxUses": 1}
                async with http.post(f"/api/rooms/{room}/invites", json=body, headers=headers) as r:
                    assert r.status == 201, await r.text()
                    invites[role] = (await r.json())["url"]

        def token_of(link: str) -> str:
            match = re.search(r"#token=([A-Za-z0-9_.-]+)$", link)
            assert match is not None, link
            return match.group(1)

        owner = await CodeSphereClient.connect(url, name="Owner", token=owner_token)
        await owner.join(room)
        owner_doc = await owner.open("README.md")
        viewer = await CodeSphereClient.connect(url, name="Vic", token=token_of(invites["viewer"]))
        assert (await viewer.join())["you"]["role"] == "viewer"
        viewer_doc = await viewer.open("README.md")
        before = viewer_doc.text
        # The edit shows locally at once, is refused, and the text goes back to the server's.
        await viewer_doc.insert(0, "viewer was here\n")
        async with asyncio.timeout(timeout(10)):
            while not viewer_doc.errors or viewer_doc.text != before:
                await asyncio.sleep(0.02)
        assert [e.code for e in viewer_doc.errors] == [FORBIDDEN]
        editor = await CodeSphereClient.connect(url, name="Eda", token=token_of(invites["editor"]))
        assert (await editor.join())["you"]["role"] == "editor"
        editor_doc = await editor.open("README.md")
        await editor_doc.insert(0, "editor was here\n")
        await editor_doc.settled(timeout(10))
        async with asyncio.timeout(timeout(10)):
            while not owner_doc.text.startswith("editor was here\n"):
                await asyncio.sleep(0.02)
        assert owner_doc.text == "editor was here\n" + before
        for client in (owner, viewer, editor):
            await client.close()
    finally:
        assert await server.stop() == 0
