"""The suite brings its own PostgreSQL and Redis when none answers (tests/servers.py)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from tests import servers
from tests.conftest import ROOT


@pytest.mark.slow
def test_a_session_without_servers_starts_and_removes_its_own() -> None:
    """A nested pytest run pointed at addresses where nothing listens: it starts throwaway
    servers, its PostgreSQL and Redis tests pass against them, and nothing is left behind."""
    dead_pg = f"postgresql+psycopg://postgres@127.0.0.1:{servers.free_port()}/test"
    dead_redis = f"redis://127.0.0.1:{servers.free_port()}"
    assert not servers.postgres_reachable(dead_pg) and not servers.redis_reachable(dead_redis)
    before = set(glob.glob("/tmp/covidnews-test-*"))
    env = dict(os.environ, COVIDNEWS_TEST_POSTGRES_URL=dead_pg, COVIDNEWS_TEST_REDIS_URL=dead_redis)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
         "tests/covidnews/test_store.py::test_insert_then_same_again_is_a_no_op",
         "tests/api/test_security.py::test_redis_limit_is_shared_by_two_apps"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "3 passed" in out, out[-3000:]  # the store test on both backends + the Redis test
    assert "PostgreSQL: none at" in out and "started a throwaway one" in out
    assert "Redis: none at" in out
    assert set(glob.glob("/tmp/covidnews-test-*")) == before  # data directories removed
    # and the servers are gone: their ports no longer answer
    started = [line.rsplit(" ", 1)[-1] for line in out.splitlines() if "throwaway one at" in line]
    assert len(started) == 2
    assert not servers.postgres_reachable(started[0])
    assert not servers.redis_reachable(started[1])


def test_a_running_server_is_used_as_it_is() -> None:
    """The session's own servers answer (started or not), and they are what the variables name."""
    assert servers.postgres_reachable(os.environ[servers.PG_ENV])
    assert servers.redis_reachable(os.environ[servers.REDIS_ENV])
