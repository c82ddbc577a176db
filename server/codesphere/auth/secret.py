"""Where the token-signing secret comes from.

An operator who sets ``JWT_SECRET`` (in the environment or a ``.env`` file) controls the
secret, e.g. to share it between processes; otherwise the data directory keeps one, made on
first use, so a plain ``codesphere serve`` works with no setup and tokens outlive restarts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

ENV_VAR = "JWT_SECRET"
SECRET_FILE = "jwt_secret"
#: Below this an HMAC key is guessable enough to refuse.
MIN_SECRET_BYTES = 16
#: HS256's hash size: shorter keys work but are weaker than the algorithm.
RECOMMENDED_SECRET_BYTES = 32

log = logging.getLogger("codesphere.auth")


class SecretError(ValueError):
    """The secret is missing, unreadable or too weak. The message never contains it."""


def load_secret(
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    *,
    create: bool = True,
) -> tuple[bytes, str]:
    """The signing secret and where it came from: "environment", ".env" or the file's path.

    ``JWT_SECRET`` in ``environ`` wins, then ``JWT_SECRET`` in the ``.env`` file, then
    ``data_dir/jwt_secret``, which is made (mode 0600) if missing and ``create`` is true.
    Reading ``.env`` leaves ``os.environ`` alone, so nothing else sees the secret.
    """
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR)
    if value is not None:
        return _checked(value.encode("utf-8"), "environment"), "environment"
    dotenv_file = Path.cwd() / ".env" if dotenv_path is None else dotenv_path
    value = _from_dotenv(dotenv_file)
    if value is not None:
        return _checked(value.encode("utf-8"), ".env"), ".env"
    path = data_dir / SECRET_FILE
    return _checked(_from_file(path, create), str(path)), str(path)


def _from_dotenv(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read {path}: {exc.__class__.__name__}") from None
    return values.get(ENV_VAR)


def _from_file(path: Path, create: bool) -> bytes:
    if not path.exists():
        if not create:
            raise SecretError(f"no JWT secret: set {ENV_VAR} or run a command that creates {path}")
        made = _create(path)
        if made is not None:
            log.info("created a new JWT secret in %s", path)
            return made
        # Another process made it first: use theirs, as it may already have signed tokens.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"cannot read the JWT secret file {path}: {exc.strerror}") from None
    _warn_if_shared(path)
    if not data.strip():
        raise SecretError(
            f"the JWT secret file {path} is empty: put a secret of at least "
            f"{RECOMMENDED_SECRET_BYTES} bytes in it, or delete it to have one made"
        )
    return data


def _create(path: Path) -> bytes | None:
    """Write a new secret to ``path``; ``None`` if the file appeared meanwhile.

    The secret is written to a private temporary file first and then hard-linked into place,
    which fails rather than overwrites if ``path`` exists: no process can see a half-written
    file, and two processes starting together end up with the same secret.
    """
    secret = secrets.token_urlsafe(48).encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise SecretError(f"cannot create the JWT secret file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(secret + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return None
        except OSError:
            # A file system without hard links: create the file itself, still exclusively.
            return _create_in_place(path, secret)
    except OSError as exc:
        raise SecretError(f"cannot create the JWT secret file {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return secret


def _create_in_place(path: Path, secret: bytes) -> bytes | None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return secret


def _warn_if_shared(path: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s can be read by other users: chmod 600 it", path)


def _checked(secret: bytes, source: str) -> bytes:
    secret = secret.strip()
    if not secret:
        raise SecretError(f"the JWT secret from {source} is empty")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"the JWT secret from {source} is too short ({len(secret)} bytes): it must be at "
            f"least {MIN_SECRET_BYTES} bytes, and {RECOMMENDED_SECRET_BYTES} or more is better"
        )
    if len(secret) < RECOMMENDED_SECRET_BYTES:
        log.warning(
            "the JWT secret from %s is %d bytes; HS256 wants %d or more",
            source,
            len(secret),
            RECOMMENDED_SECRET_BYTES,
        )
    return secret
