"""Signed tokens (HS256 JWTs) that let people into the server and into rooms.

There are three kinds, told apart by the ``typ`` claim:

* ``user``: who someone is across the server (``sub`` is the user id), with an optional
  display name and whether they administer the server (``adm``).
* ``invite``: a link into one room with a role (``room``, ``role``); ``sub`` is the id of the
  invite's stored record, which is what can be revoked or used up: the token alone is not
  enough to get in.
* ``member``: handed to someone once they have joined a room, so they can come back to it
  (``room``; ``sub`` is their member id) without the invite.

Every token carries ``iss``, ``aud``, ``iat``, ``nbf``, ``exp`` and a random ``jti``. Checking
a token never trusts its header: the algorithm is pinned to HS256 and every claim is checked
for type and value, so whatever a client sends either yields typed claims or a ``TokenError``
whose message can be shown to that client.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

ISSUER = "codesphere"
AUDIENCE = "codesphere"
ALGORITHM = "HS256"
ROLES = ("owner", "editor", "viewer")

#: Longer strings are refused before any decoding, so a client cannot make the server parse
#: (and base64- and JSON-decode) arbitrarily large input.
MAX_TOKEN_LENGTH = 4096
#: How far in the future ``iat`` may lie, for clocks that disagree a little.
MAX_CLOCK_SKEW = 60.0
MAX_NAME_LENGTH = 64
DEFAULT_TTL = 30 * 86400.0

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
#: The last second of year 9999: later times cannot be shown as dates, and no real token
#: needs one.
_MAX_TIME = 253402300799.0
_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ"]


class TokenError(Exception):
    """A token was refused.

    The message says why in a few words and is safe to send to whoever presented the token:
    it never contains the token or the secret.
    """


@dataclass(frozen=True, slots=True)
class UserClaims:
    """A verified ``user`` token."""

    user: str
    name: str | None
    admin: bool
    expires_at: float


@dataclass(frozen=True, slots=True)
class InviteClaims:
    """A verified ``invite`` token; ``invite`` is the id of its stored record."""

    room: str
    role: str
    invite: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class MemberClaims:
    """A verified ``member`` token."""

    room: str
    member: str
    expires_at: float


Claims = UserClaims | InviteClaims | MemberClaims

# Most specific first: several of these subclass DecodeError or InvalidTokenError.
_PYJWT_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
    (jwt.InvalidAudienceError, "token audience is wrong"),
    (jwt.InvalidIssuerError, "token issuer is wrong"),
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuedAtError, "token claim 'iat' is invalid"),
    (jwt.DecodeError, "token is malformed"),
)


def _refusal(exc: jwt.PyJWTError) -> TokenError:
    """PyJWT's exception as ours; PyJWT's messages are not meant for end users."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return TokenError(f"token is missing claim {exc.claim!r}")
    for kind, message in _PYJWT_ERRORS:
        if isinstance(exc, kind):
            return TokenError(message)
    return TokenError("token is invalid")


