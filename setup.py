"""Builds the sync core as C extensions with mypyc; everything else is in pyproject.toml.

The core (operations, positions, the per-client bridge) and the codec that turns operations
into JSON run for every keystroke of every client. They are plain, fully typed Python, so mypyc
compiles them unchanged, and compiled they take well under half the CPU (bench/sync_micro.py).
The Python sources stay the reference and are what a pure install runs.

Set ``CODESPHERE_PURE_PYTHON=1`` while installing to skip compiling (e.g. with no C compiler).
After editing a compiled module, reinstall (``make`` does it): Python imports the extension,
not the edited source, until it is rebuilt.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

sys.path.insert(0, "server")
from codesphere.build import COMPILED_MODULES  # the list lives with the package

ext_modules = []
if not os.environ.get("CODESPHERE_PURE_PYTHON"):
    from mypyc.build import mypycify

    sources = ["server/" + name.replace(".", "/") + ".py" for name in COMPILED_MODULES]
    ext_modules = mypycify(sources, opt_level="3", group_name="codesphere_core")

setup(ext_modules=ext_modules)
