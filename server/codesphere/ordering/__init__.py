"""Total ordering of each document's operations.

:class:`Sequencer` is the seam; :class:`LocalSequencer` is the single-process
implementation that delegates to :class:`~codesphere.storage.base.Storage`.
"""

from __future__ import annotations

from codesphere.ordering.base import Sequencer
from codesphere.ordering.local import LocalSequencer

__all__ = ["LocalSequencer", "Sequencer"]
