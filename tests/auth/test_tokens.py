"""Tokens: what is minted verifies to the same claims, and every kind of bad token is refused.

Bad tokens are built by hand (base64url JSON and an HMAC computed here), so that each test
exercises one flaw in an otherwise valid token, and the refusal must be a ``TokenError`` with
its own message: never a PyJWT exception, a KeyError or the like.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesphere.auth.tokens import (
    AUDIENCE,
    ISSUER,
    ROLES,
    InviteClaims,
    MemberClaims,
    TokenError,
    TokenService,
    UserClaims,
    decode_unverified,
)

SECRET = b"0123456789abcdef0123456789abcdef-test"
NOW = 1_700_000_000.0
HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> TokenService:
    return TokenService(SECRET, clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def sign(
    header: Any, payload: Any, key: bytes = SECRET, hash_alg: str = "HS256", *, raw: bool = False
) -> str:
    """A compact JWS of ``header`` and ``payload`` (JSON unless ``raw``), HMAC-signed."""
    head = header if raw else b64_json(header)
    body = payload if raw else b64_json(payload)
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64(hmac.new(key, signing_input, HASHES[hash_alg]).digest())}"


def claims(typ: str = "user", **changes: Any) -> dict[str, Any]:
    """A valid payload of kind ``typ`` at NOW, with ``changes`` (None removes a claim)."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 3600,
        "typ": typ,
        "jti": "abcdefghijklmnop",
    }
    if typ == "user":
        base.update(sub="u-1", name="Ada", adm=False)
    elif typ == "invite":
        base.update(sub="i-1", room="r-1", role="viewer")
    else:
        base.update(sub="m-1", room="r-1")
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: Any) -> str:
    return sign({"alg": "HS256", "typ": "JWT"}, payload)


def refused(service: TokenService, token: Any) -> str:
    """The message of the TokenError ``token`` is refused with (and only a TokenError)."""
    with pytest.raises(TokenError) as caught:
        service.verify(token)
    assert type(caught.value) is TokenError
    message = str(caught.value)
    assert SECRET.decode() not in message
    if isinstance(token, str) and len(token) > 8:
        assert token not in message
    return message


# -- round trips --------------------------------------------------------------------------------


def test_user_token_round_trip(service: TokenService) -> None:
    token = service.mint_user("u-1", name="Ada Lovelace", admin=True, ttl=3600)
    assert service.verify(token) == UserClaims("u-1", "Ada Lovelace", True, NOW + 3600)
    plain = service.mint_user("alice")
    assert service.verify(plain) == UserClaims("alice", None, False, NOW + 30 * 86400)


def test_invite_token_round_trip(service: TokenService) -> None:
    for role in ROLES:
        token = service.mint_invite("r-abc", role, "i-xyz", expires_at=NOW + 60.5)
        assert service.verify(token) == InviteClaims("r-abc", role, "i-xyz", NOW + 60.5)


def test_member_token_round_trip(service: TokenService) -> None:
    token = service.mint_member("r-abc", "m:42", ttl=10)
    assert service.verify(token) == MemberClaims("r-abc", "m:42", NOW + 10)


def test_minted_tokens_carry_the_documented_claims(service: TokenService) -> None:
    """The wire format others read: standard claims, typ, sub and a random jti."""
    header, payload = decode_unverified(service.mint_user("u-1", name="Ada", ttl=60))
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert payload.pop("jti") != decode_unverified(service.mint_user("u-1"))[1]["jti"]
    assert payload == {
        "iss": "codesphere",
        "aud": "codesphere",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 60,
        "typ": "user",
        "sub": "u-1",
        "name": "Ada",
        "adm": False,
    }
    _, invite = decode_unverified(service.mint_invite("r-1", "editor", "i-1", expires_at=NOW + 9))
    assert (invite["typ"], invite["sub"], invite["room"], invite["role"]) == (
        "invite",
        "i-1",
        "r-1",
        "editor",
    )
    _, member = decode_unverified(service.mint_member("r-1", "m-1"))
    assert (member["typ"], member["sub"], member["room"]) == ("member", "m-1", "r-1")


