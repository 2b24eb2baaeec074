"""What every subcommand needs: settings, logging and an open, migrated store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from covidnews.settings import Settings
    from covidnews.store import Store

EXIT_INPUT = 1
EXIT_SETTINGS = 2
EXIT_STORE = 3


class CommandError(click.ClickException):
    """A clean error: message on stderr, chosen exit status, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.__dict__["exit_code"] = exit_code  # ClickException declares it as a class default


def load() -> Settings:
    from covidnews.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None
    from covidnews.logging import setup_from_settings

    setup_from_settings(settings)  # text or JSON lines on stderr (COVIDNEWS_LOG_FORMAT)
    return settings


def terse_logging(settings: Settings) -> None:
    """For commands that report in their own words (``demo``): only warnings and errors from the
    logs, unless COVIDNEWS_LOG_LEVEL asks for more."""
    import logging
    import os

    if "COVIDNEWS_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)
        os.environ["COVIDNEWS_LOG_LEVEL"] = "WARNING"  # for what it runs next (the server)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The configured store, migrated to the current schema (a fresh data dir just works)."""
    from covidnews.store import Store, StoreError

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"COVIDNEWS_DATA_DIR {settings.data_dir} is not usable: {exc}", EXIT_SETTINGS
        ) from None
    store = Store(settings.db_url)
    if migrate:
        try:
            store.ensure_schema()
        except StoreError as exc:
            raise CommandError(str(exc), EXIT_STORE) from None
    return store
