"""The keyword index: immutable segments of postings (with positions) plus per-document metadata.

Like the vector index it is a **cache of the store** in ``COVIDNEWS_DATA_DIR/search/``,
rebuildable at any time (``covidnews reindex``), and it gives identical results on SQLite and
PostgreSQL because it is computed from the same stored rows.

Layout (Lucene-like, numpy only):

- a **segment** is a directory of ``.npy`` arrays, never modified after it is written: documents
  (article id, stamp, date, source, country, language, topics bit mask, Covid flag, story id,
  length) and postings sorted by term key (64-bit hash of the term) with term frequencies and
  token positions (for phrases). Readers map the arrays from disk (``mmap``), so several API
  processes share one copy in the page cache and a reload costs milliseconds;
- the **manifest** (``manifest.json``, written to a temporary file and renamed) lists the live
  segments with their generation; a document in a newer segment supersedes the same article
  in older ones, and ``tombstones`` delete articles;
- **one writer** (a file lock): each batch becomes a small segment; when there are more than
  ``MAX_SEGMENTS``, the adjacent window with the fewest documents is merged (dropping superseded
  documents), so writes stay proportional to the batch, not to the index;
- **readers** (:class:`KeywordReader`) re-read the manifest when it changes and swap to a new
  immutable :class:`Snapshot`; a request keeps the snapshot it started with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from covidnews.search.analysis import STOPWORDS, Clause, analyze
from covidnews.taxonomy import topic_ids

MAX_SEGMENTS = 8
MERGE_WINDOW = 4
FIELD_GAP = 16  # positions between fields, so a phrase never spans a title and a body
BM25_K1 = 1.2
BM25_B = 0.75
NO_DATE = np.iinfo(np.int64).min

_DOC_ARRAYS = {
    "ids": np.int64,
    "stamp": np.float64,
    "date": np.int64,
    "source": np.int32,
    "country": np.uint32,
    "language": np.uint32,
    "topics": np.uint32,
    "covid": np.int8,
    "story": np.int64,
    "dlen": np.int32,
}
_POSTING_ARRAYS = {
    "tkeys": np.uint64,
    "tptr": np.int64,
    "pdoc": np.int32,
    "ptf": np.int32,
    "pptr": np.int64,
    "pos": np.uint32,
}


def term_key(term: str) -> int:
    """Stable 64-bit key of an index term (blake2b; the same in every process)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


def code(value: str | None) -> int:
    """A short ASCII code (country, language; up to 4 characters) as an integer; 0 for none."""
    if not value:
        return 0
    raw = value.strip().lower().encode("ascii", "replace")[:4]
    return int.from_bytes(raw.ljust(4, b"\0"), "big")


def decode(value: int) -> str | None:
    if not value:
        return None
    return int(value).to_bytes(4, "big").rstrip(b"\0").decode("ascii", "replace")


def topic_mask(topics: Iterable[str]) -> int:
    ids = topic_ids()
    mask = 0
    for t in topics:
        if t in ids:
            mask |= 1 << ids.index(t)
    return mask


@dataclass
class SearchDoc:
    """What the keyword index holds of one article (built by :mod:`covidnews.search.documents`)."""

    article_id: int
    stamp: float  # the article's updated_at (epoch seconds): re-indexed when it changes
    date: int | None  # epoch seconds: published, else fetched
    source_id: int | None
    country: str | None
    language: str | None
    topics: tuple[str, ...]
    is_covid: bool | None
    story_id: int  # the first stored copy of the story (itself when not a syndicated copy)
    fields: list[tuple[str, str | None]] = field(default_factory=list)  # (text, language)


# Segments ------------------------------------------------------------------------------------


class Segment:
    """One immutable segment, its arrays mapped from disk."""

    def __init__(self, path: Path, gen: int) -> None:
        self.path = path
        self.name = path.name
        self.gen = gen
        arrays = {**_DOC_ARRAYS, **_POSTING_ARRAYS}
        self.a: dict[str, np.ndarray] = {
            name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in arrays
        }
        self.docs = int(self.a["ids"].shape[0])

    def term_ranges(self, keys: np.ndarray) -> list[tuple[int, int]]:
        tkeys = self.a["tkeys"]
        if tkeys.shape[0] == 0:
            return []
        at = np.searchsorted(tkeys, keys)
        out = []
        for key, i in zip(keys.tolist(), at.tolist(), strict=True):
            if i < tkeys.shape[0] and int(tkeys[i]) == key:
                out.append((int(self.a["tptr"][i]), int(self.a["tptr"][i + 1])))
        return out


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, dtype in {**_DOC_ARRAYS, **_POSTING_ARRAYS}.items():
        np.save(path / f"{name}.npy", np.ascontiguousarray(arrays[name], dtype=dtype))


