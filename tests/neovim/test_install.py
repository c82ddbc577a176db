"""Installing the plugin as a plain package (|packages|), with its :help, on both Neovims."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pynvim
import pytest

from tests.neovim.conftest import PLUGIN_DIR

pytestmark = pytest.mark.timeout(60)

COMMANDS = (
    "CodeSphereJoin",
    "CodeSphereOpen",
    "CodeSphereLeave",
    "CodeSphereUsers",
    "CodeSphereFollow",
    "CodeSphereUnfollow",
    "CodeSphereChat",
    "CodeSphereShare",
)


def test_a_package_in_packpath_gives_the_commands_and_the_help(
    nvim_bin: str, tmp_path: Path
) -> None:
    # A copy, as a package manager would make: :helptags writes doc/tags next to the help.
    package = tmp_path / "site" / "pack" / "codesphere" / "start" / "codesphere"
    shutil.copytree(PLUGIN_DIR, package)
    init = tmp_path / "init.lua"
    init.write_text(f"vim.opt.packpath:prepend({str(tmp_path / 'site')!r})\n")
    home = tmp_path / "home"
    argv = [
        "env",
        f"XDG_CONFIG_HOME={home / 'config'}",
        f"XDG_DATA_HOME={home / 'data'}",
        f"XDG_STATE_HOME={home / 'state'}",
        nvim_bin,
        "--embed",
        "--headless",
        "-n",
        "-i",
        "NONE",
        "-u",
        str(init),
    ]
    nvim = pynvim.attach("child", argv=argv)
    try:
        for command in COMMANDS:
            assert nvim.call("exists", f":{command}") == 2, command
        # Nothing is required until it is used: the commands come from plugin/ alone.
        assert nvim.exec_lua("return package.loaded['codesphere.session'] == nil") is True
        nvim.command(f"helptags {package / 'doc'}")
        nvim.command("help codesphere")
        assert nvim.current.buffer.name.endswith("codesphere.txt")
        for tag in ("codesphere-install", "codesphere-undo", ":CodeSphereChat"):
            nvim.command(f"help {tag}")
            line = nvim.current.line
            assert f"*{tag}*" in line, (tag, line)
        nvim.exec_lua("require('codesphere').setup({name = 'Ada'})")
        assert nvim.exec_lua("return require('codesphere').statusline()") == ""
    finally:
        with contextlib.suppress(Exception):
            nvim.quit("qa!")
        with contextlib.suppress(Exception):
            nvim.close()
