"""Every node keeps its own indexes in step with the store by following its change sequence.

The store is the one source of truth. Database triggers note in ``article_changes`` every
article that became searchable, changed or was deleted (migration 0005). Each node — every API
pod, or the single machine of the default setup, same code — runs one follower over its own
data directory:

- **bootstrap**: a node without indexes notes the store's watermark, builds both indexes from
  the store (or restores a snapshot another node wrote: ``covidnews index snapshot/restore``),
  then follows from the watermark;
- **follow**: reads the changes past its position in pages, and for each article compares the
  store's version (``updated_at``) with what its indexes hold: writes what is new or changed,
  deletes what the store no longer has, skips what it already has — so re-reading a change is
  free and an article is never indexed twice. Vectors are written before keyword documents,
  then the position (``follow.json``, replaced atomically). A follower killed anywhere resumes
  from its last position; whatever it had already applied is skipped.
- **the gap trap**: on PostgreSQL a sequence number is taken when a row is written but becomes
  visible when its transaction commits, so a slow transaction can commit a *lower* number
  after the follower has read higher ones. The position is therefore not a sequence number
  but a transaction watermark: ``pg_snapshot_xmin`` of a snapshot taken *before* reading — every
  transaction below it has ended, so no change below it can still appear. Changes of later
  transactions that already committed are applied too, and read again (and skipped) until the
  watermark passes them. On SQLite one writer at a time makes sequence order commit order.

One follower per data directory at a time (a file lock); API workers only read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select, text, tuple_

from covidnews.files import atomic_write, file_lock
from covidnews.index import ROW, VectorIndex, store_vectors
from covidnews.schema import Article, ArticleChange, ProcessingState
from covidnews.search.documents import search_docs
from covidnews.search.keyword import LAYOUT, NO_DATE, KeywordIndex, SearchDoc, code, topic_mask
from covidnews.store import Store

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

STATE_FILE = "follow.json"
PAGE = 2000
BOOTSTRAP_CHUNK = 5000


def paired(
    docs: dict[int, SearchDoc], vec_ids: Sequence[int], vecs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The vector index's records and vectors of the articles that have both a document and a
    vector (from one read of the store)."""
    keep = [n for n, i in enumerate(vec_ids) if i in docs]
    return vector_rows([docs[vec_ids[n]] for n in keep]), vecs[keep] if keep else vecs[:0]


def vector_rows(docs: Sequence[SearchDoc]) -> np.ndarray:
    """The vector index's record (article id, stamp and filter columns) of each document."""
    rows = np.zeros(len(docs), dtype=ROW)
    for i, d in enumerate(docs):
        rows[i] = (
            d.article_id,
            d.stamp,
            d.date if d.date is not None else NO_DATE,
            d.source_id if d.source_id is not None else -1,
            code(d.country),
            code(d.language),
            topic_mask(d.topics),
            d.story_id,
            1 if d.is_covid else 0,
        )
    return rows


