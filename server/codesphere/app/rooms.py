"""The in-memory state of loaded rooms: members, documents and who has what open.

This is bookkeeping only; the sync logic lives in ``core.sync`` and the decisions in
``app.handlers``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codesphere.core.sync import DocumentSync

if TYPE_CHECKING:
    from codesphere.app.connection import Connection

ROLES = ("viewer", "editor", "owner")

#: Colours members get in join order: distinct, readable on light and dark backgrounds.
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#9a6324",
    "#469990",
    "#800000",
    "#808000",
    "#000075",
    "#bfef45",
    "#fabed4",
)


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` is at least ``needed`` (viewer < editor < owner)."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass
class Member:
    """A member of a room and its live connections."""

    id: str
    name: str
    color: str
    role: str
    #: The invite the member joined through, if any: revoking it removes the member.
    invite_id: str | None = None
    connections: set[Connection] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        """The protocol's ``Member`` object."""
        return {
            "memberId": self.id,
            "name": self.name,
            "color": self.color,
            "role": self.role,
            "online": bool(self.connections),
        }


@dataclass
class DocState:
    """A document of a room; its text is loaded on first open."""

    id: str
    path: str
    eol: str
    revision: int  # durable head, kept up to date after each commit
    sync: DocumentSync | None = None
    snapshot_revision: int = 0
    subscribers: set[Connection] = field(default_factory=set)
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Revisions committed in memory whose append to storage has not finished yet.
    durable: int = 0
    # Subscribers waiting for the acknowledgement of an edit, by the revision it brings them to.
    acking: dict[Connection, int] = field(default_factory=dict)
    durable_waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """The protocol's file entry."""
        revision = self.sync.doc.revision if self.sync else self.revision
        return {"path": self.path, "revision": revision, "eol": self.eol}

    def mark_durable(self, revision: int) -> None:
        """Record that everything up to ``revision`` is in storage; wake who waits for it."""
        self.durable = max(self.durable, revision)
        still = []
        for rev, fut in self.durable_waiters:
            if rev <= self.durable:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((rev, fut))
        self.durable_waiters = still

    async def wait_durable(self, revision: int) -> None:
        """Return once ``revision`` is in storage."""
        if revision <= self.durable:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.durable_waiters.append((revision, fut))
        await fut


@dataclass
class RoomState:
    """A loaded room."""

    id: str
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    docs: dict[str, DocState] = field(default_factory=dict)  # by path
    connections: set[Connection] = field(default_factory=set)
    #: When the room's ``updated_at`` was last written (see ``Hub.touch``).
    touched_at: float = 0.0

    def next_color(self) -> str:
        """The colour for the next member to join."""
        return PALETTE[len(self.members) % len(PALETTE)]
