"""The article store: engine set-up, migrations, idempotent writes and counts.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, so
readers never block the writer; PostgreSQL is the scaled deployment. Behaviour is identical:
every write here is one transaction and idempotent (the same URL twice updates, never duplicates).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from covidnews.files import file_lock
from covidnews.schema import (
    Article,
    ArticleTopic,
    Embedding,
    ProcessingState,
    Source,
    StageRun,
    Translation,
    utcnow,
)
from covidnews.urls import host_of

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x636F7669  # arbitrary advisory-lock key ("covi")


class StoreError(RuntimeError):
    """The store cannot be used (unreachable, not initialised, newer schema…)."""


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be used right now (down, restarting, a dropped
    connection, SQLite busy past its timeout): a condition to answer 503 and retry, not a bug.
    The pool reconnects by itself (pre-ping on PostgreSQL) once the database is back."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, StoreError | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retrying(
    fn: Callable[[], T],
    *,
    patience: float = 120.0,
    first_wait: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, tried again with growing waits (0.5 s, 1 s, 2 s … 10 s) while the database is
    :func:`unavailable`, for up to ``patience`` seconds; then the last error is raised. For
    writers that must not drop what they hold while the database restarts (the crawler)."""
    waited, wait = 0.0, first_wait
    while True:
        try:
            return fn()
        except Exception as exc:
            if not unavailable(exc) or waited >= patience:
                raise
            log.warning(
                "database unavailable (%s); trying again in %.1f s",
                (str(exc).splitlines() or [type(exc).__name__])[0],
                wait,
            )
            sleep(wait)
            waited += wait
            wait = min(wait * 2, 10.0)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the store's per-backend settings applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {"connect_timeout": 10})
        return create_engine(url, **kwargs)
    raise StoreError(f"unsupported database backend {parsed.get_backend_name()!r}")


