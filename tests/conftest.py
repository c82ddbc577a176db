"""Shared fixtures: a real server on 127.0.0.1, port 0, with its own data directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codesphere.app.server import RunningServer, start_server
from codesphere.build import core_build, stale_modules
from tests.tokens import TEST_SECRET

#: Multiplies every timeout in the tests (raise it on a slow machine).
TIMEOUT_SCALE = float(os.environ.get("CODESPHERE_TIMEOUT_SCALE", "1"))


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled core that no longer matches its sources."""
    stale = stale_modules()
    if stale:
        pytest.exit(
            f"{', '.join(stale)}: the compiled module is older than its source, so the tests"
            " would not run the edit. Rebuild with `make` (or `pip install -e .`).",
            returncode=4,
        )
    expected = os.environ.get("CODESPHERE_EXPECT_CORE")
    if expected and core_build() != expected:
        pytest.exit(f"expected the {expected} sync core, found {core_build()}", returncode=4)


def pytest_report_header() -> str:
    return f"codesphere sync core: {core_build()}"


def timeout(seconds: float) -> float:
    """A test timeout, scaled by CODESPHERE_TIMEOUT_SCALE."""
    return seconds * TIMEOUT_SCALE


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory."""
    return tmp_path / "data"


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[RunningServer]:
    """A running server with embedded storage, stopped after the test."""
    running = await start_server("127.0.0.1", 0, data_dir, secret=TEST_SECRET)
    try:
        yield running
    finally:
        await running.close()
