"""The ordering seam: who decides the total order of a document's operations.

A :class:`Sequencer` accepts a batch of operations only if the document's head
is the revision the author based them on (append-if-head-is-revision), which
gives every document a single, gap-free, totally ordered history no matter how
many server processes accept edits. Callers that lose the race get
:class:`~codesphere.storage.base.RevisionConflict`, read the ops they missed
with :meth:`Sequencer.read_since`, transform, and retry.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from codesphere.storage.base import OpRecord

__all__ = ["Sequencer"]


@runtime_checkable
class Sequencer(Protocol):
    """Totally orders the operations of each document."""

    async def append(
        self, room_id: str, doc_id: str, expected_head: int, ops: list[OpRecord]
    ) -> None:
        """Append ``ops`` if and only if the document's head is ``expected_head``.

        ``ops[i].revision`` must be ``expected_head + 1 + i``. On return the ops
        are ordered and durable; on failure nothing was appended.

        Args:
            room_id: The room id.
            doc_id: The document id.
            expected_head: The revision the ops were based on.
            ops: The operations, in order.

        Raises:
            RevisionConflict: The head moved past ``expected_head`` or the op
                revisions do not follow it without gaps.
            NotFound: The document does not exist.
        """
        ...

    async def read_since(self, room_id: str, doc_id: str, revision: int) -> list[OpRecord]:
        """Return every op with a revision greater than ``revision``, ascending.

        Raises:
            NotFound: The document does not exist.
        """
        ...