class TokenService:
    """Mints and verifies tokens with one secret.

    ``clock`` is injectable so that expiry can be tested, which is why times are checked here
    rather than by PyJWT (which always reads the system clock).
    """

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
    ) -> None:
        if not isinstance(secret, bytes) or not secret:
            raise ValueError("the token secret must be non-empty bytes")
        try:
            HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(secret)
        except jwt.InvalidKeyError:
            # PyJWT refuses HMAC secrets that look like public keys (the algorithm-confusion
            # attack); better to learn that at start-up than on the first token.
            raise ValueError("the token secret must not look like a PEM or SSH key") from None
        if not (isinstance(issuer, str) and issuer and isinstance(audience, str) and audience):
            raise ValueError("the issuer and the audience must be non-empty strings")
        self._secret = secret
        self._clock = clock
        self._issuer = issuer
        self._audience = audience

    # -- minting ---------------------------------------------------------------------------

    def mint_user(
        self, user: str, *, name: str | None = None, admin: bool = False, ttl: float = DEFAULT_TTL
    ) -> str:
        """A token saying who ``user`` is, valid for ``ttl`` seconds."""
        _check_id(user, "user")
        if name is not None and not _valid_name(name):
            raise ValueError(f"a name must have 1 to {MAX_NAME_LENGTH} characters")
        if not isinstance(admin, bool):
            raise ValueError("admin must be True or False")
        now = self._clock()
        return self._encode("user", user, now, _expiry(now, ttl), {"name": name, "adm": admin})

    def mint_invite(self, room: str, role: str, invite: str, *, expires_at: float) -> str:
        """A token that lets its holder into ``room`` as ``role`` until ``expires_at``."""
        _check_id(room, "room")
        _check_id(invite, "invite")
        if role not in ROLES:
            raise ValueError(f"the role must be one of {', '.join(ROLES)}")
        # A time already past is allowed: listing an expired invite still shows its token,
        # which simply will not verify.
        if not _is_number(expires_at) or not 0 <= expires_at <= _MAX_TIME:
            raise ValueError("an invite must expire at a time between 1970 and 9999")
        return self._encode(
            "invite", invite, self._clock(), expires_at, {"room": room, "role": role}
        )

    def mint_member(self, room: str, member: str, *, ttl: float = DEFAULT_TTL) -> str:
        """A token that lets ``member`` back into ``room``, valid for ``ttl`` seconds."""
        _check_id(room, "room")
        _check_id(member, "member")
        now = self._clock()
        return self._encode("member", member, now, _expiry(now, ttl), {"room": room})

    def _encode(
        self, typ: str, sub: str, now: float, expires_at: float, extra: dict[str, Any]
    ) -> str:
        issued = math.floor(now)
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued,
            "nbf": issued,
            "exp": _numeric_date(expires_at),
            "typ": typ,
            "sub": sub,
            "jti": secrets.token_urlsafe(12),
            **extra,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    # -- verifying -------------------------------------------------------------------------

    def verify(self, token: str) -> Claims:
        """The claims of a token signed with this service's secret and valid now.

        Raises ``TokenError`` for anything else, whatever ``token`` holds.
        """
        _check_shape(token)
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise TokenError("token algorithm is not allowed")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=0,
                options={
                    "require": _REQUIRED,
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "strict_aud": True,
                    # These are checked in _claims: times against the injected clock, and
                    # sub and jti along with every other claim.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from None
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError, UnicodeError):
            raise TokenError("token is malformed") from None
        if not isinstance(payload, dict):
            raise TokenError("token is malformed")
        return self._claims(payload)

    def _claims(self, payload: dict[str, Any]) -> Claims:
        now = self._clock()
        issued = _time(payload, "iat")
        not_before = _time(payload, "nbf")
        expires_at = _time(payload, "exp")
        if issued > now + MAX_CLOCK_SKEW:
            raise TokenError("token was issued in the future")
        if not_before > now:
            raise TokenError("token not yet valid")
        if now >= expires_at:
            raise TokenError("token expired")
        if "jti" in payload:
            _claim_id(payload, "jti")
        typ = payload["typ"]
        if typ == "user":
            name = payload.get("name")
            if name is not None and not _valid_name(name):
                raise TokenError("token claim 'name' is invalid")
            admin = _required(payload, "adm")
            if not isinstance(admin, bool):
                raise TokenError("token claim 'adm' is invalid")
            return UserClaims(_claim_id(payload, "sub"), name, admin, expires_at)
        if typ == "invite":
            role = _required(payload, "role")
            if not isinstance(role, str) or role not in ROLES:
                raise TokenError("token claim 'role' is invalid")
            room = _claim_id(payload, "room")
            return InviteClaims(room, role, _claim_id(payload, "sub"), expires_at)
        if typ == "member":
            room = _claim_id(payload, "room")
            return MemberClaims(room, _claim_id(payload, "sub"), expires_at)
        raise TokenError("token type is unknown")


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A token's header and payload, without checking its signature or any claim.

    Only for showing a token to an operator who wants to know why it is refused: nothing
    read this way may be trusted.
    """
    _check_shape(token)
    header = _header(token)
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _refusal(exc) from None
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError, UnicodeError):
        raise TokenError("token is malformed") from None
    payload = decoded.get("payload")
    if not isinstance(payload, dict):
        raise TokenError("token is malformed")
    return header, payload


def _check_shape(token: str) -> None:
    """Refuse what cannot be a compact JWS before PyJWT sees it.

    Three canonical base64url segments, nothing else: with this done, a failure to decode the
    header can only be the header's fault, and non-ASCII text never reaches the decoder.
    """
    if not isinstance(token, str):
        raise TokenError("token is malformed")
    if not token:
        raise TokenError("token is empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token is too long")
    segments = token.split(".")
    if len(segments) != 3 or not segments[0] or not segments[1]:
        raise TokenError("token is malformed")
    if not all(_canonical_base64url(s) for s in segments):
        raise TokenError("token is malformed")


def _canonical_base64url(segment: str) -> bool:
    """Whether ``segment`` is unpadded base64url that re-encodes to itself.

    The canonical check matters: otherwise the unused low bits of the last character could
    change without changing the bytes, giving several spellings of one token.
    """
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        return False
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == segment


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("token header is malformed") from None
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError, UnicodeError):
        raise TokenError("token header is malformed") from None
    if not isinstance(header, dict):
        raise TokenError("token header is malformed")
    return header


def _required(payload: dict[str, Any], claim: str) -> Any:
    value = payload.get(claim)
    if value is None:
        raise TokenError(f"token is missing claim {claim!r}")
    return value


def _claim_id(payload: dict[str, Any], claim: str) -> str:
    value = _required(payload, claim)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise TokenError(f"token claim {claim!r} is invalid")
    return value


def _time(payload: dict[str, Any], claim: str) -> float:
    value = _required(payload, claim)
    # bool is an int to Python but not a time; huge ints would overflow float().
    if not _is_number(value) or not 0 <= value <= _MAX_TIME:
        raise TokenError(f"token claim {claim!r} is invalid")
    return float(value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _numeric_date(seconds: float) -> int | float:
    """Whole seconds as an int, so a whole-second time does not turn into ``1234.0``."""
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def _valid_name(name: object) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        return False
    try:
        name.encode("utf-8")  # refuses lone surrogates, which JSON can carry
    except UnicodeEncodeError:
        return False
    return True


def _check_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"the {what} id must be 1 to 100 characters of A-Z a-z 0-9 _ . : -")


def _expiry(now: float, ttl: float) -> int:
    if not _is_number(ttl) or ttl <= 0:
        raise ValueError("the lifetime of a token must be a positive number of seconds")
    if now + ttl > _MAX_TIME:
        raise ValueError("the lifetime of a token is too long")
    # Whole seconds, as most JWT readers expect, and never less than asked for.
    return math.ceil(now + ttl)
