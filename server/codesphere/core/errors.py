"""Errors raised by the pure sync core.

Every error here means "the input was refused and nothing changed in the document"::

    SyncError
    ├── PositionError        a position past the end of a line or document, or inside a character
    ├── InvalidChange        a change that cannot be applied (reversed range, bad text)
    │   └── DocumentTooLarge the result would exceed the document size limit
    ├── RevisionError        a revision the server never sent to this client (from the future,
    │                        or older than the client's open)
    └── ResyncRequired       the client must re-open the document: it is too far behind, or an
                             earlier edit of its own was refused and its view is now unknown
    OperationError           internal: an operation does not fit the text it is applied to

The protocol layer maps each class to a documented JSON-RPC error code.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of the errors a client can cause; the message is safe to send back to it."""


class PositionError(SyncError):
    """A position does not name a place between two characters of the text."""


class InvalidChange(SyncError):
    """A content change is malformed (reversed range, forbidden characters)."""


class DocumentTooLarge(InvalidChange):
    """The edit would make the document longer than the server allows."""


class RevisionError(SyncError):
    """A client named a revision that it cannot have seen."""


class ResyncRequired(SyncError):
    """The server no longer knows the client's view; the client must re-open the document."""


class OperationError(Exception):
    """An operation was applied to, composed or transformed with something it does not fit.

    This is a bug in the caller, never a client's fault.
    """
