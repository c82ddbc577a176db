"""In-process sequencer: one server process, order and durability from storage.

With a single process every edit of a document funnels through the same
:class:`~codesphere.storage.base.Storage`, whose ``append_ops`` is an atomic
compare-and-set on the durable head revision. That compare-and-set *is* the
sequencer: the first append based on head ``n`` wins revisions ``n+1...``, every
other append based on ``n`` gets ``RevisionConflict``. Nothing is kept in
memory here, so there is no cache that can disagree with storage.

A Redis-backed sequencer for several server processes keeps the same contract
with one stream per document, e.g. key ``cs:{room_id}:{doc_id}:ops``, whose
entry ids are ``<revision>-0`` so that revisions and stream ids coincide:

* ``append`` runs a Lua script (atomic on the Redis server) that reads the
  head (``XINFO STREAM``'s ``last-generated-id``, or a companion
  ``cs:{room_id}:{doc_id}:head`` key), returns a conflict error unless it
  equals ``expected_head``, then ``XADD``\\s every op with the explicit id
  ``<revision>-0`` and sets the head, all in one script invocation. Redis
  rejects an ``XADD`` whose id is not greater than the last one, which backs up
  the gap check.
* ``read_since`` is ``XRANGE key (<revision>-0 +`` (exclusive start), falling
  back to ``Storage.read_ops`` when the stream has been trimmed past
  ``revision``.
* Durability comes from Redis persistence (AOF) plus a background consumer
  that copies stream entries into ``Storage.append_ops`` in order, after which
  the stream may be trimmed (``XTRIM MINID``).
"""

from __future__ import annotations

from codesphere.storage.base import OpRecord, Storage

__all__ = ["LocalSequencer"]


class LocalSequencer:
    """:class:`~codesphere.ordering.base.Sequencer` for a single server process."""

    def __init__(self, storage: Storage) -> None:
        """Create a sequencer over ``storage``.

        Args:
            storage: An open storage; it provides both the order (via its
                compare-and-set) and the durability.
        """
        self._storage = storage

    async def append(
        self, room_id: str, doc_id: str, expected_head: int, ops: list[OpRecord]
    ) -> None:
        """See :meth:`codesphere.ordering.base.Sequencer.append`."""
        await self._storage.append_ops(room_id, doc_id, expected_head, ops)

    async def read_since(self, room_id: str, doc_id: str, revision: int) -> list[OpRecord]:
        """See :meth:`codesphere.ordering.base.Sequencer.read_since`."""
        return await self._storage.read_ops(room_id, doc_id, revision)