def test_hand_built_tokens_verify(service: TokenService) -> None:
    """The forging helpers below build valid tokens, so each refusal is due to its one flaw."""
    assert service.verify(hs256(claims())) == UserClaims("u-1", "Ada", False, NOW + 3600)
    assert service.verify(hs256(claims("invite"))) == InviteClaims(
        "r-1", "viewer", "i-1", NOW + 3600
    )
    assert service.verify(hs256(claims("member"))) == MemberClaims("r-1", "m-1", NOW + 3600)
    # name may be null or absent; extra claims are ignored
    nameless = UserClaims("u-1", None, False, NOW + 3600)
    assert service.verify(hs256(claims(name=None))) == nameless
    assert service.verify(hs256({**claims(), "name": None, "extra": [1]})) == nameless


# -- signature and algorithm ----------------------------------------------------------------


def test_alg_none_is_refused(service: TokenService) -> None:
    token = f"{b64_json({'alg': 'none', 'typ': 'JWT'})}.{b64_json(claims())}."
    assert refused(service, token) == "token algorithm is not allowed"


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_same_secret_are_refused(
    service: TokenService, alg: str
) -> None:
    token = sign({"alg": alg, "typ": "JWT"}, claims(), hash_alg=alg)
    assert refused(service, token) == "token algorithm is not allowed"


def test_rs256_header_with_an_hmac_signature_is_refused(service: TokenService) -> None:
    token = sign({"alg": "RS256", "typ": "JWT"}, claims())
    assert refused(service, token) == "token algorithm is not allowed"


@pytest.mark.parametrize("header", [{"typ": "JWT"}, {"alg": None}, {"alg": ["HS256"]}, {"alg": ""}])
def test_missing_or_odd_alg_is_refused(service: TokenService, header: dict[str, Any]) -> None:
    assert refused(service, sign(header, claims())) == "token algorithm is not allowed"


def test_wrong_key_is_refused(service: TokenService) -> None:
    token = sign({"alg": "HS256"}, claims(), key=b"another secret of enough length!!")
    assert refused(service, token) == "token signature is invalid"
    other = TokenService(b"another secret of enough length!!", clock=Clock())
    assert refused(service, other.mint_user("u-1")) == "token signature is invalid"


def test_tampered_payload_is_refused(service: TokenService) -> None:
    """Raising an invite's role while keeping its signature."""
    invite = service.mint_invite("r-1", "viewer", "i-1", expires_at=NOW + 60)
    head, body, signature = invite.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["role"] = "owner"
    tampered = f"{head}.{b64_json(payload)}.{signature}"
    assert refused(service, tampered) == "token signature is invalid"


def test_signature_from_another_token_is_refused(service: TokenService) -> None:
    a = service.mint_member("r-1", "m-1").split(".")
    b = service.mint_member("r-1", "m-2").split(".")
    assert refused(service, f"{a[0]}.{a[1]}.{b[2]}") == "token signature is invalid"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "kid": 5},
        {"alg": "HS256", "crit": ["exp"]},
        {"alg": "HS256", "b64": False, "crit": ["b64"]},
    ],
)
def test_header_tricks_are_refused(service: TokenService, header: dict[str, Any]) -> None:
    message = refused(service, sign(header, claims()))
    assert message in {"token header is malformed", "token is malformed"}


def test_header_parameters_pointing_at_keys_do_not_matter(service: TokenService) -> None:
    """jku/jwk/x5u/kid are never followed: the signature is still checked with our secret."""
    header = {"alg": "HS256", "kid": "k1", "jku": "https://evil.example/jwks", "jwk": {"k": "x"}}
    assert service.verify(sign(header, claims())) == UserClaims("u-1", "Ada", False, NOW + 3600)
    forged = sign(header, claims(), key=b"the attacker's own key, long one")
    assert refused(service, forged) == "token signature is invalid"


# -- times --------------------------------------------------------------------------------------


def test_expired_token_is_refused(service: TokenService, clock: Clock) -> None:
    token = service.mint_user("u-1", ttl=60)
    clock.now = NOW + 59.9
    assert isinstance(service.verify(token), UserClaims)
    clock.now = NOW + 60
    assert refused(service, token) == "token expired"
    clock.now = NOW + 86400
    assert refused(service, token) == "token expired"


