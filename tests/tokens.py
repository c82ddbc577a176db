"""Tokens for tests: every test server signs with ``TEST_SECRET``.

Most tests are about editing, not about access; their clients connect with an operator's user
token (admitted to every room, as editor unless they ask for viewer) for a user of their own,
so that each client is a member of its own. The security tests mint exactly the tokens they
need.
"""

from __future__ import annotations

import itertools

from codesphere.auth.tokens import TokenService

TEST_SECRET = b"codesphere-test-secret-0123456789abcdef"
TOKENS = TokenService(TEST_SECRET)
_users = itertools.count(1)


def operator_token(user: str | None = None) -> str:
    """A user token with operator rights, for ``user`` or a user no other call gets."""
    return TOKENS.mint_user(user or f"tester-{next(_users)}", admin=True)
