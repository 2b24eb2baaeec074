from __future__ import annotations

from pathlib import Path

import pytest

from covidnews.settings import SettingsError, load_settings, mask_url
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("COVIDNEWS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_embedded_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = load_settings()
    assert s.data_dir == tmp_path / "var"
    assert s.data_dir.is_absolute()
    assert s.db_url == f"sqlite:///{tmp_path / 'var' / 'covidnews.db'}"
    assert s.is_sqlite
    assert s.embedded
    assert s.index_dir == tmp_path / "var" / "index"


def test_env_prefix_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "COVIDNEWS_DATA_DIR=/srv/news\nCOVIDNEWS_BROKER_URL=redis://127.0.0.1:6379/0\n"
    )
    s = load_settings()
    assert s.data_dir == Path("/srv/news")
    assert not s.embedded
    monkeypatch.setenv("COVIDNEWS_DATA_DIR", str(tmp_path / "other"))
    assert load_settings().data_dir == tmp_path / "other"  # environment beats .env


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u:p@h:5433/db", "postgresql+psycopg://u:p@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_switches_backend(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("COVIDNEWS_DATABASE_URL", given)
    s = load_settings()
    assert s.db_url == expected
    assert s.is_sqlite == expected.startswith("sqlite")


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVIDNEWS_BROKER_URL", "")
    monkeypatch.setenv("COVIDNEWS_DATABASE_URL", "  ")
    s = load_settings()
    assert s.embedded
    assert s.is_sqlite


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("COVIDNEWS_DATABASE_URL", "mysql://root@localhost/x"),
        ("COVIDNEWS_BROKER_URL", "http://broker"),
        ("COVIDNEWS_REDIS_URL", "memcached://x"),
        ("COVIDNEWS_INGEST_BATCH_SIZE", "0"),
        ("COVIDNEWS_INGEST_BATCH_SIZE", "many"),
        ("COVIDNEWS_LOG_LEVEL", "loud"),
    ],
)
def test_invalid_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        load_settings()


def test_cli_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "COVIDNEWS_DATABASE_URL": "oracle://x", "HOME": str(tmp_path)}
    proc = run_cli("stats", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "COVIDNEWS_DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_mask_url_hides_password() -> None:
    assert mask_url("postgresql+psycopg://u:s3cret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