def test_expired_invite_is_refused(service: TokenService, clock: Clock) -> None:
    token = service.mint_invite("r-1", "editor", "i-1", expires_at=NOW + 5)
    clock.now = NOW + 5
    assert refused(service, token) == "token expired"
    # minting one that has already expired is allowed (an expired invite can still be listed)
    assert refused(service, service.mint_invite("r-1", "editor", "i-1", expires_at=NOW - 1)) == (
        "token expired"
    )


def test_token_not_yet_valid_is_refused(service: TokenService) -> None:
    assert refused(service, hs256(claims(nbf=int(NOW) + 30))) == "token not yet valid"


def test_iat_far_in_the_future_is_refused(service: TokenService) -> None:
    assert refused(service, hs256(claims(iat=int(NOW) + 3600))) == "token was issued in the future"
    # a little clock skew is tolerated
    assert isinstance(service.verify(hs256(claims(iat=int(NOW) + 30))), UserClaims)


def test_missing_exp_is_refused(service: TokenService) -> None:
    assert refused(service, hs256(claims(exp=None))) == "token is missing claim 'exp'"


@pytest.mark.parametrize(
    ("typ", "claim"),
    [
        ("user", "iat"),
        ("user", "nbf"),
        ("user", "iss"),
        ("user", "aud"),
        ("user", "sub"),
        ("user", "typ"),
        ("user", "adm"),
        ("invite", "sub"),
        ("invite", "room"),
        ("invite", "role"),
        ("member", "sub"),
        ("member", "room"),
    ],
)
def test_missing_required_claim_is_refused(service: TokenService, typ: str, claim: str) -> None:
    payload = claims(typ)
    del payload[claim]
    assert refused(service, hs256(payload)) == f"token is missing claim {claim!r}"


def test_wrong_audience_is_refused(service: TokenService, clock: Clock) -> None:
    assert refused(service, hs256(claims(aud="someone-else"))) == "token audience is wrong"
    assert refused(service, hs256(claims(aud=["codesphere", "x"]))) == "token audience is wrong"
    elsewhere = TokenService(SECRET, clock=clock, audience="other")
    assert refused(service, elsewhere.mint_user("u-1")) == "token audience is wrong"


def test_wrong_issuer_is_refused(service: TokenService, clock: Clock) -> None:
    assert refused(service, hs256(claims(iss="evil"))) == "token issuer is wrong"
    assert refused(service, hs256(claims(iss=7))) == "token issuer is wrong"
    elsewhere = TokenService(SECRET, clock=clock, issuer="other")
    assert refused(service, elsewhere.mint_user("u-1")) == "token issuer is wrong"


# -- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 5, 43, 44, 60])
def test_truncated_token_is_refused(service: TokenService, cut: int) -> None:
    token = service.mint_user("u-1")
    message = refused(service, token[:-cut])
    assert message in {"token signature is invalid", "token is malformed"}


def test_token_without_its_signature_is_refused(service: TokenService) -> None:
    token = service.mint_user("u-1")
    assert refused(service, token[: token.rindex(".") + 1]) == "token signature is invalid"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ("!!!!", "token is malformed"),  # not base64url
        ("eyJhbGciOiJIUzI1NiJ9=", "token is malformed"),  # padded
        (b64(b'{"alg":"HS256"'), "token header is malformed"),  # not JSON
        (b64(b"\xff\xfe"), "token header is malformed"),  # not UTF-8
        (b64_json(["HS256"]), "token header is malformed"),  # not an object
        (b64_json("HS256"), "token header is malformed"),
        (b64_json(None), "token header is malformed"),
    ],
)
def test_malformed_header_is_refused(service: TokenService, head: str, message: str) -> None:
    token = sign(head, b64_json(claims()), raw=True)
    assert refused(service, token) == message


def test_payload_that_is_not_an_object_is_refused(service: TokenService) -> None:
    head = b64_json({"alg": "HS256"})
    for body in (b64_json([1, 2]), b64(b"not json"), b64_json(5)):
        assert refused(service, sign(head, body, raw=True)) == "token is malformed"


def test_noncanonical_base64_is_refused(service: TokenService) -> None:
    """A last character whose unused bits are set decodes to the same bytes: still refused,
    so that one token has one spelling."""
    token = service.mint_user("u-1")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = token[-1]
    twin = token[:-1] + alphabet[alphabet.index(last) + 1]
    assert refused(service, twin) == "token is malformed"


