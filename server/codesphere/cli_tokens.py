"""``codesphere token``: mint and inspect the tokens that let people in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from codesphere.app.handlers import MAX_INVITE_SECONDS
from codesphere.app.hub import new_id
from codesphere.auth.secret import load_secret
from codesphere.auth.tokens import TokenError, TokenService, decode_unverified
from codesphere.cli_common import data_dir_option, run_with_storage, when
from codesphere.storage.base import InviteRecord, NotFound
from codesphere.storage.sqlite import SqliteStorage

if TYPE_CHECKING:
    _IntParamType = click.ParamType[int, Any]
else:  # subscriptable only in recent click
    _IntParamType = click.ParamType

_DURATION = re.compile(r"([0-9]{1,9})([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(_IntParamType):
    """A lifetime such as ``90s``, ``15m``, ``12h`` or ``30d``, in seconds."""

    name = "duration"
    #: Ten years: more is surely a typo, and a leaked token should not outlive its operator.
    MAX_SECONDS = 3650 * 86400

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            self.fail(f"{value!r} is not a duration like 90s, 15m, 12h or 30d", param, ctx)
        seconds = int(match[1]) * _DURATION_UNITS[match[2]]
        if not 0 < seconds <= self.MAX_SECONDS:
            self.fail(f"{value!r} must be more than 0 and at most 3650d", param, ctx)
        return seconds


def _token_service(data_dir: Path, *, create: bool) -> TokenService:
    try:
        secret, _source = load_secret(data_dir, create=create)
        return TokenService(secret)
    except ValueError as exc:  # SecretError included
        raise click.ClickException(str(exc)) from None


def iso_utc(seconds: object) -> str | None:
    """A timestamp as ISO 8601 in UTC, for machines and people alike (None if it is none)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


@click.group()
def token() -> None:
    """Mint and inspect access tokens.

    Tokens are signed with JWT_SECRET (from the environment or ./.env) or else with the
    data directory's jwt_secret file, which mint-user makes if there is none.
    """


@token.command("mint-user")
@click.argument("user")
@click.option("--name", default=None, help="Display name carried by the token.")
@click.option("--admin", is_flag=True, help="Let the holder administer the server.")
@click.option(
    "--expires",
    "ttl",
    type=Duration(),
    default="30d",
    show_default=True,
    help="Lifetime: a number and s, m, h or d.",
)
@data_dir_option
def token_mint_user(user: str, name: str | None, admin: bool, ttl: int, data_dir: Path) -> None:
    """Print a user token for USER.

    USER is an id of up to 100 letters, digits and _ . : - characters.
    """
    service = _token_service(data_dir, create=True)
    try:
        click.echo(service.mint_user(user, name=name, admin=admin, ttl=ttl))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@token.command("mint-invite")
@click.option("--room", "room_id", required=True, help="The id of the room it admits to.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["owner", "editor", "viewer"]),
    help="The role of whoever joins with it.",
)
@click.option(
    "--expires",
    "ttl",
    type=Duration(),
    default="7d",
    show_default=True,
    help="Lifetime: a number and s, m, h or d (at most 365d).",
)
@click.option(
    "--max-uses",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="How many people may join with it (default: no limit).",
)
@data_dir_option
def token_mint_invite(
    room_id: str, role: str, ttl: int, max_uses: int | None, data_dir: Path
) -> None:
    """Create an invite to a room and print its token.

    Whoever joins the room with the token becomes a member with the invite's role. The
    room's owners see the invite in invite/list and can revoke it there; its id is shown on
    standard error.
    """
    if ttl > MAX_INVITE_SECONDS:
        raise click.BadParameter("must be at most 365d", param_hint="'--expires'")

    async def go(storage: SqliteStorage) -> tuple[InviteRecord, str]:
        if await storage.get_room(room_id) is None:
            raise click.ClickException(f"no room {room_id}")
        service = _token_service(data_dir, create=True)
        now = time.time()
        invite = InviteRecord(room_id, new_id("i"), role, now, now + ttl, max_uses, 0, None, "cli")
        # Minted before the invite is stored, so that a failure leaves no invite behind.
        invite_token = service.mint_invite(room_id, role, invite.id, expires_at=invite.expires_at)
        try:
            await storage.create_invite(invite)
        except NotFound:  # the room was deleted meanwhile
            raise click.ClickException(f"no room {room_id}") from None
        return invite, invite_token

    invite, invite_token = run_with_storage(data_dir, go)
    uses = "unlimited uses" if max_uses is None else f"at most {max_uses} use(s)"
    click.echo(
        f"invite {invite.id} to room {room_id} as {role}, {uses}, "
        f"expires {when(invite.expires_at)}",
        err=True,
    )
    click.echo(invite_token)


@token.command("inspect")
@click.argument("token_text", metavar="[TOKEN]", required=False)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Show the claims without checking the signature or expiry (they cannot be trusted).",
)
@data_dir_option
def token_inspect(token_text: str | None, no_verify: bool, data_dir: Path) -> None:
    """Check a token and print its claims as JSON.

    Without TOKEN (or with -) the token is read from standard input, so that it need not
    appear on the command line or in the shell's history. Exits with status 1 if the token
    is invalid.
    """
    if token_text is None or token_text == "-":
        if sys.stdin.isatty():
            token_text = click.prompt("Token", hide_input=True, err=True)
        else:
            token_text = sys.stdin.readline()
    token_text = (token_text or "").strip()
    try:
        if no_verify:
            header, payload = decode_unverified(token_text)
            click.echo("UNVERIFIED: the signature and expiry were not checked", err=True)
            shown: dict[str, Any] = {
                "verified": False,
                "header": header,
                "claims": payload,
                "expires_at": iso_utc(payload.get("exp")),
            }
        else:
            claims = _token_service(data_dir, create=False).verify(token_text)
            shown = {
                "verified": True,
                "type": type(claims).__name__.removesuffix("Claims").lower(),
                **dataclasses.asdict(claims),
                "expires_at": iso_utc(claims.expires_at),
            }
    except TokenError as exc:
        click.echo(f"invalid token: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(shown, indent=2))
