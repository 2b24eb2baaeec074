"""``covidnews follow`` and ``covidnews index``: this node's indexes, following the store.

Every API node (and the single machine of the default setup) keeps its own keyword and vector
indexes in ``COVIDNEWS_DATA_DIR`` in step with the store (:mod:`covidnews.follow`).
``covidnews serve`` runs the follower next to the API; ``covidnews follow`` runs it alone.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load, open_store


@click.command()
@click.option("--once", is_flag=True, help="Catch up once and exit (default: keep following).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=None,
    help="Seconds between two reads of the store's changes (default: COVIDNEWS_FOLLOW_INTERVAL).",
)
@click.option(
    "--keep-alive",
    is_flag=True,
    help="Run the follower as a child process and start it again whenever it dies "
    "(what `covidnews serve` does).",
)
def follow(once: bool, interval: float | None, keep_alive: bool) -> None:
    """Keep this node's indexes in step with the store.

    A node without indexes first builds them from the store (bootstrap), then applies the
    store's changes — new, edited and deleted articles — as they commit. Killed at any point,
    it resumes from its last position; nothing is lost or indexed twice. SIGTERM stops it
    after the current batch.
    """
    from covidnews.follow import Follower

    if keep_alive:
        _keep_alive(["--interval", str(interval)] if interval else [])
        return
    settings = load()
    store = open_store(settings)
    try:
        follower = Follower.from_settings(settings, store)
        if once:
            report = follower.poll()
            click.echo(json.dumps(report.__dict__))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        follower.run(interval or settings.follow_interval, stop)
    finally:
        store.close()


@click.group()
def index() -> None:
    """This node's indexes: status, snapshots for new nodes."""


@index.command()
def status() -> None:
    """Print this node's position, lag and index sizes as JSON."""
    from covidnews.follow import ChangeFeed, lag_seconds, read_state

    settings = load()
    state = read_state(settings.data_dir)
    out: dict[str, Any] = {"bootstrapped": state is not None, "state": state}
    out["lag_seconds"] = lag_seconds(settings.data_dir)
    if state is not None:
        store = open_store(settings)
        try:
            out["pending_changes"] = ChangeFeed(store).pending(state["position"])
        finally:
            store.close()
    click.echo(json.dumps(out, indent=2))


@index.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def snapshot(file: Path) -> None:
    """Write this node's indexes and position to FILE (a tar), for a new node to start from."""
    from covidnews.follow import Follower

    settings = load()
    store = open_store(settings)
    try:
        state = Follower.from_settings(settings, store).snapshot(file)
    except RuntimeError as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None
    finally:
        store.close()
    click.echo(f"snapshot {file}: {state.get('documents')} documents, position {state['position']}")


@index.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace indexes this node already has.")
def restore(file: Path, force: bool) -> None:
    """Unpack a snapshot FILE into this node's data directory; following resumes from its
    position (changes since the snapshot are applied by the follower)."""
    import tarfile

    from covidnews.follow import restore_snapshot

    settings = load()
    try:
        state = restore_snapshot(settings.data_dir, file, force=force)
    except (RuntimeError, tarfile.TarError, OSError) as exc:
        raise CommandError(str(exc), EXIT_INPUT) from None
    click.echo(f"restored {file}: {state.get('documents')} documents, position {state['position']}")


def _keep_alive(args: list[str]) -> None:
    """``covidnews follow`` as a child, restarted 2 s after it dies; SIGTERM/SIGINT stop both."""
    import logging
    import subprocess
    import sys

    log = logging.getLogger(__name__)
    stop = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def on_signal(*_: object) -> None:
        stop.set()
        if child and child[0].poll() is None:
            child[0].terminate()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    while not stop.is_set():
        proc = subprocess.Popen([sys.executable, "-m", "covidnews", "follow", *args])
        child[:] = [proc]
        while (code := proc.poll()) is None:
            if os.getppid() != parent:  # the server died (even SIGKILL): do not outlive it
                on_signal()
            stop.wait(0.5)
        if not stop.is_set():
            log.warning("index follower exited (%s); restarting", code)
            stop.wait(2.0)