@pytest.mark.parametrize("extra", [".", ".abc", ".abc.def", ".."])
def test_extra_segments_are_refused(service: TokenService, extra: str) -> None:
    assert refused(service, service.mint_user("u-1") + extra) == "token is malformed"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "..", "a..b", ".b.c", "a b.c.d"])
def test_shapeless_tokens_are_refused(service: TokenService, token: str) -> None:
    assert refused(service, token) in {"token is empty", "token is malformed"}


def test_empty_string_is_refused(service: TokenService) -> None:
    assert refused(service, "") == "token is empty"


def test_non_string_is_refused(service: TokenService) -> None:
    assert refused(service, None) == "token is malformed"
    assert refused(service, service.mint_user("u-1").encode()) == "token is malformed"


def test_10kb_token_is_refused_before_decoding(service: TokenService) -> None:
    huge = hs256(claims(name=None, pad="x" * 10_000))
    assert len(huge) > 10_000
    assert refused(service, huge) == "token is too long"
    assert refused(service, "A" * 10_240) == "token is too long"


def test_whitespace_around_a_token_is_refused(service: TokenService) -> None:
    token = service.mint_user("u-1")
    for spaced in (f" {token}", f"{token}\n", f"Bearer {token}"):
        assert refused(service, spaced) == "token is malformed"


def test_non_ascii_token_is_refused(service: TokenService) -> None:
    token = service.mint_user("u-1")
    assert refused(service, token[:-1] + "é") == "token is malformed"
    assert refused(service, token[:-1] + "\ud800") == "token is malformed"


# -- claim types and values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (claims(adm="yes"), "token claim 'adm' is invalid"),
        (claims(adm=1), "token claim 'adm' is invalid"),
        (claims("member", room=5), "token claim 'room' is invalid"),
        (claims("invite", room=["r-1"]), "token claim 'room' is invalid"),
        (claims("invite", role="admin"), "token claim 'role' is invalid"),
        (claims("invite", role=3), "token claim 'role' is invalid"),
        (claims(typ="superuser"), "token type is unknown"),
        (claims(typ=1), "token type is unknown"),
        (claims(sub="has space"), "token claim 'sub' is invalid"),
        (claims(sub=""), "token claim 'sub' is invalid"),
        (claims(sub="x" * 101), "token claim 'sub' is invalid"),
        (claims(sub=12), "token claim 'sub' is invalid"),
        (claims(sub="u-1\n"), "token claim 'sub' is invalid"),
        (claims("member", room="r/1"), "token claim 'room' is invalid"),
        (claims(name="x" * 65), "token claim 'name' is invalid"),
        (claims(name=""), "token claim 'name' is invalid"),
        (claims(name=["Ada"]), "token claim 'name' is invalid"),
        (claims(name="\ud800"), "token claim 'name' is invalid"),
        (claims(jti=5), "token claim 'jti' is invalid"),
        (claims(exp="soon"), "token claim 'exp' is invalid"),
        (claims(exp=True), "token claim 'exp' is invalid"),
        (claims(exp=float("inf")), "token claim 'exp' is invalid"),
        (claims(exp=float("nan")), "token claim 'exp' is invalid"),
        (claims(exp=10**400), "token claim 'exp' is invalid"),
        (claims(iat=-1), "token claim 'iat' is invalid"),
        (claims(nbf="0"), "token claim 'nbf' is invalid"),
    ],
)
def test_claims_of_the_wrong_type_or_value_are_refused(
    service: TokenService, payload: dict[str, Any], message: str
) -> None:
    assert refused(service, hs256(payload)) == message


def test_refusal_messages_are_distinct(service: TokenService, clock: Clock) -> None:
    """Each kind of failure says what it is: an operator can tell them apart."""
    token = service.mint_user("u-1", ttl=60)
    messages = {
        refused(service, ""),
        refused(service, "x" * 5000),
        refused(service, "a.b"),
        refused(service, sign(b64(b"[]"), b64_json(claims()), raw=True)),
        refused(service, sign({"alg": "HS512"}, claims(), hash_alg="HS512")),
        refused(service, sign({"alg": "HS256"}, claims(), key=b"k" * 32)),
        refused(service, hs256(claims(exp=None))),
        refused(service, hs256(claims(aud="x"))),
        refused(service, hs256(claims(iss="x"))),
        refused(service, hs256(claims(nbf=int(NOW) + 9))),
        refused(service, hs256(claims(iat=int(NOW) + 999))),
        refused(service, hs256(claims(typ="x"))),
    }
    clock.now += 60
    messages.add(refused(service, token))
    assert len(messages) == 13


