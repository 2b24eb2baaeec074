"""``covidnews serve``: the API under gunicorn (the production server).

The app (and the search engine's models) load once in the master before the workers fork
(``preload_app``). SIGTERM stops gracefully: workers finish their requests (up to
``--graceful-timeout``), then the process exits 0. With several workers, metrics are shared
through ``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory unless already set).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import click

from covidnews.commands._common import EXIT_SETTINGS, CommandError, load, open_store

if TYPE_CHECKING:
    from apiflask import APIFlask

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'


SWITCH_INTERVAL = 0.001  # seconds


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's CPU set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port; the URL printed says which).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (each shares the preloaded models copy-on-write). "
    "Default: one per CPU core this process may use.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads per worker.",
)
@click.option(
    "--timeout", type=click.IntRange(min=1), default=60, show_default=True, help="Request timeout."
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Seconds workers get to finish their requests after SIGTERM.",
)
@click.option(
    "--preload-engine/--no-preload-engine",
    default=True,
    show_default=True,
    help="Load the search engine (models, index) before forking, not on the first search.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Run this node's index follower (`covidnews follow`) next to the API, restarted if it "
    "dies. --no-follow when another process follows for this data directory.",
)
def serve(
    host: str,
    port: int,
    workers: int | None,
    threads: int,
    timeout: int,
    graceful_timeout: int,
    preload_engine: bool,
    access_log: bool,
    follow: bool,
) -> None:
    """Serve the search API (and its docs at /api/docs) with gunicorn.

    Rate limits are per process unless COVIDNEWS_REDIS_URL is set (then shared by all workers
    and machines). Put a reverse proxy in front for TLS; set COVIDNEWS_API_TRUSTED_PROXIES so
    client addresses are read from X-Forwarded-For.

    The node's indexes (COVIDNEWS_DATA_DIR) follow the store: a new node bootstraps them first,
    and /readyz answers 503 until it has caught up (COVIDNEWS_INDEX_MAX_LAG).
    """
    settings = load()
    if workers is None:
        # Searching is CPU work under the GIL: one process per core uses the machine.
        workers = cpu_count()
    # Each request releases the GIL many times (a tantivy call, an SQLite row) and must win it
    # back from the worker's other threads: with the default 5 ms switch interval a request
    # waits behind its siblings' CPU work (a convoy). 1 ms: ~20 % more search requests/s with
    # 8 clients on 2 workers × 4 threads (docs/benchmarks.md). Forked workers inherit it.
    sys.setswitchinterval(SWITCH_INTERVAL)
    if settings.log_format == "json":
        from covidnews.logging import setup_logging

        setup_logging(settings.log_level, "json", reformat=True)
    else:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(LOG_FORMAT, defaults={"request_id": "-"}))
    store = open_store(settings)  # a clean error (exit 3) now rather than 503s later
    store.close()

    made_dir: str | None = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made_dir = tempfile.mkdtemp(prefix="covidnews-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made_dir  # before prometheus_client loads
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # pragma: no cover - the api extra is missing
        raise CommandError(
            "gunicorn is not installed: pip install 'covidnews[api]'", EXIT_SETTINGS
        ) from None

    class Server(BaseApplication):  # type: ignore[misc]
        def __init__(self, options: dict[str, Any]) -> None:
            self.options = options
            self.application: APIFlask | None = None
            super().__init__()

        def load_config(self) -> None:
            for key, value in self.options.items():
                if key in self.cfg.settings and value is not None:
                    self.cfg.set(key, value)

        def load(self) -> APIFlask:
            if self.application is None:
                from api import create_app

                self.application = create_app({"SETTINGS": settings})
                if preload_engine:
                    self.application.extensions["covidnews"].warm()
            return self.application

    follower = FollowerProcess() if follow else None

    def when_ready(server: Any) -> None:  # Any: gunicorn is untyped (an Arbiter)
        for listener in server.LISTENERS:
            address = listener.sock.getsockname()
            url = f"http://{_bind(address[0], address[1])}"
            click.echo(f"covidnews API listening on {url}/ (docs: {url}/api/docs)")
        sys.stdout.flush()

    def child_exit(_server: Any, worker: Any) -> None:  # gunicorn's Arbiter and Worker
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    options: dict[str, Any] = {
        "bind": [_bind(host, port)],
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": graceful_timeout,
        "preload_app": True,
        "accesslog": "-" if access_log else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "covidnews-api",
        "when_ready": when_ready,
        "child_exit": child_exit,
        "on_exit": lambda _server: follower.stop() if follower is not None else None,
        "control_socket_disable": True,
    }
    owner = os.getpid()
    if follower is not None:
        follower.start()
    try:
        Server(options).run()
    finally:
        # Workers are forks that leave through here too: only the master cleans up.
        if os.getpid() == owner:
            if follower is not None:
                follower.stop()
            if made_dir is not None:
                shutil.rmtree(made_dir, ignore_errors=True)


class FollowerProcess:
    """``covidnews follow --keep-alive`` beside the server: a small process that runs the
    follower and starts it again when it dies. Started before gunicorn forks its workers: a
    subprocess started from a thread of a forking server can leave its exec pipe in a forked
    worker, and wait on it for ever."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "covidnews", "follow", "--keep-alive"]
            )

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
