"""Whether the sync core runs compiled (see setup.py), and whether that build is current."""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["COMPILED_MODULES", "core_build", "stale_modules"]

COMPILED_MODULES = (
    "codesphere.core.errors",
    "codesphere.core.positions",
    "codesphere.core.operation",
    "codesphere.core.changes",
    "codesphere.core.document",
    "codesphere.core.sync",
    "codesphere.protocol.codec",
)
"""The modules setup.py compiles with mypyc, when it compiles."""


def _is_extension(path: Path) -> bool:
    return any(path.name.endswith(suffix) for suffix in EXTENSION_SUFFIXES)


def _files() -> list[Path]:
    return [Path(str(importlib.import_module(name).__file__)) for name in COMPILED_MODULES]


def core_build() -> str:
    """``"compiled"``, ``"pure"`` (the Python sources) or ``"mixed"`` (a partial build)."""
    compiled = [_is_extension(path) for path in _files()]
    if all(compiled):
        return "compiled"
    return "mixed" if any(compiled) else "pure"


def stale_modules() -> list[str]:
    """Compiled modules whose Python source was edited after they were built.

    Python imports the extension, not the edited source, so such edits do not run until the
    package is reinstalled.
    """
    stale = []
    for name, path in zip(COMPILED_MODULES, _files(), strict=True):
        source = path.with_name(path.name.split(".", 1)[0] + ".py")
        if (
            _is_extension(path)
            and source.exists()
            and source.stat().st_mtime > path.stat().st_mtime
        ):
            stale.append(name)
    return stale