# -- minting validates its input ----------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["", "a b", "x" * 101, "é", "a/b", "a\n", 5, None])
def test_minting_refuses_bad_ids(service: TokenService, bad_id: Any) -> None:
    with pytest.raises(ValueError):
        service.mint_user(bad_id)
    with pytest.raises(ValueError):
        service.mint_member(bad_id, "m-1")
    with pytest.raises(ValueError):
        service.mint_member("r-1", bad_id)
    with pytest.raises(ValueError):
        service.mint_invite(bad_id, "viewer", "i-1", expires_at=NOW + 60)
    with pytest.raises(ValueError):
        service.mint_invite("r-1", "viewer", bad_id, expires_at=NOW + 60)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), 1e20, True])
def test_minting_refuses_bad_lifetimes(service: TokenService, ttl: Any) -> None:
    with pytest.raises(ValueError):
        service.mint_user("u-1", ttl=ttl)
    with pytest.raises(ValueError):
        service.mint_member("r-1", "m-1", ttl=ttl)


def test_minting_refuses_bad_roles_names_and_expiry(service: TokenService) -> None:
    for role in ("admin", "", "Owner", None):
        with pytest.raises(ValueError):
            service.mint_invite("r-1", role, "i-1", expires_at=NOW + 60)  # type: ignore[arg-type]
    for expires_at in (-1, float("nan"), float("inf"), 1e15, "soon"):
        with pytest.raises(ValueError):
            service.mint_invite("r-1", "viewer", "i-1", expires_at=expires_at)  # type: ignore[arg-type]
    for name in ("", "x" * 65, "\ud800"):
        with pytest.raises(ValueError):
            service.mint_user("u-1", name=name)
    with pytest.raises(ValueError):
        service.mint_user("u-1", admin="yes")  # type: ignore[arg-type]


PEM = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQc=\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize("secret", [b"", "a str secret of plenty of length", PEM])
def test_service_refuses_unusable_secrets(secret: Any) -> None:
    with pytest.raises(ValueError):
        TokenService(secret)


# -- fuzzing ------------------------------------------------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FUZZ_SERVICE = TokenService(SECRET, clock=Clock())
FUZZ_TOKENS = [
    FUZZ_SERVICE.mint_user("u-1", name="Ada", admin=True),
    FUZZ_SERVICE.mint_invite("r-1", "viewer", "i-1", expires_at=NOW + 3600),
    FUZZ_SERVICE.mint_member("r-1", "m-1"),
]
chars = st.one_of(st.sampled_from(B64URL + ".="), st.characters(exclude_categories=()))
mutations = st.lists(
    st.tuples(st.sampled_from(["replace", "insert", "delete", "flip"]), st.integers(0), chars),
    min_size=1,
    max_size=4,
)


def mutate(token: str, edits: list[tuple[str, int, str]]) -> str:
    """``token`` after character edits, and bit flips on its UTF-8 bytes."""
    for kind, where, char in edits:
        if kind == "flip":
            data = bytearray(token.encode("utf-8", "surrogatepass"))
            if data:
                data[where % len(data)] ^= 1 << (where % 8)
            token = data.decode("utf-8", "surrogateescape")
            continue
        i = where % (len(token) + 1)
        if kind == "insert":
            token = token[:i] + char + token[i:]
        elif kind == "delete":
            token = token[:i] + token[i + 1 :]
        else:
            token = token[:i] + char + token[i + 1 :]
    return token


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(FUZZ_TOKENS), mutations)
def test_mutated_tokens_are_refused_or_mean_the_same(token: str, edits: Any) -> None:
    original = FUZZ_SERVICE.verify(token)
    mutated = mutate(token, edits)
    try:
        got = FUZZ_SERVICE.verify(mutated)
    except TokenError as exc:
        assert type(exc) is TokenError
        assert SECRET.decode() not in str(exc)
        return
    assert got == original


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: f"{b64(b)}.{b64(b)}.{b64(b)}"))
def test_arbitrary_text_is_refused(text: str) -> None:
    with pytest.raises(TokenError):
        FUZZ_SERVICE.verify(text)
