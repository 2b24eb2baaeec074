"""What the endpoints use: settings, the store and the search engine, one of each per process.

``services()`` returns the app's :class:`Services` (``app.extensions["covidnews"]``). The store and
the search engine are created on first use, once per process, under a lock (threaded workers).
Under gunicorn's ``preload_app`` the master may create them before forking; a worker that
inherits a store drops the inherited database connections (never shared across processes) and
keeps the engine (its models are read-only memory, shared copy-on-write).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from covidnews.search.engine import SearchEngine
    from covidnews.settings import Settings
    from covidnews.store import Store

log = logging.getLogger(__name__)

EXTENSION = "covidnews"


class Services:
    """Per-process shared objects of one app."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = settings
        self._migrate = migrate
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._engine: SearchEngine | None = None
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        """In a forked worker: forget the parent's pooled connections (never close them)."""
        pid = os.getpid()
        if pid == self._pid:
            return
        with self._lock:
            if pid == self._pid:
                return
            if self._store is not None:
                self._store.engine.dispose(close=False)
            self._pid = pid

    @property
    def store(self) -> Store:
        """The store (migrated to the current schema on first use, like every command)."""
        self._after_fork()
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                from covidnews.store import Store

                store = Store.from_settings(self.settings)
                if self._migrate:
                    try:
                        store.ensure_schema()
                    except Exception:
                        store.close()
                        raise
                self._store = store
            return self._store

    @property
    def engine_loaded(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> SearchEngine:
        """The search engine (``covidnews.search.engine.SearchEngine``), built on first use."""
        self._after_fork()
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                from covidnews.search.engine import SearchEngine

                self._engine = SearchEngine.from_settings(self.settings, self.store)
            return self._engine

    def warm(self) -> None:
        """Build the store and engine now (before forking workers); failures are only logged."""
        try:
            _ = self.engine
        except Exception as exc:
            log.warning("search engine not preloaded (will retry on first use): %s", exc)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            close = getattr(self._engine, "close", None)
            if callable(close):
                close()
            self._engine = None


def init_app(app: Flask, settings: Settings) -> Services:
    svc = Services(settings, migrate=bool(app.config.get("COVIDNEWS_MIGRATE", True)))
    app.extensions[EXTENSION] = svc
    return svc


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    svc = current_app.extensions[EXTENSION]
    assert isinstance(svc, Services)
    return svc
