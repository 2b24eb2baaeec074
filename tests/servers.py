"""The PostgreSQL and Redis servers the suite talks to: the configured ones when they answer,
otherwise throwaway servers started for this session from the installed binaries.

``COVIDNEWS_TEST_POSTGRES_URL`` (an admin connection; each test makes and drops its own database)
and ``COVIDNEWS_TEST_REDIS_URL`` (a server; each test picks its own database number) name the
servers; defaults are the local ones on 127.0.0.1. When one does not answer, :func:`ensure` starts
a server of our own on a free port in a temporary directory and points the variable at it, so
in-process tests, CLI subprocesses, Celery workers and benchmarks all find it. Those servers are
stopped and removed when the session ends.

Our own rather than pytest-postgresql/pytest-redis: ``initdb``/``pg_ctl`` refuse to run as root
(CI runs as root; dbfixtures/pytest-postgresql#455), and the address must be in the environment
before collection, where session fixtures come too late for subprocess-based tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import DEFAULT_PG_URL, DEFAULT_REDIS_URL

PG_ENV = "COVIDNEWS_TEST_POSTGRES_URL"
REDIS_ENV = "COVIDNEWS_TEST_REDIS_URL"
START_TIMEOUT = 60.0


class ServerError(RuntimeError):
    """No server answers and none could be started; the message says what to install."""


def postgres_reachable(url: str) -> bool:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    try:
        with psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password or None,
            dbname=u.database or "postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise ServerError(
            f"no PostgreSQL answers at ${PG_ENV} and {name!r} is not installed: run "
            "scripts/install-system-deps test (or set the variable to a server of yours)"
        )
    return candidates[-1]


def _wait(check: Callable[[], bool], what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServerError(f"{what} did not start within {START_TIMEOUT:.0f} s\n{tail}")


@dataclass
class Throwaway:
    """Servers this session started; :meth:`stop` removes them."""

    stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def stop(self) -> None:
        for _, stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                stop()
        self.stops.clear()


def start_postgres(owner: Throwaway) -> str:
    """initdb + pg_ctl start on a free port; returns the admin URL (database ``test``)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="covidnews-test-pg-"))
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:  # the server refuses root: run it as the packaged `postgres` user
        name = "postgres" if _user_exists("postgres") else "nobody"
        user = pwd.getpwnam(name)
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data, log, port = root / "data", root / "server.log", _free_port()
    subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C.UTF-8"],
        check=True, capture_output=True, cwd=root, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=200 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        check=True, capture_output=True, cwd=root, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip

    def stop() -> None:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, cwd=root, timeout=60, **run_as,  # type: ignore[call-overload]
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)

    owner.stops.append(("postgresql", stop))
    admin = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    _wait(lambda: postgres_reachable(admin), "PostgreSQL", log)
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("CREATE DATABASE test")
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def start_redis(owner: Throwaway) -> str:
    """redis-server on a free port, nothing on disk; returns its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerError(
            f"no Redis answers at ${REDIS_ENV} and redis-server is not installed: run "
            "scripts/install-system-deps test (or set the variable to a server of yours)"
        )
    root = Path(tempfile.mkdtemp(prefix="covidnews-test-redis-"))
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root), "--logfile", str(root / "server.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)

    owner.stops.append(("redis", stop))
    url = f"redis://127.0.0.1:{port}"
    _wait(lambda: redis_reachable(url), "Redis", root / "server.log")
    return url


def ensure() -> tuple[Throwaway, list[str]]:
    """Make both variables name a server that answers; returns what to stop and a line per
    server saying which is used."""
    owner = Throwaway()
    said: list[str] = []
    try:
        pg = os.environ.get(PG_ENV, DEFAULT_PG_URL)
        if postgres_reachable(pg):
            os.environ[PG_ENV] = pg
            said.append(f"PostgreSQL: {_safe(pg)}")
        else:
            os.environ[PG_ENV] = started = start_postgres(owner)
            said.append(f"PostgreSQL: none at {_safe(pg)}; started a throwaway one at {started}")
        rd = os.environ.get(REDIS_ENV, DEFAULT_REDIS_URL)
        if redis_reachable(rd):
            os.environ[REDIS_ENV] = rd
            said.append(f"Redis: {rd}")
        else:
            os.environ[REDIS_ENV] = started = start_redis(owner)
            said.append(f"Redis: none at {rd}; started a throwaway one at {started}")
    except BaseException:
        owner.stop()
        raise
    return owner, said


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
