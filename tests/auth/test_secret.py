"""Loading the signing secret: which source wins, the generated file, and weak secrets refused.

Every test passes its own ``environ`` and ``.env`` path, so the machine's JWT_SECRET and the
working directory never leak in.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from codesphere.auth.secret import SecretError, load_secret

ENV_SECRET = "E" * 40
DOTENV_SECRET = "D" * 40
FILE_SECRET = "F" * 40


def write_dotenv(path: Path, secret: str) -> Path:
    path.write_text(f"OTHER=1\nJWT_SECRET={secret}\n", encoding="utf-8")
    return path


def test_environment_wins_over_dotenv_over_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt_secret").write_text(FILE_SECRET, encoding="utf-8")
    dotenv = write_dotenv(tmp_path / ".env", DOTENV_SECRET)

    env = {"JWT_SECRET": ENV_SECRET}
    assert load_secret(data, env, dotenv) == (ENV_SECRET.encode(), "environment")
    assert load_secret(data, {}, dotenv) == (DOTENV_SECRET.encode(), ".env")
    missing = tmp_path / "no.env"
    assert load_secret(data, {}, missing) == (FILE_SECRET.encode(), str(data / "jwt_secret"))


def test_dotenv_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    write_dotenv(tmp_path / ".env", DOTENV_SECRET)
    assert load_secret(tmp_path / "data", {}) == (DOTENV_SECRET.encode(), ".env")
    # read without being copied into the process environment
    assert "JWT_SECRET" not in os.environ
    assert not (tmp_path / "data").exists()


def test_environ_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET", ENV_SECRET)
    assert load_secret(tmp_path, dotenv_path=tmp_path / "no.env")[1] == "environment"


def test_whitespace_around_a_secret_is_stripped(tmp_path: Path) -> None:
    env = {"JWT_SECRET": f"  {ENV_SECRET}\n"}
    assert load_secret(tmp_path, env, tmp_path / "no.env")[0] == ENV_SECRET.encode()
    (tmp_path / "jwt_secret").write_text(f"\n{FILE_SECRET}\r\n", encoding="utf-8")
    assert load_secret(tmp_path, {}, tmp_path / "no.env")[0] == FILE_SECRET.encode()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "deep" / "data"  # parents are created too
    secret, source = load_secret(data, {}, tmp_path / "no.env")
    path = data / "jwt_secret"
    assert source == str(path)
    assert len(secret) >= 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == secret
    assert sorted(p.name for p in data.iterdir()) == ["jwt_secret"]  # no temporary left over
    assert load_secret(data, {}, tmp_path / "no.env") == (secret, source)
    other = load_secret(tmp_path / "elsewhere", {}, tmp_path / "no.env")[0]
    assert other != secret


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    """Whoever creates the file first wins; the others read it rather than overwrite it."""
    data = tmp_path / "data"
    start = threading.Barrier(8)
    results: list[bytes] = []

    def load() -> None:
        start.wait()
        results.append(load_secret(data, {}, tmp_path / "no.env")[0])

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert (data / "jwt_secret").read_bytes().strip() == results[0]


def test_no_file_is_made_when_creation_is_off(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="no JWT secret"):
        load_secret(tmp_path / "data", {}, tmp_path / "no.env", create=False)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("where", ["environment", ".env", "file"])
def test_short_secret_is_refused_without_echoing_it(tmp_path: Path, where: str) -> None:
    short = "tiny-secret-15b"
    env = {"JWT_SECRET": short} if where == "environment" else {}
    dotenv = write_dotenv(tmp_path / ".env", short) if where == ".env" else tmp_path / "no.env"
    if where == "file":
        (tmp_path / "jwt_secret").write_text(short, encoding="utf-8")
    with pytest.raises(SecretError) as caught:
        load_secret(tmp_path, env, dotenv)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert "15 bytes" in message and "at least 16 bytes" in message
    assert short not in message


def test_secret_of_16_to_31_bytes_is_accepted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s" * 20
    with caplog.at_level(logging.WARNING, logger="codesphere.auth"):
        assert load_secret(tmp_path, {"JWT_SECRET": secret}, tmp_path / "no.env")[0] == b"s" * 20
    assert "32" in caplog.text and "20 bytes" in caplog.text
    assert secret not in caplog.text


def test_32_byte_secret_is_accepted_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="codesphere.auth"):
        load_secret(tmp_path, {"JWT_SECRET": "x" * 32}, tmp_path / "no.env")
    assert caplog.text == ""


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_empty_secret_file_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "jwt_secret").write_bytes(content)
    with pytest.raises(SecretError, match="is empty"):
        load_secret(tmp_path, {}, tmp_path / "no.env")
    assert (tmp_path / "jwt_secret").read_bytes() == content  # not replaced behind our back


def test_empty_variable_is_refused_rather_than_skipped(tmp_path: Path) -> None:
    """An empty JWT_SECRET is a mistake to report, not a reason to fall back to the file."""
    with pytest.raises(SecretError, match="from environment is empty"):
        load_secret(tmp_path, {"JWT_SECRET": ""}, tmp_path / "no.env")
    with pytest.raises(SecretError, match=r"from \.env is empty"):
        load_secret(tmp_path, {}, write_dotenv(tmp_path / ".env", ""))


def test_unreadable_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt_secret").mkdir()
    with pytest.raises(SecretError, match="cannot read the JWT secret file"):
        load_secret(tmp_path, {}, tmp_path / "no.env")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_secret_file_readable_by_others_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jwt_secret"
    path.write_text(FILE_SECRET, encoding="utf-8")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="codesphere.auth"):
        assert load_secret(tmp_path, {}, tmp_path / "no.env")[0] == FILE_SECRET.encode()
    assert "chmod 600" in caplog.text
