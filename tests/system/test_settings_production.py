"""Settings: production refuses to start without its secrets; the embedded default keeps its
generated secrets in the data directory (mode 0600), never in the repository.

Each case runs ``django.setup()`` in a fresh interpreter, because settings are read once per
process."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_FILES = ("kek", "secret_key", "orderer_key")
CONFIG_VARS = (
    "GRIDCOIN_ENV", "SECRET_KEY", "GRIDCOIN_KEK", "GRIDCOIN_ORDERER_KEY", "DATABASE_URL", "REDIS_URL", "MQTT_URL",
    "GRIDCOIN_DATA_DIR", "XDG_DATA_HOME", "GRIDCOIN_SQLITE_PATH", "GRIDCOIN_SQLITE_TEST_PATH",
    "DJANGO_SETTINGS_MODULE", "DEBUG",
)
SETUP = "import django; django.setup(); from django.conf import settings as s; print('KEK=' + s.GRIDCOIN_KEK)"


def b64_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def run_setup(tmp_path: Path, umask: int | None = None, **env: str) -> subprocess.CompletedProcess:
    """``django.setup()`` with only the given configuration (nothing leaks in from this process)."""
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    clean.setdefault("HOME", str(tmp_path / "home"))
    clean.update(DJANGO_SETTINGS_MODULE="gridcoin.settings", PYTHONDONTWRITEBYTECODE="1", **env)
    return subprocess.run(
        [sys.executable, "-c", SETUP], cwd=REPO_ROOT, env=clean, capture_output=True, text=True, timeout=120,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def production(tmp_path: Path, **env: str) -> dict[str, str]:
    return {"GRIDCOIN_ENV": "production", "GRIDCOIN_DATA_DIR": str(tmp_path / "data"), **env}


def all_secrets() -> dict[str, str]:
    return {"SECRET_KEY": "s" * 50, "GRIDCOIN_KEK": b64_key(), "GRIDCOIN_ORDERER_KEY": b64_key(),
            "DATABASE_URL": "postgres://gridcoin@127.0.0.1:5432/gridcoin"}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "GRIDCOIN_KEK", "GRIDCOIN_ORDERER_KEY", "DATABASE_URL"])
def test_production_refuses_to_start_without_each_secret(tmp_path, missing):
    env = all_secrets()
    del env[missing]
    proc = run_setup(tmp_path, **production(tmp_path, **env))
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert missing in proc.stderr
    assert "KEK=" not in proc.stdout


def test_production_treats_an_empty_secret_as_missing(tmp_path):
    proc = run_setup(tmp_path, **production(tmp_path, **{**all_secrets(), "GRIDCOIN_KEK": ""}))
    assert proc.returncode != 0
    assert "GRIDCOIN_KEK" in proc.stderr


def test_production_without_any_secret_names_secret_key_first(tmp_path):
    proc = run_setup(tmp_path, **production(tmp_path))
    assert proc.returncode != 0
    assert "SECRET_KEY" in proc.stderr


def test_production_without_kek_names_the_kek(tmp_path):
    proc = run_setup(tmp_path, **production(tmp_path, SECRET_KEY="s" * 50))
    assert proc.returncode != 0
    assert "GRIDCOIN_KEK" in proc.stderr


def test_production_without_orderer_key_names_it(tmp_path):
    proc = run_setup(tmp_path, **production(tmp_path, SECRET_KEY="s" * 50, GRIDCOIN_KEK=b64_key()))
    assert proc.returncode != 0
    assert "GRIDCOIN_ORDERER_KEY" in proc.stderr


def test_production_starts_with_every_secret_and_generates_nothing(tmp_path):
    env = all_secrets()
    proc = run_setup(tmp_path, **production(tmp_path, **env))
    assert proc.returncode == 0, proc.stderr
    assert f"KEK={env['GRIDCOIN_KEK']}" in proc.stdout
    # Production uses only what it is given: no data directory, no generated secret files.
    assert not (tmp_path / "data").exists()
    home = tmp_path / "home"
    assert not home.exists() or not any(home.rglob("kek"))


def test_embedded_default_generates_secrets_in_the_data_dir_with_mode_0600(tmp_path):
    data_dir = tmp_path / "data"
    # A permissive umask must not loosen the files' permissions.
    proc = run_setup(tmp_path, umask=0o000, GRIDCOIN_DATA_DIR=str(data_dir))
    assert proc.returncode == 0, proc.stderr
    for name in SECRET_FILES:
        path = data_dir / name
        assert path.is_file(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    kek = (data_dir / "kek").read_text().strip()
    assert len(base64.b64decode(kek, validate=True)) == 32
    assert len(base64.b64decode((data_dir / "orderer_key").read_text().strip(), validate=True)) == 32
    assert f"KEK={kek}" in proc.stdout

    # The same key on the next start (custodial keys sealed under it must stay openable).
    again = run_setup(tmp_path, GRIDCOIN_DATA_DIR=str(data_dir))
    assert again.returncode == 0, again.stderr
    assert f"KEK={kek}" in again.stdout


def test_embedded_default_data_dir_is_outside_the_repository(tmp_path):
    home = tmp_path / "home"
    proc = run_setup(tmp_path, HOME=str(home))
    assert proc.returncode == 0, proc.stderr
    kek_file = home / ".local" / "share" / "gridcoin" / "kek"
    assert kek_file.is_file()
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    assert f"KEK={kek_file.read_text().strip()}" in proc.stdout
    assert not (REPO_ROOT / "kek").exists()

    xdg = tmp_path / "xdg"
    proc = run_setup(tmp_path, XDG_DATA_HOME=str(xdg))
    assert proc.returncode == 0, proc.stderr
    assert (xdg / "gridcoin" / "kek").is_file()


def test_an_explicit_kek_is_used_and_not_written_to_disk(tmp_path):
    kek = b64_key()
    data_dir = tmp_path / "data"
    proc = run_setup(tmp_path, GRIDCOIN_DATA_DIR=str(data_dir), GRIDCOIN_KEK=kek)
    assert proc.returncode == 0, proc.stderr
    assert f"KEK={kek}" in proc.stdout
    assert not (data_dir / "kek").exists()


def test_no_secret_file_is_tracked_or_trackable_by_git():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()
    assert listed, "git ls-files returned nothing; is this the repository root?"
    offenders = [p for p in listed if Path(p).name in SECRET_FILES]
    assert offenders == []