class ChangeFeed:
    """The store's change sequence, read from a position."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.postgres = store.engine.dialect.name == "postgresql"

    def watermark(self) -> dict[str, int]:
        """A position before which nothing can still appear."""
        with self.store.session() as s:
            if self.postgres:
                xmin = s.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
                return {"xid": int(str(xmin.scalar_one()))}
            last = s.execute(select(func.max(ArticleChange.seq))).scalar_one_or_none()
            return {"seq": int(last or 0)}

    def pages(
        self, position: dict[str, int], size: int = PAGE
    ) -> Iterator[tuple[list[int], dict[str, int]]]:
        """(article ids, position after them) per page of changes past ``position``, up to a
        watermark taken first; the last position is that watermark."""
        if self.postgres:
            mark = self.watermark()["xid"]
            start = int(position.get("xid", 0))
            after = (start, 0)
            while True:
                with self.store.session() as s:
                    rows = s.execute(
                        select(ArticleChange.xid, ArticleChange.seq, ArticleChange.article_id)
                        .where(tuple_(ArticleChange.xid, ArticleChange.seq) > tuple_(*after))
                        .order_by(ArticleChange.xid, ArticleChange.seq)
                        .limit(size)
                    ).all()
                if rows:
                    after = (int(str(rows[-1][0])), int(rows[-1][1]))
                final = len(rows) < size
                # Below the mark every transaction has ended; below the last transaction
                # read, every change of an ended one has been read.
                xid = mark if final else min(after[0], mark)
                yield [int(r[2]) for r in rows], {"xid": max(start, xid)}
                if final:
                    return
        else:
            seq = int(position.get("seq", 0))
            while True:
                with self.store.session() as s:
                    page = s.execute(
                        select(ArticleChange.seq, ArticleChange.article_id)
                        .where(ArticleChange.seq > seq)
                        .order_by(ArticleChange.seq)
                        .limit(size)
                    ).all()
                if page:
                    seq = int(page[-1][0])
                yield [int(r[1]) for r in page], {"seq": seq}
                if len(page) < size:
                    return

    def pending(self, position: dict[str, int]) -> int:
        """Changes past the position (a re-read window included on PostgreSQL)."""
        with self.store.session() as s:
            if self.postgres:
                where = ArticleChange.xid >= int(position.get("xid", 0))
            else:
                where = ArticleChange.seq > int(position.get("seq", 0))
            return int(s.execute(select(func.count()).where(where)).scalar_one())


@dataclass
class FollowReport:
    changes: int = 0  # change notes read
    written: int = 0  # keyword documents written
    vectors: int = 0  # vector rows written
    deleted: int = 0
    bootstrapped: bool = False
    # Bootstrap: seconds reading the store, writing vectors, in all (keyword = the rest).
    seconds: dict[str, float] = field(default_factory=dict)


class Follower:
    """The writer of one node's indexes (keyword + vectors) and of its position."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        model: str,
        *,
        exact_max: int = 50_000,
        delta_max: int = 20_000,
        nprobe: int = 0,
    ) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.model = model
        self.keyword = KeywordIndex(self.data_dir / "search")
        self.vectors = VectorIndex(
            self.data_dir / "index", model, exact_max=exact_max, delta_max=delta_max, nprobe=nprobe
        )
        self.feed = ChangeFeed(store)
        self.state_path = self.data_dir / STATE_FILE

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, model: str | None = None) -> Follower:
        return cls(
            store,
            settings.data_dir,
            model or embedder_model_id(settings),
            exact_max=settings.index_exact_max,
            delta_max=settings.index_delta_max,
            nprobe=settings.index_nprobe,
        )

    # State -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any] | None:
        return read_state(self.data_dir)

    def _save(self, state: dict[str, Any]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        raw = json.dumps(state, sort_keys=True)
        atomic_write(self.state_path, lambda tmp: Path(tmp).write_text(raw, encoding="utf-8"))

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.data_dir / "follow.lock")

    def _usable(self, state: dict[str, Any] | None) -> bool:
        return (
            state is not None
            and state.get("model") == self.model
            and state.get("layout") == LAYOUT
            and state.get("backend") == self.store.engine.dialect.name
            and (self.data_dir / "search" / LAYOUT / "meta.json").exists()
        )

    # Following -------------------------------------------------------------------------

    def poll(self) -> FollowReport:
        """Apply every change past the position (bootstrapping first if needed)."""
        with self._lock():
            state = self.state()
            if not self._usable(state):
                return self._bootstrap()
            assert state is not None
            report = FollowReport()
            for ids, position in self.feed.pages(state["position"]):
                state["position"] = position
                if ids:
                    report.changes += len(ids)
                    written, vectors, deleted = self.apply(ids)
                    report.written += written
                    report.vectors += vectors
                    report.deleted += deleted
                    self._save(state)  # the last page's position is saved below
            state["caught_up_at"] = time.time()
            state["documents"] = self.keyword.count()
            self._save(state)
            return report

    def apply(self, article_ids: Sequence[int]) -> tuple[int, int, int]:
        """Bring these articles' documents and vectors in line with the store; returns
        (documents written, vector rows written, articles deleted)."""
        ids = sorted({int(i) for i in article_ids})
        with self.store.session() as s:
            found = s.execute(
                select(Article.id, Article.state, Article.updated_at).where(Article.id.in_(ids))
            ).all()
        done = {
            int(i): u.timestamp() for i, state, u in found if state == ProcessingState.done.value
        }
        gone = sorted(set(ids) - {int(r[0]) for r in found})
        # Articles being processed again (or failed) keep their last indexed version.
        have_doc = self.keyword.stamps(sorted(done))
        have_vec = self.vectors.stamps(sorted(done))
        todo_doc = [i for i in sorted(done) if have_doc.get(i) != done[i]]
        vec_ids, vecs = store_vectors(
            self.store, self.model, [i for i in sorted(done) if have_vec.get(i) != done[i]]
        )
        docs = {
            d.article_id: d for d in search_docs(self.store, sorted(set(todo_doc) | set(vec_ids)))
        }
        # The stamp of the version read: a newer write gets a newer stamp and a new change.
        written_vectors = self.vectors.apply(*paired(docs, vec_ids, vecs), delete=gone)
        doc_list = [docs[i] for i in todo_doc if i in docs]
        # A story's first copy indexed before its copies is marked again as having copies.
        roots = sorted({d.story_id for d in doc_list if d.story_id != d.article_id})
        stale = set(self.keyword.unshared(roots)) - {d.article_id for d in doc_list}
        if doc_list or gone or stale:
            self.keyword.write(doc_list + search_docs(self.store, sorted(stale)), delete=gone)
        return len(doc_list), written_vectors, len(gone)

    def _bootstrap(self) -> FollowReport:
        """Build both indexes from the store, then follow from the watermark noted first."""
        mark = self.feed.watermark()
        with self.store.session() as s:
            ids = list(
                s.scalars(
                    select(Article.id)
                    .where(Article.state == ProcessingState.done.value)
                    .order_by(Article.id)
                )
            )
        report = FollowReport(bootstrapped=True)
        vectors_by_chunk: list[int] = []
        clock = {"store": 0.0, "vectors": 0.0}
        started = time.perf_counter()

        def batches(add: Callable[..., object]) -> Iterator[list[SearchDoc]]:
            for start in range(0, len(ids), BOOTSTRAP_CHUNK):
                chunk = ids[start : start + BOOTSTRAP_CHUNK]
                t0 = time.perf_counter()
                docs = search_docs(self.store, chunk)
                vec_ids, vecs = store_vectors(self.store, self.model, chunk)
                t1 = time.perf_counter()
                rows, vectors = paired({d.article_id: d for d in docs}, vec_ids, vecs)
                if len(rows):
                    add(rows, vectors)
                    vectors_by_chunk.append(len(rows))
                clock["store"] += t1 - t0
                clock["vectors"] += time.perf_counter() - t1
                yield docs

        with self.vectors.rebuilding() as add:
            report.written = self.keyword.rebuild(batches(add))
            t2 = time.perf_counter()
        clock["vectors"] += time.perf_counter() - t2  # training and segments, at the end
        report.vectors = sum(vectors_by_chunk)
        report.seconds = {k: round(v, 6) for k, v in clock.items()}
        report.seconds["total"] = round(time.perf_counter() - started, 6)
        self._save(
            {
                "position": mark,
                "model": self.model,
                "layout": LAYOUT,
                "backend": self.store.engine.dialect.name,
                "bootstrapped_at": time.time(),
                "caught_up_at": None,
                "documents": report.written,
            }
        )
        log.info(
            "bootstrapped from the store: %d documents, %d vectors", report.written, report.vectors
        )
        return report

    def reset(self) -> FollowReport:
        """Rebuild from the store (``covidnews reindex``). The old indexes and position stay
        in use (the node stays ready) until the new ones replace them."""
        with self._lock():
            return self._bootstrap()

    def run(self, interval: float = 1.0, stop: threading.Event | None = None) -> None:
        """Follow until stopped; a failing poll (store unreachable) is retried."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                report = self.poll()
                if report.changes or report.bootstrapped:
                    log.info(
                        "indexes: %d changes, %d documents, %d vectors, %d deleted",
                        report.changes,
                        report.written,
                        report.vectors,
                        report.deleted,
                    )
            except Exception:
                log.exception("follow: poll failed; retrying")
            stop.wait(interval)

    # Snapshots -------------------------------------------------------------------------

    def snapshot(self, path: Path) -> dict[str, Any]:
        """Write this node's indexes and position to a tar file (consistent: under the lock)."""
        with self._lock():
            state = self.state()
            if not self._usable(state):
                raise RuntimeError("nothing to snapshot: this node has not bootstrapped")
            m = self.vectors.manifest()
            tmp = Path(str(path) + ".part")
            with tarfile.open(tmp, "w") as tar:
                tar.add(self.data_dir / "search" / LAYOUT, arcname=f"search/{LAYOUT}")
                if m is not None:
                    vec = self.vectors.dir
                    base = f"index/{vec.name}"
                    tar.add(vec / "manifest.json", arcname=f"{base}/manifest.json")
                    tar.add(vec / f"g{m.generation}", arcname=f"{base}/g{m.generation}")
                tar.add(self.state_path, arcname=STATE_FILE)
            os.replace(tmp, path)
        assert state is not None
        return state


