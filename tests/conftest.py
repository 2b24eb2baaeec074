"""Shared fixtures: a fresh database per test on SQLite *and* PostgreSQL, shared data, CLI runner.

PostgreSQL and Redis are real (tests/servers.py: the configured servers, or throwaway ones this
session starts when none answers). Each PostgreSQL test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._common import pg_admin_url
from bench._common import redis_url as redis_url  # tests take Redis addresses from here
from covidnews.store import Store
from tests import servers

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COVIDNEWS_SHARED_DATA", ROOT.parent / "shared" / "data"))

_SERVERS = pytest.StashKey["servers.Throwaway"]()
_SAID = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    """Before collection: make sure a PostgreSQL and a Redis server answer (tests/servers.py)."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    try:
        owner, said = servers.ensure()
    except servers.ServerError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SERVERS] = owner
    config.stash[_SAID] = said


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash.get(_SAID, [])


def pytest_unconfigure(config: pytest.Config) -> None:
    owner = config.stash.get(_SERVERS, None)
    if owner is not None:
        owner.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "README.md").exists():
        pytest.fail(f"shared data not found at {SHARED} (set COVIDNEWS_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[object]:
    url = pg_admin_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the suite needs the real server: fail loudly, never skip
        pytest.fail(f"PostgreSQL not reachable at {url}: {exc}")
    yield engine
    engine.dispose()


def _fresh_pg_database(pg_admin: object) -> Iterator[str]:
    name = f"covidnews_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'covidnews.db'}"
    else:
        yield from _fresh_pg_database(request.getfixturevalue("pg_admin"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running `covidnews` against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_DATABASE_URL=db_url,
        PYTHONUNBUFFERED="1",
        # Collector tests test collecting; the NLP stages have their own tests.
        COVIDNEWS_PROCESS_ON_INGEST="false",
    )
    return env


def run_cli(
    *args: str,
    env: dict[str, str],
    input: bytes | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the real `covidnews` command in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "covidnews", *args],
        env=env,
        input=input,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or ROOT,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With COVIDNEWS_TEST_STRICT=1 (`make test`, CI) a skipped test fails: a missing package,
    binary or service must not hide a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        report.skipped
        and os.environ.get("COVIDNEWS_TEST_STRICT") == "1"
        and call.when in {"setup", "call"}
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped, which strict mode forbids: {report.longrepr}"


# A processed search corpus (real text, real pipeline: apertium + e5 + classifier) -------------


class Corpus:
    """The processed corpus of tests/corpus.py: its settings, store URL and article ids by URL."""

    def __init__(self, settings: object, rows: list[dict[str, object]], ids: dict[str, int]):
        self.settings = settings
        self.rows = rows
        self.ids = ids

    @property
    def url(self) -> str:
        return str(self.settings.database_url)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Corpus:
    """Built once per session on SQLite (about a minute: every article goes through the NLP)."""
    from sqlalchemy import select

    from covidnews.ingest import ingest_path
    from covidnews.schema import Article
    from covidnews.settings import load_settings
    from nlp_worker.process import process_pending
    from tests.corpus import build_corpus, write_jsonl

    root = tmp_path_factory.mktemp("corpus")
    settings = load_settings(
        data_dir=root / "var",
        database_url=f"sqlite:///{root / 'covidnews.db'}",
        process_on_ingest=False,
        broker_url=None,
    )
    rows = build_corpus(shared_data)
    store = Store(settings.database_url)
    store.migrate()
    report = ingest_path(store, write_jsonl(rows, root / "corpus.jsonl"))
    assert report.ok and report.inserted == len(rows), report.as_dict()
    result = process_pending(store, settings)
    assert result.failed == 0 and result.done == len(rows)
    with store.session() as s:
        ids = {url: i for i, url in s.execute(select(Article.id, Article.url))}
    store.close()
    return Corpus(settings, rows, ids)


@pytest.fixture(scope="session")
def corpus_pg(
    corpus: Corpus, pg_admin: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    """The same processed rows copied into PostgreSQL, indexes built from there."""
    from covidnews.follow import Follower
    from covidnews.settings import load_settings
    from nlp_worker.stages import Backends
    from tests.corpus import copy_store

    gen = _fresh_pg_database(pg_admin)
    url = next(gen)
    try:
        s = Store(url)
        s.migrate()
        copy_store(corpus.url, url)
        settings = load_settings(
            data_dir=tmp_path_factory.mktemp("corpus_pg") / "var",
            database_url=url,
            process_on_ingest=False,
            broker_url=None,
        )
        model = Backends.from_settings(settings).embedder.model_id
        assert Follower.from_settings(settings, s, model).poll().bootstrapped
        s.close()
        yield Corpus(settings, corpus.rows, corpus.ids)
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)