def _gather_positions(
    pptr: np.ndarray, pos: np.ndarray, postings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of these postings concatenated in their order, and the new pointer array."""
    starts = pptr[postings]
    lengths = pptr[postings + 1] - starts
    new_ptr = np.zeros(len(postings) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_ptr[1:])
    if new_ptr[-1] == 0:
        return np.zeros(0, dtype=np.uint32), new_ptr
    flat = np.repeat(starts - new_ptr[:-1], lengths) + np.arange(new_ptr[-1], dtype=np.int64)
    return np.asarray(pos[flat], dtype=np.uint32), new_ptr


def _postings_from_occurrences(
    keys: np.ndarray, docs: np.ndarray, positions: np.ndarray
) -> dict[str, np.ndarray]:
    """Postings arrays from one row per token occurrence (term key, local doc, position)."""
    order = np.lexsort((positions, docs, keys))
    keys, docs, positions = keys[order], docs[order], positions[order]
    n = len(keys)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {
            "tkeys": empty.astype(np.uint64),
            "tptr": np.zeros(1, dtype=np.int64),
            "pdoc": empty.astype(np.int32),
            "ptf": empty.astype(np.int32),
            "pptr": np.zeros(1, dtype=np.int64),
            "pos": empty.astype(np.uint32),
        }
    new_posting = np.ones(n, dtype=bool)
    new_posting[1:] = (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])
    pstart = np.flatnonzero(new_posting)
    pptr = np.append(pstart, n).astype(np.int64)
    pkeys = keys[pstart]
    new_term = np.ones(len(pstart), dtype=bool)
    new_term[1:] = pkeys[1:] != pkeys[:-1]
    tstart = np.flatnonzero(new_term)
    return {
        "tkeys": pkeys[tstart],
        "tptr": np.append(tstart, len(pstart)).astype(np.int64),
        "pdoc": docs[pstart].astype(np.int32),
        "ptf": np.diff(pptr).astype(np.int32),
        "pptr": pptr,
        "pos": positions.astype(np.uint32),
    }


def build_arrays(docs: Sequence[SearchDoc]) -> dict[str, np.ndarray]:
    """Segment arrays for documents (tokenised, stemmed, hashed; postings sorted by key)."""
    vocab: dict[str, int] = {}
    occ_terms: list[np.ndarray] = []
    occ_docs: list[np.ndarray] = []
    occ_pos: list[np.ndarray] = []
    dlen = np.zeros(len(docs), dtype=np.int32)
    for local, doc in enumerate(docs):
        terms: list[int] = []
        positions: list[int] = []
        base = 0
        for text, language in doc.fields:
            toks = analyze(text, language) if text else []
            terms.extend(vocab.setdefault(t, len(vocab)) for t in toks)
            positions.extend(range(base, base + len(toks)))
            base += len(toks) + FIELD_GAP
        dlen[local] = len(terms)
        occ_terms.append(np.asarray(terms, dtype=np.int64))
        occ_docs.append(np.full(len(terms), local, dtype=np.int64))
        occ_pos.append(np.asarray(positions, dtype=np.int64))
    key_of_term = np.fromiter((term_key(t) for t in vocab), dtype=np.uint64, count=len(vocab))
    terms_all = np.concatenate(occ_terms) if occ_terms else np.zeros(0, dtype=np.int64)
    arrays = _postings_from_occurrences(
        key_of_term[terms_all] if len(terms_all) else np.zeros(0, dtype=np.uint64),
        np.concatenate(occ_docs) if occ_docs else np.zeros(0, dtype=np.int64),
        np.concatenate(occ_pos) if occ_pos else np.zeros(0, dtype=np.int64),
    )
    arrays.update(
        ids=np.asarray([d.article_id for d in docs], dtype=np.int64),
        stamp=np.asarray([d.stamp for d in docs], dtype=np.float64),
        date=np.asarray([NO_DATE if d.date is None else d.date for d in docs], dtype=np.int64),
        source=np.asarray([-1 if d.source_id is None else d.source_id for d in docs]),
        country=np.asarray([code(d.country) for d in docs], dtype=np.uint32),
        language=np.asarray([code(d.language) for d in docs], dtype=np.uint32),
        topics=np.asarray([topic_mask(d.topics) for d in docs], dtype=np.uint32),
        covid=np.asarray([-1 if d.is_covid is None else int(d.is_covid) for d in docs]),
        story=np.asarray([d.story_id for d in docs], dtype=np.int64),
        dlen=dlen,
    )
    return arrays


def merge_arrays(segments: Sequence[Segment], keep: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """One segment's arrays from several, keeping the documents where ``keep`` (per segment) is
    true: postings re-numbered, re-sorted by term key, positions carried along."""
    doc_arrays: dict[str, list[np.ndarray]] = {name: [] for name in _DOC_ARRAYS}
    pkeys, pdocs, pidx = [], [], []
    pptrs, poss = [], []
    doc_offset = 0
    pos_offset = 0
    posting_offset = 0
    for seg, mask in zip(segments, keep, strict=True):
        a = seg.a
        for name in _DOC_ARRAYS:
            doc_arrays[name].append(np.asarray(a[name])[mask])
        remap = np.full(seg.docs, -1, dtype=np.int64)
        remap[mask] = np.arange(int(mask.sum())) + doc_offset
        keys = np.repeat(np.asarray(a["tkeys"]), np.diff(np.asarray(a["tptr"])))
        new_docs = remap[np.asarray(a["pdoc"])]
        alive = new_docs >= 0
        pkeys.append(keys[alive])
        pdocs.append(new_docs[alive])
        pidx.append(np.flatnonzero(alive) + posting_offset)
        pptrs.append(np.asarray(a["pptr"])[:-1] + pos_offset)
        poss.append(np.asarray(a["pos"]))
        doc_offset += int(mask.sum())
        pos_offset += int(a["pos"].shape[0])
        posting_offset += int(a["pdoc"].shape[0])
    all_pptr = np.append(np.concatenate(pptrs), pos_offset).astype(np.int64)
    all_pos = np.concatenate(poss)
    keys = np.concatenate(pkeys)
    docs = np.concatenate(pdocs)
    idx = np.concatenate(pidx)
    order = np.lexsort((docs, keys))
    keys, docs, idx = keys[order], docs[order], idx[order]
    positions, pptr = _gather_positions(all_pptr, all_pos, idx)
    new_term = np.ones(len(keys), dtype=bool)
    new_term[1:] = keys[1:] != keys[:-1]
    tstart = np.flatnonzero(new_term)
    out: dict[str, np.ndarray] = {name: np.concatenate(v) for name, v in doc_arrays.items()}
    out.update(
        tkeys=keys[tstart],
        tptr=np.append(tstart, len(keys)).astype(np.int64),
        pdoc=docs.astype(np.int32),
        ptf=np.diff(pptr).astype(np.int32),
        pptr=pptr,
        pos=positions,
    )
    return out


# Manifest and writer -----------------------------------------------------------------------


@dataclass
class Manifest:
    version: int = 0
    next_gen: int = 1
    segments: list[dict[str, Any]] = field(default_factory=list)  # {"name", "gen", "docs"}
    tombstones: dict[str, int] = field(default_factory=dict)  # article id -> generation

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()

    def write(self, path: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="manifest.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.__dict__, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def live_masks(segments: Sequence[Segment], tombstones: dict[str, int]) -> list[np.ndarray]:
    """Per segment, which documents are live: the newest copy of each article, not deleted."""
    if not segments:
        return []
    ids = np.concatenate([np.asarray(s.a["ids"]) for s in segments])
    gens = np.concatenate([np.full(s.docs, s.gen, dtype=np.int64) for s in segments])
    order = np.lexsort((gens, ids))
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[order][1:] != ids[order][:-1]
    live = np.zeros(len(ids), dtype=bool)
    live[order[last]] = True
    if tombstones:
        dead_ids = np.asarray([int(k) for k in tombstones], dtype=np.int64)
        dead_gen = np.asarray(list(tombstones.values()), dtype=np.int64)
        srt = np.argsort(dead_ids)
        dead_ids, dead_gen = dead_ids[srt], dead_gen[srt]
        at = np.clip(np.searchsorted(dead_ids, ids), 0, len(dead_ids) - 1)
        killed = (dead_ids[at] == ids) & (dead_gen[at] > gens)
        live &= ~killed
    return np.split(live, np.cumsum([s.docs for s in segments])[:-1])


class KeywordIndex:
    """The keyword index directory: the writer side (one at a time, under a file lock)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.manifest_path = self.dir / "manifest.json"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[Manifest]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "writer.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield Manifest.read(self.manifest_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _new_segment(self, arrays: dict[str, np.ndarray], gen: int) -> dict[str, Any]:
        name = f"seg-{gen:08d}-{os.urandom(3).hex()}"
        tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=".tmp-"))
        try:
            _write_arrays(tmp, arrays)
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.rename(tmp, self.dir / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return {"name": name, "gen": gen, "docs": int(arrays["ids"].shape[0])}

    def _segments(self, manifest: Manifest) -> list[Segment]:
        return [Segment(self.dir / s["name"], int(s["gen"])) for s in manifest.segments]

    def _publish(self, manifest: Manifest) -> None:
        manifest.version += 1
        manifest.write(self.manifest_path)
        keep = {s["name"] for s in manifest.segments}
        for path in self.dir.iterdir():
            # Open readers keep their mapped files (POSIX); new readers see the new manifest.
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def write(self, docs: Sequence[SearchDoc], delete: Iterable[int] = ()) -> int:
        """Add or replace these documents and delete these article ids; returns the version."""
        delete = [int(i) for i in delete]
        with self._lock() as manifest:
            gen = manifest.next_gen
            manifest.next_gen += 1
            if docs:
                unique = list({d.article_id: d for d in docs}.values())
                manifest.segments.append(self._new_segment(build_arrays(unique), gen))
            for article_id in delete:
                manifest.tombstones[str(article_id)] = gen
            if not docs and not delete:
                return manifest.version
            self._maybe_merge(manifest)
            self._publish(manifest)
            return manifest.version

    def rebuild(self, batches: Iterable[Sequence[SearchDoc]]) -> int:
        """Replace everything with these documents (written segment by segment, merged after)."""
        with self._lock() as manifest:
            fresh = Manifest(version=manifest.version, next_gen=manifest.next_gen)
            for docs in batches:
                if docs:
                    fresh.segments.append(self._new_segment(build_arrays(docs), fresh.next_gen))
                    fresh.next_gen += 1
                    if len(fresh.segments) > MAX_SEGMENTS:
                        self._maybe_merge(fresh)
            self._publish(fresh)
            return fresh.version

    def _maybe_merge(self, manifest: Manifest) -> None:
        while len(manifest.segments) > MAX_SEGMENTS:
            sizes = [int(s["docs"]) for s in manifest.segments]
            starts = range(len(sizes) - MERGE_WINDOW + 1)
            start = min(starts, key=lambda i: sum(sizes[i : i + MERGE_WINDOW]))
            window = manifest.segments[start : start + MERGE_WINDOW]
            segs = self._segments(manifest)
            masks = live_masks(segs, manifest.tombstones)[start : start + MERGE_WINDOW]
            arrays = merge_arrays(segs[start : start + MERGE_WINDOW], masks)
            merged = self._new_segment(arrays, int(window[-1]["gen"]))
            manifest.segments[start : start + MERGE_WINDOW] = [merged]

    def stamps(self, article_ids: Sequence[int] | None = None) -> dict[int, float]:
        """Article id -> stamp of every live document, or of these articles (to find what the
        store has changed since it was indexed)."""
        manifest = Manifest.read(self.manifest_path)
        segs = self._segments(manifest)
        wanted = None if article_ids is None else np.asarray(sorted(article_ids), dtype=np.int64)
        out: dict[int, float] = {}
        for seg, mask in zip(segs, live_masks(segs, manifest.tombstones), strict=True):
            ids = np.asarray(seg.a["ids"])
            if wanted is not None:
                mask = mask & np.isin(ids, wanted)
            out.update(
                zip(ids[mask].tolist(), np.asarray(seg.a["stamp"])[mask].tolist(), strict=True)
            )
        return out


# Reader ------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """An immutable view of the index: global document arrays + the segments' postings.

    Documents are numbered globally (segment offset + local number); ``live`` masks superseded
    and deleted ones. Lookups by article id go through ``by_id``/``by_id_pos``.
    """

    version: int
    segments: list[Segment]
    offsets: np.ndarray
    docs: dict[str, np.ndarray]
    live: np.ndarray
    by_id: np.ndarray  # live article ids, sorted
    by_id_pos: np.ndarray  # their global positions
    story_order: np.ndarray  # live positions sorted by story id
    story_sorted: np.ndarray  # story ids in that order
    shared: np.ndarray  # per position: its story has other live copies (collapse must look)
    n_live: int
    avgdl: float

    @classmethod
    def empty(cls) -> Snapshot:
        z = np.zeros(0, dtype=np.int64)
        docs = {name: np.zeros(0, dtype=dtype) for name, dtype in _DOC_ARRAYS.items()}
        return cls(0, [], z, docs, np.zeros(0, dtype=bool), z, z, z, z, np.zeros(0, bool), 0, 1.0)

    @classmethod
    def load(cls, directory: Path, manifest: Manifest, previous: Snapshot | None) -> Snapshot:
        reuse = {s.name: s for s in previous.segments} if previous else {}
        segments = [
            reuse.get(s["name"]) or Segment(directory / s["name"], int(s["gen"]))
            for s in manifest.segments
        ]
        if not segments:
            empty = cls.empty()
            empty.version = manifest.version
            return empty
        offsets = np.cumsum([0] + [s.docs for s in segments]).astype(np.int64)
        docs = {
            name: np.concatenate([np.asarray(s.a[name]) for s in segments]) for name in _DOC_ARRAYS
        }
        live = np.concatenate(live_masks(segments, manifest.tombstones))
        live_pos = np.flatnonzero(live)
        ids = docs["ids"][live_pos]
        srt = np.argsort(ids, kind="stable")
        stories = docs["story"][live_pos]
        sorder = np.argsort(stories, kind="stable")
        n_live = int(live.sum())
        avgdl = float(docs["dlen"][live].mean()) if n_live else 1.0
        sorted_stories = stories[sorder]
        first = np.ones(len(sorted_stories), dtype=bool)
        first[1:] = sorted_stories[1:] != sorted_stories[:-1]
        sizes = np.diff(np.append(np.flatnonzero(first), len(sorted_stories)))
        shared = np.zeros(int(live.shape[0]), dtype=bool)
        shared[live_pos[sorder][np.repeat(sizes, sizes) > 1]] = True
        return cls(
            manifest.version,
            segments,
            offsets,
            docs,
            live,
            ids[srt],
            live_pos[srt],
            live_pos[sorder],
            sorted_stories,
            shared,
            n_live,
            max(avgdl, 1.0),
        )

    @property
    def size(self) -> int:
        return int(self.live.shape[0])

    def positions_of(self, article_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Global positions of these article ids (-1 where not indexed)."""
        ids = np.asarray(article_ids, dtype=np.int64)
        if self.by_id.shape[0] == 0 or ids.shape[0] == 0:
            return np.full(ids.shape[0], -1, dtype=np.int64)
        at = np.clip(np.searchsorted(self.by_id, ids), 0, self.by_id.shape[0] - 1)
        return np.where(self.by_id[at] == ids, self.by_id_pos[at], -1)

    def story_members(self, story_id: int) -> np.ndarray:
        lo = np.searchsorted(self.story_sorted, story_id, side="left")
        hi = np.searchsorted(self.story_sorted, story_id, side="right")
        return self.story_order[lo:hi]

    # Matching --------------------------------------------------------------------------------

    def _word_postings(self, word: tuple[str, ...]) -> list[tuple[Segment, int, int, int]]:
        keys = np.asarray([term_key(t) for t in word], dtype=np.uint64)
        out: list[tuple[Segment, int, int, int]] = []
        for seg, offset in zip(self.segments, self.offsets[:-1].tolist(), strict=True):
            out.extend((seg, offset, lo, hi) for lo, hi in seg.term_ranges(keys))
        return out

    def _word_docs(self, word: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(sorted live global positions, term frequency) of documents containing a word."""
        parts_pos, parts_tf = [], []
        for seg, offset, lo, hi in self._word_postings(word):
            parts_pos.append(np.asarray(seg.a["pdoc"][lo:hi], dtype=np.int64) + offset)
            parts_tf.append(np.asarray(seg.a["ptf"][lo:hi], dtype=np.float64))
        if not parts_pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        pos = np.concatenate(parts_pos)
        tf: np.ndarray = np.concatenate(parts_tf)
        if len(parts_pos) > 1:
            # Several segments or word forms: add up per document (dense: no sort).
            dense = np.bincount(pos, weights=tf, minlength=self.size)
            pos = np.flatnonzero(dense)
            tf = dense[pos]
        keep = self.live[pos]
        return pos[keep], tf[keep]

    def _word_occurrences(self, word: tuple[str, ...], among: np.ndarray) -> np.ndarray:
        """Sorted (global position << 32 | token position) of a word in these documents."""
        out = []
        allowed = np.zeros(self.size, dtype=bool)  # a dense mask: no hashing, no sorting
        allowed[among] = True
        for seg, offset, lo, hi in self._word_postings(word):
            docs = np.asarray(seg.a["pdoc"][lo:hi], dtype=np.int64) + offset
            sel = np.flatnonzero(allowed[docs])
            if not len(sel):
                continue
            postings = sel + lo
            positions, ptr = _gather_positions(seg.a["pptr"], seg.a["pos"], postings)
            doc_of = np.repeat(docs[sel], np.diff(ptr))
            out.append((doc_of << 32) | positions.astype(np.int64))
        if not out:
            return np.zeros(0, dtype=np.int64)
        # A token is indexed under one term only, so occurrences never repeat: sort suffices.
        return np.sort(np.concatenate(out))

    def match(self, clause: Clause) -> tuple[np.ndarray, np.ndarray]:
        """(sorted live global positions, frequency) of documents matching a word or phrase."""
        if not clause.is_phrase:
            return self._word_docs(clause.words[0])
        # Phrase. Stopwords hold their place but match anything (their postings are huge);
        # the other words are checked rarest first, each narrowing the documents left.
        slots = [(i, w) for i, w in enumerate(clause.words) if w[0] not in STOPWORDS]
        slots = slots or list(enumerate(clause.words))
        docs = [(i, w, self._word_docs(w)[0]) for i, w in slots]
        docs.sort(key=lambda item: len(item[2]))
        candidates = docs[0][2]
        for _, _, pos in docs[1:]:
            candidates = np.intersect1d(candidates, pos, assume_unique=True)
            if not len(candidates):
                return candidates, np.zeros(0)
        first, word, _ = docs[0]
        occ = self._word_occurrences(word, candidates)
        starts = occ[(occ & 0xFFFFFFFF) >= first] - first  # where the phrase would begin
        for i, word, _ in docs[1:]:
            if not len(starts):
                break
            occ = self._word_occurrences(word, starts >> 32)
            want = starts + i
            at = np.minimum(np.searchsorted(occ, want), max(len(occ) - 1, 0))
            starts = starts[(occ[at] == want) if len(occ) else np.zeros(len(want), bool)]
        if not len(starts):
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        found, counts = np.unique(starts >> 32, return_counts=True)
        return found, counts.astype(np.float64)

    def bm25(self, positions: np.ndarray, tf: np.ndarray) -> np.ndarray:
        df = len(positions)
        idf = math.log(1.0 + (self.n_live - df + 0.5) / (df + 0.5))
        dl = self.docs["dlen"][positions]
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * dl / self.avgdl)
        return np.asarray(idf * tf * (BM25_K1 + 1.0) / (tf + norm), dtype=np.float64)


class KeywordReader:
    """Reader side: the current snapshot, reloaded when the writer publishes a new manifest."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.manifest_path = self.dir / "manifest.json"
        self._snapshot = Snapshot.empty()
        self._stat: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        try:
            st = os.stat(self.manifest_path)
            stat = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stat = None
        if stat != self._stat:
            with self._lock:
                if stat != self._stat:
                    try:
                        manifest = Manifest.read(self.manifest_path)
                        self._snapshot = Snapshot.load(self.dir, manifest, self._snapshot)
                        self._stat = stat
                    except (OSError, ValueError):
                        # A segment removed between the manifest read and the load: keep the
                        # current snapshot and try again on the next request.
                        pass
        return self._snapshot