def restore_snapshot(data_dir: Path, path: Path, *, force: bool = False) -> dict[str, Any]:
    """Unpack a snapshot into an empty (or, with ``force``, any) data directory; the follower
    then resumes from the snapshot's position."""
    data_dir = Path(data_dir)
    if read_state(data_dir) is not None and not force:
        raise RuntimeError(f"{data_dir} already has indexes (use --force to replace them)")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        if STATE_FILE not in names:
            raise RuntimeError(f"{path} is not a covidnews index snapshot")
        for old in ("search", "index"):
            for name in {n.split("/")[1] for n in names if n.startswith(old + "/")}:
                target = data_dir / old / name
                if target.exists():
                    import shutil

                    shutil.rmtree(target)
        tar.extractall(data_dir, filter="data")
    state = read_state(data_dir)
    assert state is not None
    return state


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((Path(data_dir) / STATE_FILE).read_text("utf-8"))
        return state
    except (OSError, ValueError):
        return None


def lag_seconds(data_dir: Path, now: float | None = None) -> float | None:
    """Seconds since this node last saw itself caught up (None: never, e.g. bootstrapping)."""
    state = read_state(data_dir)
    if not state or not state.get("caught_up_at"):
        return None
    return max(0.0, (now or time.time()) - float(state["caught_up_at"]))


def embedder_model_id(settings: Settings) -> str:
    """The model id of the configured embedder (without loading the model)."""
    from covidnews.embed import get_embedder

    options: dict[str, Any] = {}
    if settings.embedding_model:
        options["model"] = settings.embedding_model
    return str(get_embedder(settings.embedder, **options).model_id)
