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


def free_port() -> int:
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


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of our own (initdb), which a test may stop and start again."""

    root: Path
    port: int
    run_as: dict[str, object]

    @property
    def url(self) -> str:
        """The database ``test`` (created by :func:`create_postgres`)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [_postgres_bin("pg_ctl"), "-D", str(self.root / "data"), *args],
            capture_output=True, cwd=self.root, timeout=90, **self.run_as,  # type: ignore[call-overload]
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        done = self._pg_ctl(
            "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start"
        )
        if done.returncode != 0:
            raise ServerError(f"pg_ctl start failed: {done.stderr.decode(errors='replace')}")
        admin = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        _wait(lambda: postgres_reachable(admin), "PostgreSQL", self.root / "server.log")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are closed, the server shuts down cleanly; ``immediate``: as
        after a crash (recovery at the next start)."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def create_postgres() -> PostgresCluster:
    """initdb + start on a free port, with a database ``test``."""
    root = Path(tempfile.mkdtemp(prefix="covidnews-test-pg-"))
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:  # the server refuses root: run it as the packaged `postgres` user
        name = "postgres" if _user_exists("postgres") else "nobody"
        user = pwd.getpwnam(name)
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    subprocess.run(
        [_postgres_bin("initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True, cwd=root, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip
    cluster = PostgresCluster(root, free_port(), run_as)
    cluster.start()
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("CREATE DATABASE test")
    return cluster


def start_postgres(owner: Throwaway) -> str:
    """A cluster of our own for the session; returns its admin URL (database ``test``)."""
    cluster = create_postgres()
    owner.stops.append(("postgresql", cluster.remove))
    return cluster.url


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class RedisServer:
    """redis-server of our own on a fixed port, keeping nothing on disk, so a restart comes
    back empty; a test may kill it and start it again."""

    root: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="covidnews-test-redis-"))
    )
    port: int = field(default_factory=lambda: free_port())
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError(
                f"no Redis answers at ${REDIS_ENV} and redis-server is not installed: run "
                "scripts/install-system-deps test (or set the variable to a server of yours)"
            )
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root),
             "--logfile", str(self.root / "server.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: redis_reachable(self.url), "Redis", self.root / "server.log")

    def kill(self) -> None:
        """SIGKILL: what it held in memory is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def remove(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis(owner: Throwaway) -> str:
    """A Redis server of our own for the session; returns its URL."""
    server = RedisServer()
    server.start()
    owner.stops.append(("redis", server.remove))
    return server.url


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
