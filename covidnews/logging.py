"""Logging for every entry point: text or JSON lines (``COVIDNEWS_LOG_FORMAT``).

Records made while a Celery task runs carry its ``task_id`` (Celery's ``current_task``); records
made while the API handles a request carry its ``request_id`` (flask ``g``, set by
:mod:`api.ops`). In text mode they appear in brackets; in JSON mode as fields. Neither Celery nor
Flask is imported here: their context is read only when they are already loaded.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covidnews.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
#: LogRecord attributes that are not "extra" fields
_STANDARD = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime", "context", "task_id", "request_id", "taskName"}
)


def current_task_id() -> str | None:
    """The id of the Celery task running in this thread, if any."""
    celery_task = sys.modules.get("celery._state")
    if celery_task is None:
        return None
    try:
        task = celery_task.get_current_task()
        request = getattr(task, "request", None) if task is not None else None
        task_id = getattr(request, "id", None)
    except Exception:  # never let logging fail a task
        return None
    return str(task_id) if task_id else None


def current_request_id() -> str | None:
    """The id of the API request handled in this thread, if any."""
    flask = sys.modules.get("flask")
    if flask is None:
        return None
    try:
        if not flask.has_request_context():
            return None
        value = flask.g.get("request_id")
    except Exception:
        return None
    return str(value) if value else None


class ContextFilter(logging.Filter):
    """Adds ``task_id`` and ``request_id`` (None when absent) and a text ``context`` to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        task_id = getattr(record, "task_id", None) or current_task_id()
        request_id = getattr(record, "request_id", None)
        if not request_id or request_id == "-":
            request_id = current_request_id()
        record.task_id = task_id
        record.request_id = request_id
        parts = [f"task={task_id}" if task_id else "", f"req={request_id}" if request_id else ""]
        shown = " ".join(p for p in parts if p)
        record.context = f" [{shown}]" if shown else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, task_id/request_id when set,
    exc (traceback) and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key in ("task_id", "request_id"):
            value = getattr(record, key, None)
            if value and value != "-":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        return json.dumps(out, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, defaults={"context": ""})


class LibraryFilter(logging.Filter):
    """Drops the records of :data:`QUIET_LIBRARIES` below their floor, unless ``debug``. A filter
    on our handlers rather than logger levels: Scrapy (re)sets its loggers to DEBUG whenever a
    crawler process starts."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug:
            return True
        name = record.name
        while True:
            floor = QUIET_LIBRARIES.get(name)
            if floor is not None:
                return record.levelno >= floor
            if "." not in name:
                return True
            name = name.rsplit(".", 1)[0]


def configure_handler(handler: logging.Handler, log_format: str, debug: bool = False) -> None:
    """Give ``handler`` our formatter, context filter and library filter (idempotent)."""
    handler.setFormatter(formatter(log_format))
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    library = next((f for f in handler.filters if isinstance(f, LibraryFilter)), None)
    if library is None:
        handler.addFilter(LibraryFilter(debug))
    else:
        library.debug = debug


def setup_logging(
    level: str | None = "INFO",
    log_format: str = "text",
    *,
    logger: logging.Logger | None = None,
    stream: IO[str] | None = None,
    reformat: bool = False,
) -> logging.Logger:
    """Configure ``logger`` (default: the root logger) like :func:`logging.basicConfig` does:
    a handler on ``stream`` (default stderr) only when one is given or the logger has none, and
    left alone otherwise (e.g. under pytest). ``reformat`` formats every existing handler too
    (the Celery worker's and gunicorn's). Handlers we configure get ``log_format`` and the
    task/request ids. ``level`` None leaves the logger's level as it is."""
    target = logger or logging.getLogger()
    mine: list[logging.Handler] = []
    if stream is not None or not target.handlers:
        added: logging.Handler = logging.StreamHandler(stream or sys.stderr)
        target.addHandler(added)
        mine.append(added)
    if reformat:
        mine = list(target.handlers)
    for handler in mine:
        configure_handler(handler, log_format, debug=level == "DEBUG")
    if mine and level is not None:
        target.setLevel(level)
    return target


#: libraries that talk about their own machinery at INFO or WARNING (FAISS's loader trying CPU
#: variants, Scrapy's settings and stats dumps, trafilatura's discarded page fragments, Alembic's
#: migration steps): their records at these levels read like errors to a user, so below this
#: level they show only when our level is DEBUG (:class:`LibraryFilter`)
QUIET_LIBRARIES = {
    "alembic": logging.WARNING,
    "faiss.loader": logging.WARNING,
    "scrapy": logging.WARNING,
    # a response over DOWNLOAD_MAXSIZE (an endless feed, a gzip bomb): the spider's own warning
    # names the listing and the reason once; Scrapy's two or three lines about it are noise
    "scrapy.core.downloader.handlers.http11": logging.ERROR,
    "scrapy.downloadermiddlewares.httpcompression": logging.ERROR,
    "twisted": logging.ERROR,
    "trafilatura": logging.ERROR,
    "htmldate": logging.ERROR,
    "filelock": logging.WARNING,
}


def setup_from_settings(settings: Settings, **kwargs: Any) -> logging.Logger:
    return setup_logging(settings.log_level, settings.log_format, **kwargs)