def slugify(name: str) -> str:
    """ASCII slug for URLs and case-insensitive matching (``El País`` → ``el-pais``)."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_name = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")
    return slug or "source"


@dataclass(slots=True)
class ArticleRecord:
    """A validated article ready to store (see :mod:`covidnews.ingest` for where they come from)."""

    url: str  # canonical
    url_hash: str
    title: str
    text: str
    content_hash: str
    record_hash: str
    simhash: int
    external_id: str | None = None
    language: str | None = None
    country: str | None = None
    source: str | None = None  # source name; None: matched by the URL's domain
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    published_offset: int | None = None  # minutes east of UTC the outlet dated it in
    modified_at: datetime | None = None
    section: str | None = None
    image_url: str | None = None
    origin: str = "ingest"
    text_complete: bool = True  # false: a paywall or consent wall kept the full text away
    extra: dict[str, Any] = field(default_factory=dict)
    duplicate_of: int | None = None  # story representative (near-duplicate grouping), if known


@dataclass(slots=True)
class UpsertResult:
    inserted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)  # content or metadata changed
    unchanged: int = 0

    @property
    def changed_ids(self) -> list[int]:
        """Articles whose stored row changed (what the NLP stage should look at)."""
        return self.inserted + self.updated


# Columns an upsert writes (everything the record carries).
_RECORD_COLUMNS = (
    "url",
    "url_hash",
    "external_id",
    "origin",
    "source_id",
    "country",
    "language",
    "title",
    "text",
    "authors",
    "section",
    "image_url",
    "published_at",
    "published_offset",
    "modified_at",
    "content_hash",
    "record_hash",
    "simhash",
    "text_complete",
    "extra",
)


class Store:
    """Access to one covidnews database."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:  # create_engine's options
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._source_cache: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        if settings is None:
            from covidnews.settings import get_settings

            settings = get_settings()
        return cls(settings.db_url)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    # Schema -----------------------------------------------------------------------------

    def _alembic_config(self, connection: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = connection
        return cfg

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        cfg = self._alembic_config(None)  # type: ignore[arg-type]
        head = ScriptDirectory.from_config(cfg).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None: not initialised)."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:  # connection problems: say which database
            raise StoreError(f"cannot open database {self.safe_url}: {exc}") from exc

    @contextlib.contextmanager
    def _migration_lock(self, conn: Connection) -> Iterator[None]:
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
            return
        database = make_url(self.url).database
        if not database or database == ":memory:":
            yield
            return
        with file_lock(str(database) + ".migrate-lock"):
            yield

    def migrate(self, revision: str = "head") -> str:
        """Create or upgrade the schema (safe to run concurrently); returns the new revision."""
        from alembic import command

        try:
            with self.engine.connect() as conn, self._migration_lock(conn):
                command.upgrade(self._alembic_config(conn), revision)
                conn.commit()
        except StoreError:
            raise
        except Exception as exc:
            if "connect" in type(exc).__name__.lower() or "OperationalError" in type(exc).__name__:
                raise StoreError(f"cannot open database {self.safe_url}: {exc}") from exc
            raise
        current = self.current_revision()
        assert current is not None
        return current

    def ensure_schema(self) -> None:
        """Migrate to head if needed; refuse a database made by a newer covidnews."""
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config(None))  # type: ignore[arg-type]
        known = True
        if current is not None:
            try:
                known = script.get_revision(current) is not None
            except Exception:
                known = False
        if not known:
            raise StoreError(
                f"database {self.safe_url} is at schema revision {current}, unknown to this "
                "version of covidnews (made by a newer release?)"
            )
        log.info("migrating %s from %s to %s", self.safe_url, current or "empty", head)
        self.migrate()

    @property
    def safe_url(self) -> str:
        from covidnews.settings import mask_url

        return mask_url(self.url)

    def insert(self, table: Any) -> Any:  # Any: the dialect's Insert (on_conflict_* differ)
        """An INSERT into ``table`` with this database's ``on_conflict_do_nothing``/``_update``."""
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)

    # Sources ----------------------------------------------------------------------------

    def source_ids(
        self,
        session: Session,
        records: Iterable[ArticleRecord],
    ) -> dict[int, int | None]:
        """Resolve (creating when needed) the source of each record; keyed by ``id(record)``.

        A named source is matched by slug (case- and accent-insensitive: "El País" = "el pais").
        An unnamed one is matched by the URL's domain (or a parent domain) against the sources'
        domains; failing that, a source named after the domain is created.
        """
        records = list(records)
        result: dict[int, int | None] = {}
        named: dict[str, tuple[str, str, str | None, str | None]] = {}
        for rec in records:
            if rec.source:
                slug = slugify(rec.source)
                named.setdefault(
                    slug, (rec.source.strip(), host_of(rec.url), rec.country, rec.language)
                )
        self._ensure_sources(session, named)
        domain_map = self._domain_map(session)
        by_domain: dict[str, tuple[str, str, str | None, str | None]] = {}
        waiting: list[tuple[ArticleRecord, str]] = []
        for rec in records:
            if rec.source:
                result[id(rec)] = self._source_cache[slugify(rec.source)]
                continue
            host = host_of(rec.url)
            sid = domain_map.get(host)
            if sid is None:
                sid = _parent_domain_match(host, domain_map)
            if sid is not None:
                result[id(rec)] = sid
                continue
            slug = slugify(host)
            by_domain.setdefault(slug, (host, host, rec.country, rec.language))
            waiting.append((rec, slug))
        self._ensure_sources(session, by_domain)
        for rec, slug in waiting:
            result[id(rec)] = self._source_cache[slug]
        return result

    def _ensure_sources(
        self, session: Session, wanted: dict[str, tuple[str, str, str | None, str | None]]
    ) -> None:
        """Make sure a source exists for each slug (value: name, domain, country, language)."""
        missing = [slug for slug in wanted if slug not in self._source_cache]
        if not missing:
            return
        for slug, sid in session.execute(
            select(Source.slug, Source.id).where(Source.slug.in_(missing))
        ):
            self._source_cache[slug] = sid
        create = [slug for slug in missing if slug not in self._source_cache]
        if not create:
            return
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for slug in create:
            name, host, country, language = wanted[slug]
            rows.append(
                {
                    "name": name[:200],
                    "slug": slug[:200],
                    "kind": "outlet",
                    "country": country,
                    "language": language,
                    "domains": [host] if host else [],
                    "feeds": [],
                    "sitemaps": [],
                    "weight": 1.0,
                    "extra": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        # Another process may create the same source concurrently: keep theirs.
        session.execute(self.insert(Source.__table__).values(rows).on_conflict_do_nothing())
        for slug, sid in session.execute(
            select(Source.slug, Source.id).where(Source.slug.in_(create))
        ):
            self._source_cache[slug] = sid
        self._domain_cache = None

    _domain_cache: dict[str, int] | None = None

    def _domain_map(self, session: Session) -> dict[str, int]:
        if self._domain_cache is None:
            mapping: dict[str, int] = {}
            for sid, domains in session.execute(select(Source.id, Source.domains)):
                for domain in domains or []:
                    mapping.setdefault(str(domain).lower().removeprefix("www."), sid)
            self._domain_cache = mapping
        return self._domain_cache

    # Articles ---------------------------------------------------------------------------

    def upsert_articles(self, records: Sequence[ArticleRecord]) -> UpsertResult:
        """Store records in one transaction: insert new URLs, update changed ones.

        A record equal to the stored row (same ``record_hash``) is left alone; a changed title or
        text puts the article back to ``pending`` so the NLP stages see the new content. Within
        one call the last record for a URL wins.
        """
        result = UpsertResult()
        if not records:
            return result
        latest: dict[str, ArticleRecord] = {}
        for rec in records:
            latest.pop(rec.url_hash, None)
            latest[rec.url_hash] = rec
        batch = list(latest.values())
        result.unchanged += len(records) - len(batch)
        try:
            with self.session() as session:
                self._upsert(session, batch, result)
        except Exception:
            self._source_cache.clear()  # ids created in a rolled-back transaction are gone
            self._domain_cache = None
            raise
        return result

    def _upsert(self, session: Session, batch: list[ArticleRecord], result: UpsertResult) -> None:
        existing = {
            row.url_hash: row
            for row in session.execute(
                select(
                    Article.id, Article.url_hash, Article.record_hash, Article.content_hash
                ).where(Article.url_hash.in_([r.url_hash for r in batch]))
            )
        }
        sources = self.source_ids(session, batch)
        now = utcnow()
        new_rows, changed = [], []
        for rec in batch:
            row = {col: getattr(rec, col) for col in _RECORD_COLUMNS if col != "source_id"}
            row["source_id"] = sources.get(id(rec))
            old = existing.get(rec.url_hash)
            if rec.duplicate_of is not None or old is None:
                row["duplicate_of"] = rec.duplicate_of
            if old is None:
                row.update(
                    fetched_at=now,
                    created_at=now,
                    updated_at=now,
                    attempts=0,
                    state=ProcessingState.pending.value,
                )
                new_rows.append(row)
            elif old.record_hash != rec.record_hash:
                row["updated_at"] = now
                if old.content_hash != rec.content_hash:
                    row.update(
                        state=ProcessingState.pending.value,
                        state_error=None,
                        attempts=0,
                        fetched_at=now,
                    )
                changed.append((old.id, row))
            else:
                result.unchanged += 1
        if new_rows:
            stmt = self.insert(Article.__table__).on_conflict_do_nothing(
                index_elements=["url_hash"]
            )
            session.execute(stmt, new_rows)
            inserted: dict[str, int] = dict(
                session.execute(
                    select(Article.url_hash, Article.id).where(
                        Article.url_hash.in_([r["url_hash"] for r in new_rows])
                    )
                ).all()
            )
            result.inserted.extend(inserted[r["url_hash"]] for r in new_rows)
        for article_id, row in changed:
            row.pop("url_hash")
            session.execute(
                update(Article)
                .where(Article.id == article_id)
                .values(row)
                .execution_options(synchronize_session=False)
            )
            result.updated.append(article_id)

    # Counts -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts for ``covidnews stats`` (articles, sources, per state, per language…)."""
        with self.session() as s:
            articles = s.scalar(select(func.count()).select_from(Article)) or 0
            states = {state.value: 0 for state in ProcessingState}
            for state, count in s.execute(
                select(Article.state, func.count()).group_by(Article.state)
            ):
                states[state] = count
            languages = {
                (lang or "unknown"): count
                for lang, count in s.execute(
                    select(Article.language, func.count())
                    .group_by(Article.language)
                    .order_by(func.count().desc())
                )
            }
            first, last = s.execute(
                select(func.min(Article.published_at), func.max(Article.published_at))
            ).one()
            covid: dict[bool | None, int] = dict(
                s.execute(select(Article.is_covid, func.count()).group_by(Article.is_covid)).all()
            )
            return {
                "database": self.safe_url,
                "schema_revision": self.current_revision(),
                "articles": articles,
                "sources": s.scalar(select(func.count()).select_from(Source)) or 0,
                "states": states,
                "languages": languages,
                "covid": {
                    "yes": covid.get(True, 0),
                    "no": covid.get(False, 0),
                    "unclassified": covid.get(None, 0),
                },
                "duplicates": s.scalar(
                    select(func.count())
                    .select_from(Article)
                    .where(Article.duplicate_of.is_not(None))
                )
                or 0,
                "translations": s.scalar(select(func.count()).select_from(Translation)) or 0,
                # waiting for a translator that could not run (`covidnews process` makes them)
                "translations_deferred": s.scalar(
                    select(func.count())
                    .select_from(StageRun)
                    .where(StageRun.stage == "translate", StageRun.status == "deferred")
                )
                or 0,
                "topic_assignments": s.scalar(select(func.count()).select_from(ArticleTopic)) or 0,
                "embeddings": s.scalar(select(func.count()).select_from(Embedding)) or 0,
                "published": {
                    "first": _iso(first),
                    "last": _iso(last),
                },
            }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite aggregates bypass the column type
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parent_domain_match(host: str, domain_map: dict[str, int]) -> int | None:
    """``noticias.elpais.com`` belongs to the source whose domain is ``elpais.com``."""
    parts = host.split(".")
    for i in range(1, len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in domain_map:
            return domain_map[candidate]
    return None
