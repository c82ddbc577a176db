"""What the ``codesphere`` commands share: the data directory option and offline storage."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from codesphere.app.server import DB_NAME
from codesphere.storage.sqlite import SqliteStorage

T = TypeVar("T")

data_dir_option = click.option(
    "--data-dir",
    envvar="CODESPHERE_DATA_DIR",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding the database (env CODESPHERE_DATA_DIR).",
)


def run_with_storage(data_dir: Path, fn: Callable[[SqliteStorage], Awaitable[T]]) -> T:
    """Open the data directory's storage, run ``fn`` and close it."""
    if not (data_dir / DB_NAME).exists():
        raise click.ClickException(f"no CodeSphere data in {data_dir} (start 'codesphere serve')")

    async def go() -> T:
        storage = SqliteStorage(data_dir / DB_NAME)
        await storage.open()
        try:
            return await fn(storage)
        finally:
            await storage.close()

    return asyncio.run(go())


def when(seconds: float) -> str:
    """A timestamp for people."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
