"""Search API: latency per mode (engine and Flask app), server throughput, memory and export.

For each corpus size (default 10,000 and 100,000 articles) a deployment is built in its own data
directory (cached with ``--cache-dir``, so reruns skip it):

- **corpus**: articles of 1-4 real paragraphs of the covid19mx press-conference transcripts
  (Spanish; title = the first sentence, summary = the first two) plus 5 % English articles of
  TICO-19 sentences; dates over 2020-2021, 12 sources in 7 countries, 1-3 random topics, 90 %
  flagged Covid, 5 % syndicated copies (same text and story, another outlet);
- **store**: SQLite, articles written by ``covidnews.ingest.ingest_path``, then marked processed
  (state, Covid flag and score, summary, story) and given topics by SQL;
- **keyword index**: ``covidnews.search.documents.rebuild_search`` (the ``covidnews reindex`` path),
  timed (documents/s); a cached corpus whose keyword index has another layout gets a new one;
- **vector index**: ``VectorIndex.rebuild``. Only ``--embed`` distinct texts (article leads) are
  embedded with the real default embedder (E5, ``kind="passage"``); every article's vector is
  the vector of its lead plus Gaussian noise (``--noise`` per dimension), re-normalised, and a
  syndicated copy has its original's vector — so neighbourhoods and score levels are those of
  real E5 vectors, at a cost 2 cores can afford.

Measured:

- ``engine``: ``SearchEngine.search`` (20 results) p50/p90/p99 per mode over a mixed query set
  (Spanish and English words, 2-3 word queries, phrases, exclusions; a third with filters).
  The query embedding is excluded (the engine's LRU cache is warmed) and reported on its own as
  ``embed_query_ms`` (cold calls of ``engine._embed_query``);
- ``api``: the same queries through ``/api/v1/search`` of ``create_app`` (Flask test client):
  parsing, ranking, hydration from the store, snippets and JSON;
- ``passage``: search by passage (8 Spanish passages of ~1,500 characters): the passage's
  embedding on its own, then semantic and hybrid searches with it cached;
- ``server`` (every size; ``--skip-server`` skips it): requests/s and latency under
  ``covidnews serve --workers 2`` (gunicorn gthread, 4 threads) loaded by ``wrk`` on loopback
  (a Python thread client if ``wrk`` is missing), next to a bare Flask "ok" app under the same
  gunicorn setup in the same run, and ``/healthz`` of the real app; the benchmark queries
  (cycled: caches warm) and never-seen two-word queries (nothing cached, the query embedding
  inside the request);
- ``memory`` (fresh process): RSS after imports, after opening the engine and running a keyword
  query, after loading the query embedder, after a semantic query (FAISS index + vectors), next
  to the raw vector bytes; index sizes on disk;
- ``export`` (fresh process per format): ``/api/v1/export?q=&covid=all`` streamed through the
  test client chunk by chunk; RSS before, sampled while streaming, bytes and rows/s.

Prints one JSON object. Usage: python bench/bench_search.py [--sizes 10000,100000]
[--queries 300] [--cache-dir DIR] [--skip-server] [--embed 3000] [--load-seconds 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, SHARED, Timer, write_jsonl

if TYPE_CHECKING:
    from covidnews.search.engine import Mode

CORPUS_VERSION = 2  # 2: vectors in the store, indexes built by a node's follower
SEED = 7
ENGLISH_SHARE = 20  # one article in 20 is English
COPY_SHARE = 20  # one article in 20 is a syndicated copy of an earlier one
SOURCES = [  # (name, country, language)
    ("Diario Capital", "MX", "es"),
    ("El Informador Nacional", "MX", "es"),
    ("Noticias del Norte", "MX", "es"),
    ("Gaceta Madrileña", "ES", "es"),
    ("Crónica Ibérica", "ES", "es"),
    ("La Voz del Plata", "AR", "es"),
    ("Diario Andino", "CO", "es"),
    ("El Pacífico", "CL", "es"),
    ("Prensa Limeña", "PE", "es"),
    ("Agencia Continental", "MX", "es"),
    ("Health Wire", "US", "en"),
    ("Global Health Post", "GB", "en"),
]
PER_PAGE = 20
MODES: tuple[Mode, ...] = ("keyword", "semantic", "hybrid")
_SPEAKER = re.compile(r"^[A-ZÁÉÍÓÚÑÜ][A-ZÁÉÍÓÚÑÜ .,\-]{3,}:\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# (query, API filter parameters): Spanish and English words, 2-3 word queries, phrases,
# exclusions; about a third with filters (dates, topic, language, country, source).
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("vacuna", {}),
    ("cubrebocas", {}),
    ("hospitalización", {}),
    ("contagios", {"from": "2020-06-01", "to": "2020-12-31"}),
    ("vaccine", {}),
    ("symptoms", {"language": "en"}),
    ("fever", {}),
    ("hospital beds", {}),
    ("camas de hospital", {}),
    ("vacuna pfizer", {}),
    ("semáforo epidemiológico rojo", {}),
    ("casos confirmados", {"topic": "cases"}),
    ('"sana distancia"', {}),
    ('"casos confirmados"', {"country": "MX"}),
    ('"ciudad de méxico"', {}),
    ("vacuna -influenza", {}),
    ("contagios -escuelas", {"source": "diario-capital"}),
    ("pruebas covid", {"covid": "all"}),
    ("uso de cubrebocas en el transporte", {}),
    ("defunciones", {"from": "2021-01-01", "to": "2021-03-31", "topic": "health_care"}),
    ("vacunación adultos mayores", {}),
    ("economía empleo", {"topic": "economy"}),
    ("regreso a clases", {}),
    ("wearing masks", {}),
    ("ocupación hospitalaria", {"country": "ES"}),
    ("personal de salud", {}),
]


# Corpus ------------------------------------------------------------------------------------


def es_paragraphs() -> list[str]:
    """Paragraphs of the press-conference transcripts (speaker names removed)."""
    out = []
    for path in sorted((SHARED / "covid19mx" / "corpus_simple").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            text = _SPEAKER.sub("", line.strip())
            if 150 <= len(text) <= 3000:
                out.append(text)
    return out


def en_passages() -> list[str]:
    """Runs of 3-5 consecutive English TICO-19 sentences of one document."""
    docs: dict[str, list[str]] = {}
    with (SHARED / "tico19" / "tico19_dev.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            docs.setdefault(row["tuid"].split(":")[0], []).append(row["en"].strip())
    out = []
    for sentences in docs.values():
        for i in range(0, len(sentences), 4):
            chunk = " ".join(sentences[i : i + 4])
            if len(chunk) >= 150:
                out.append(chunk)
    return out


def passages(count: int, chars: int = 1500) -> list[str]:
    """Spanish passages of about ``chars`` characters: runs of transcript paragraphs (a
    researcher pasting a paragraph or a claim), taken from the end of the paragraph list."""
    paragraphs = es_paragraphs()[::-1]
    out, current = [], ""
    for p in paragraphs:
        current = (current + " " + p).strip()
        if len(current) >= chars:
            out.append(current[:chars].rsplit(" ", 1)[0])
            current = ""
            if len(out) == count:
                break
    return out


def two_word_queries(n: int, seed: int) -> list[str]:
    """``n`` distinct two-word queries of content words of the transcripts (words of 5+ letters
    between the 100th and 3,000th most frequent)."""
    counts: dict[str, int] = {}
    for p in es_paragraphs():
        for w in re.findall(r"[a-záéíóúñü]{5,}", p.lower()):
            counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))[100:3000]
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        a, b = rng.sample(words, 2)
        out.add(f"{a} {b}")
    return sorted(out, key=lambda _: rng.random())


def measure_passages(engine: Any, source_ids: dict[str, int], n: int = 8) -> dict[str, Any]:
    """Search by passage (semantic and hybrid): the embedding of the passage on its own, then
    the engine with the embedding cached."""
    from covidnews.search.engine import Filters, Query

    texts = passages(n)
    embed: Any = engine._embed_query
    embed_samples = []
    for text in texts:
        with Timer() as t:
            embed(text)
        embed_samples.append(t.seconds)
    out: dict[str, Any] = {
        "passages": len(texts),
        "median_chars": int(np.median([len(t) for t in texts])),
        "embed_passage": stats_ms(embed_samples),
    }
    for mode in ("semantic", "hybrid"):
        samples, totals = [], []
        for _ in range(5):
            for text in texts:
                with Timer() as t:
                    page = engine.search(Query(text, mode, Filters()), PER_PAGE)
                samples.append(t.seconds)
                totals.append(page.total)
        out[f"engine_{mode}"] = {**stats_ms(samples), "median_total_hits": int(np.median(totals))}
    return out


def first_sentence(text: str, limit: int = 160) -> str:
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0] + "…"
    return sentence


def summary_of(text: str) -> str:
    return " ".join(_SENTENCE_END.split(text)[:2])[:400].replace("\n", " ")


def corpus_rows(
    n: int, leads: list[tuple[str, str]], es: list[str], en: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """JSONL rows of ``n`` articles and, per row, what processing would have decided: lead index
    (into ``leads``: its vector), copy of (row index), Covid flag, topics, summary."""
    rng = random.Random(SEED)
    from covidnews.taxonomy import topic_ids

    topics = list(topic_ids())
    es_leads = [i for i, (lang, _) in enumerate(leads) if lang == "es"]
    en_leads = [i for i, (lang, _) in enumerate(leads) if lang == "en"]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=730).total_seconds())
    rows: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    for i in range(n):
        if i >= 100 and i % COPY_SHARE == 0:
            orig = rng.randrange(max(1, i - 5000), i)
            while meta[orig]["copy_of"] is not None:
                orig -= 1
            src = rows[orig]
            lang = src["language"]
            names = [s for s in SOURCES if s[2] == lang and s[0] != src["source"]]
            name, country, _ = rng.choice(names)
            when = datetime.fromisoformat(src["published_at"]) + timedelta(hours=rng.randint(1, 30))
            rows.append(
                {
                    **src,
                    "url": f"https://{_host(name)}/noticias/{i}",
                    "id": f"a{i}",
                    "source": name,
                    "country": country,
                    "published_at": when.isoformat(),
                }
            )
            meta.append({**meta[orig], "copy_of": orig})
            continue
        english = i % ENGLISH_SHARE == 7
        lead = rng.choice(en_leads if english else es_leads)
        pool = en if english else es
        body = [leads[lead][1]] + [rng.choice(pool) for _ in range(rng.randint(0, 3))]
        text = "\n\n".join(body)
        name, country, lang = rng.choice(
            [s for s in SOURCES if s[2] == ("en" if english else "es")]
        )
        when = start + timedelta(seconds=rng.randrange(span))
        rows.append(
            {
                "url": f"https://{_host(name)}/noticias/{i}",
                "id": f"a{i}",
                "title": first_sentence(body[0]),
                "text": text,
                "language": lang,
                "country": country,
                "source": name,
                "published_at": when.isoformat(),
            }
        )
        covid = rng.random() < 0.9
        meta.append(
            {
                "lead": lead,
                "copy_of": None,
                "covid": covid,
                "score": round(rng.uniform(0.6, 0.99) if covid else rng.uniform(0.01, 0.4), 3),
                "topics": rng.sample(topics, rng.randint(1, 3)) if covid else [],
                "summary": summary_of(text),
            }
        )
    return rows, meta


def _host(name: str) -> str:
    return re.sub(r"[^a-z]+", "", name.lower()) + ".example"


def lead_texts(n_leads: int) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """``n_leads`` distinct (language, paragraph) article leads and the paragraph pools."""
    es, en = es_paragraphs(), en_passages()
    rng = random.Random(SEED)
    n_en = min(len(en), max(1, n_leads // ENGLISH_SHARE))
    leads = [("es", p) for p in rng.sample(es, n_leads - n_en)]
    leads += [("en", p) for p in rng.sample(en, n_en)]
    return leads, es, en


def lead_vectors(leads: list[tuple[str, str]], cache_dir: Path) -> tuple[np.ndarray, str, float]:
    """Real E5 passage vectors of the leads (cached), the model id, seconds spent embedding."""
    from covidnews.embed import document_text, get_embedder

    embedder = get_embedder("e5")
    key = re.sub(r"[^A-Za-z0-9]+", "_", embedder.model_id)
    path = cache_dir / f"leads-v{CORPUS_VERSION}-{len(leads)}-{key}.npy"
    if path.exists():
        return np.load(path), embedder.model_id, 0.0
    texts = [document_text(first_sentence(p), p, max_chars=600) for _, p in leads]
    with Timer() as t:
        vectors = np.asarray(embedder.encode(texts, kind="passage"), dtype=np.float32)
    np.save(path, vectors)
    return vectors, embedder.model_id, t.seconds


def _settings(data_dir: Path) -> Any:
    from covidnews.settings import load_settings

    return load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'covidnews.db'}")


INGEST_MAX = 200_000


def bulk_insert(store: Any, rows: list[dict[str, Any]]) -> list[int]:
    """The rows as articles (and their sources), by SQL in batches: what ingest would store,
    without its per-line parsing, canonical URLs and SimHash. Returns the article ids."""
    import hashlib

    from sqlalchemy import insert, select

    from covidnews.schema import Article, Source
    from covidnews.store import slugify

    now = datetime.now(UTC)
    with store.session() as s:
        s.add_all(
            Source(name=name, slug=slugify(name), country=country, language=lang,
                   domains=[_host(name)])
            for name, country, lang in SOURCES
        )  # fmt: skip
        s.commit()
    with store.session() as s:
        source_ids = dict(s.execute(select(Source.name, Source.id)).tuples().all())
    ids = list(range(1, len(rows) + 1))
    for start in range(0, len(rows), 20_000):
        batch = []
        for i in range(start, min(len(rows), start + 20_000)):
            r = rows[i]
            digest = hashlib.sha256(r["url"].encode()).hexdigest()
            batch.append(
                {
                    "id": ids[i],
                    "url": r["url"],
                    "url_hash": digest,
                    "external_id": r["id"],
                    "origin": "ingest",
                    "source_id": source_ids[r["source"]],
                    "country": r["country"],
                    "language": r["language"],
                    "title": r["title"],
                    "text": r["text"],
                    "authors": [],
                    "published_at": datetime.fromisoformat(r["published_at"]),
                    "fetched_at": now,
                    "content_hash": digest,
                    "record_hash": digest,
                    "state": "pending",
                    "attempts": 0,
                    "extra": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with store.engine.begin() as conn:
            conn.execute(insert(Article), batch)
    return ids


def build_corpus(
    data_dir: Path,
    n: int,
    leads: list[tuple[str, str]],
    es: list[str],
    en: list[str],
    vectors: np.ndarray,
    model_id: str,
    noise: float,
) -> dict[str, Any]:
    """Store + keyword index + vector index of ``n`` articles in ``data_dir``; build figures."""
    from sqlalchemy import select, text

    from covidnews.ingest import ingest_path
    from covidnews.schema import Article
    from covidnews.store import Store

    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    settings = _settings(data_dir)
    rows, meta = corpus_rows(n, leads, es, en)
    store = Store(settings.db_url)
    store.migrate()
    out: dict[str, Any] = {}
    if n > INGEST_MAX:
        # Past INGEST_MAX rows are inserted by SQL (ingest's own rate is in bench_ingest).
        with Timer() as t:
            ids = bulk_insert(store, rows)
        out["bulk_insert_seconds"] = round(t.seconds, 1)
    else:
        jsonl = data_dir / "corpus.jsonl"
        write_jsonl(rows, jsonl)
        out["corpus_mb"] = round(jsonl.stat().st_size / 1e6, 1)
        with Timer() as t:
            report = ingest_path(store, jsonl, batch_size=1000)
        if report.inserted != n:
            raise RuntimeError(f"ingest stored {report.inserted} of {n}: {report.as_dict()}")
        out["ingest_seconds"] = round(t.seconds, 1)
        jsonl.unlink()
        with store.session() as s:
            ids_by_ext = dict(s.execute(select(Article.external_id, Article.id)).all())
        ids = [int(ids_by_ext[f"a{i}"]) for i in range(n)]
    with Timer() as t, store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE articles SET state = 'done', is_covid = :covid, covid_score = :score, "
                "summary = :summary, duplicate_of = :dup WHERE id = :id"
            ),
            [
                {
                    "id": ids[i],
                    "covid": m["covid"],
                    "score": m["score"],
                    "summary": m["summary"],
                    "dup": None if m["copy_of"] is None else ids[m["copy_of"]],
                }
                for i, m in enumerate(meta)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO article_topics (article_id, topic, score, rank, model) "
                "VALUES (:a, :t, :s, :r, 'bench')"
            ),
            [
                {"a": ids[i], "t": topic, "s": round(0.9 - 0.2 * r, 2), "r": r + 1}
                for i, m in enumerate(meta)
                for r, topic in enumerate(m["topics"])
            ],
        )
    out["process_sql_seconds"] = round(t.seconds, 1)
    rng = np.random.default_rng(SEED)
    matrix = np.empty((n, vectors.shape[1]), dtype=np.float32)
    for i, m in enumerate(meta):
        if m["copy_of"] is None:
            matrix[i] = vectors[m["lead"]]
    fresh = np.asarray([m["copy_of"] is None for m in meta])
    matrix[fresh] += rng.standard_normal((int(fresh.sum()), vectors.shape[1])).astype(
        np.float32
    ) * np.float32(noise)
    matrix[fresh] /= np.linalg.norm(matrix[fresh], axis=1, keepdims=True)
    for i, m in enumerate(meta):
        if m["copy_of"] is not None:
            matrix[i] = matrix[m["copy_of"]]
    lead_of = np.asarray([m["lead"] for m in meta])
    out["vector_cos_to_lead_mean"] = round(
        float(np.mean(np.sum(matrix * vectors[lead_of], axis=1))), 4
    )
    # The vectors go into the store, where the embed stage puts them.
    with Timer() as t:
        for start in range(0, n, 20_000):
            with store.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO embeddings (article_id, model, dims, vector, created_at) "
                        "VALUES (:a, :m, :d, :v, :c)"
                    ),
                    [
                        {
                            "a": ids[i],
                            "m": model_id,
                            "d": int(matrix.shape[1]),
                            "v": matrix[i].tobytes(),
                            "c": "2021-01-01 00:00:00",
                        }
                        for i in range(start, min(n, start + 20_000))
                    ],
                )
    out["store_vectors_seconds"] = round(t.seconds, 1)
    store.close()
    out.update(bootstrap_node(data_dir, n, model_id))
    return out


def bootstrap_node(data_dir: Path, n: int, model_id: str) -> dict[str, Any]:
    """A new node's indexes, built from the store by its follower (what ``covidnews serve``
    does on an empty data directory); the time and its parts."""
    from covidnews.follow import Follower
    from covidnews.store import Store

    settings = _settings(data_dir)
    store = Store(settings.db_url)
    with Timer() as t:
        report = Follower.from_settings(settings, store, model_id).poll()
    store.close()
    if report.written != n or report.vectors != n:
        raise RuntimeError(
            f"bootstrap indexed {report.written} documents, {report.vectors} vectors"
        )
    parts = report.seconds
    keyword = parts["total"] - parts["store"] - parts["vectors"]
    return {
        "bootstrap_seconds": round(t.seconds, 1),
        "bootstrap_parts_seconds": {**parts, "keyword": round(keyword, 2)},
        # (None when a part took under the report's resolution, as on tiny smoke-test corpora)
        "keyword_index_docs_per_s": round(n / keyword, 1) if keyword > 0 else None,
        "vector_index_vectors_per_s": round(n / parts["vectors"], 1) if parts["vectors"] else None,
    }


def ensure_corpus(root: Path, n: int, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The data dir of an ``n``-article deployment (built, or reused from the cache)."""
    data_dir = root / f"search-{n}-v{CORPUS_VERSION}-e{args.embed}-s{args.noise}"
    done = data_dir / "bench-built.json"
    if done.exists():
        return data_dir, {**json.loads(done.read_text()), "cached": True}
    leads, es, en = lead_texts(args.embed)
    vectors, model_id, embed_seconds = lead_vectors(leads, root)
    with Timer() as t:
        info = build_corpus(data_dir, n, leads, es, en, vectors, model_id, args.noise)
    info.update(
        build_seconds=round(t.seconds, 1),
        lead_embed_seconds=round(embed_seconds, 1),
        embedded_texts=len(leads),
        model=model_id,
    )
    done.write_text(json.dumps(info))
    return data_dir, {**info, "cached": False}


def measure_follow(data_dir: Path, rounds: int) -> dict[str, Any]:
    """What following costs at this size: 32 articles added to the store (processed, with
    vectors) then one follower poll — the change feed read, the store reads, both indexes
    written and published — ``rounds`` times; they are deleted afterwards (one more poll).
    Then a new node started from a snapshot: write it, restore it, catch up."""
    from sqlalchemy import text

    from covidnews.follow import Follower, restore_snapshot
    from covidnews.store import Store

    settings = _settings(data_dir)
    store = Store(settings.db_url)
    follower = Follower.from_settings(
        settings, store, json.loads((data_dir / "bench-built.json").read_text())["model"]
    )
    follower.poll()  # caught up before measuring
    rng = np.random.default_rng(5)
    with store.engine.connect() as conn:
        template = dict(
            conn.execute(
                text(
                    "SELECT title, text, source_id, language, published_at FROM articles "
                    "WHERE duplicate_of IS NULL ORDER BY id LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
        dims = int(conn.execute(text("SELECT dims FROM embeddings LIMIT 1")).scalar_one())
    samples, added = [], []
    for r in range(rounds):
        with store.engine.begin() as conn:
            for i in range(32):
                key = f"bench-follow-{r}-{i}-{time.time_ns()}"
                aid = conn.execute(
                    text(
                        "INSERT INTO articles (url, url_hash, origin, source_id, language, "
                        "title, text, authors, published_at, fetched_at, content_hash, "
                        "record_hash, state, attempts, is_covid, covid_score, extra, created_at, "
                        "updated_at) VALUES (:u, :h, 'ingest', :s, :l, :t, :x, '[]', :p, :f, "
                        ":h, :h, 'done', 0, 1, 0.9, '{}', :f, :f) RETURNING id"
                    ),
                    {
                        "u": f"https://bench.example/{key}",
                        "h": key,
                        "s": template["source_id"],
                        "l": template["language"],
                        "t": f"{template['title']} {r}-{i}",
                        "x": template["text"],
                        "p": template["published_at"],
                        "f": datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),
                    },
                ).scalar_one()
                v = rng.standard_normal(dims).astype(np.float32)
                conn.execute(
                    text(
                        "INSERT INTO embeddings (article_id, model, dims, vector, created_at) "
                        "VALUES (:a, :m, :d, :v, '2021-01-01 00:00:00')"
                    ),
                    {
                        "a": aid,
                        "m": follower.model,
                        "d": dims,
                        "v": (v / np.linalg.norm(v)).tobytes(),
                    },
                )
                added.append(int(aid))
        with Timer() as t:
            report = follower.poll()
        if report.written != 32:
            raise RuntimeError(f"follow round {r}: {report}")
        samples.append(t.seconds)
    out: dict[str, Any] = {"add_32_poll": {**stats_ms(samples), "rounds": rounds}}
    with store.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM articles WHERE id IN ({','.join(map(str, added))})"))
    with Timer() as t:
        report = follower.poll()
    out["delete_poll"] = {"articles": report.deleted, "ms": round(t.seconds * 1000, 1)}
    with tempfile.TemporaryDirectory(dir=data_dir.parent) as tmp:
        snap = Path(tmp) / "node.tar"
        with Timer() as t:
            follower.snapshot(snap)
        out["snapshot_write_seconds"] = round(t.seconds, 1)
        out["snapshot_mb"] = round(snap.stat().st_size / 1e6, 1)
        node = Path(tmp) / "node"
        with Timer() as t:
            restore_snapshot(node, snap)
        out["snapshot_restore_seconds"] = round(t.seconds, 1)
        with Timer() as t:
            report = Follower(store, node, follower.model).poll()
        out["snapshot_node_catch_up_seconds"] = round(t.seconds, 2)
        if report.bootstrapped:
            raise RuntimeError("the restored node bootstrapped instead of following")
    store.close()
    return out


# Latency -----------------------------------------------------------------------------------


def stats_ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


def engine_filters(params: dict[str, str], source_ids: dict[str, int]) -> Any:
    from datetime import date

    from covidnews.search.engine import Filters

    covid = {"true": True, "false": False, "all": None}[params.get("covid", "true")]
    return Filters(
        date_from=date.fromisoformat(params["from"]) if "from" in params else None,
        date_to=date.fromisoformat(params["to"]) if "to" in params else None,
        sources=(source_ids[params["source"]],) if "source" in params else (),
        countries=(params["country"],) if "country" in params else (),
        languages=(params["language"],) if "language" in params else (),
        topics=(params["topic"],) if "topic" in params else (),
        covid=covid,
    )


def measure_latency(data_dir: Path, n_queries: int) -> dict[str, Any]:
    """Engine and API latency per mode; the query embedding on its own."""
    from sqlalchemy import select

    from api import create_app
    from covidnews.schema import Source
    from covidnews.search.engine import Query, SearchEngine
    from covidnews.store import Store

    settings = _settings(data_dir)
    store = Store(settings.db_url)
    with store.session() as s:
        source_ids: dict[str, int] = dict(s.execute(select(Source.slug, Source.id)).all())
    engine = SearchEngine.from_settings(settings, store)
    embed: Any = engine._embed_query
    texts = sorted({q for q, _ in QUERIES})
    embed("warm up")  # loads the model
    embed_samples = []
    for _ in range(3):
        embed.cache_clear()
        for q in texts:
            with Timer() as t:
                embed(q)
            embed_samples.append(t.seconds)
    for q in texts:
        embed(q)  # cached from here on: searches below exclude the embedding
    out: dict[str, Any] = {"embed_query": {**stats_ms(embed_samples), "calls": len(embed_samples)}}
    schedule = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    engine_out: dict[str, Any] = {}
    for mode in MODES:
        queries = [Query(q, mode, engine_filters(p, source_ids)) for q, p in schedule]
        for query in queries[: len(QUERIES)]:
            engine.search(query, PER_PAGE)  # warm-up: snapshot, FAISS index, vector rows
        samples, totals = [], []
        by_query: dict[str, list[float]] = {}
        for (q, params), query in zip(schedule, queries, strict=True):
            with Timer() as t:
                page = engine.search(query, PER_PAGE)
            samples.append(t.seconds)
            totals.append(page.total)
            by_query.setdefault(f"{q} {urlencode(params)}".strip(), []).append(t.seconds)
        slowest = sorted(by_query.items(), key=lambda kv: -float(np.median(kv[1])))[:3]
        engine_out[mode] = {
            **stats_ms(samples),
            "median_total_hits": int(np.median(totals)),
            "slowest_queries_median_ms": {
                q: round(float(np.median(ts)) * 1000, 2) for q, ts in slowest
            },
        }
    out["engine"] = engine_out
    out["passage"] = measure_passages(engine, source_ids)

    app = create_app({"SETTINGS": settings, "RATELIMIT_ENABLED": False})
    app.extensions["covidnews"]._engine = engine  # the same engine, its embedding cache warm
    client = app.test_client()
    api_out: dict[str, Any] = {}
    for mode in MODES:
        urls = [
            "/api/v1/search?" + urlencode({"q": q, "mode": mode, "per_page": PER_PAGE, **p})
            for q, p in schedule
        ]
        for url in urls[: len(QUERIES)]:
            client.get(url)
        samples, sizes = [], []
        for url in urls:
            with Timer() as t:
                resp = client.get(url)
            if resp.status_code != 200:
                raise RuntimeError(f"{url}: {resp.status_code} {resp.get_data(as_text=True)}")
            samples.append(t.seconds)
            sizes.append(len(resp.get_data()))
        api_out[mode] = {
            **stats_ms(samples),
            "median_response_kb": round(np.median(sizes) / 1e3, 1),
        }
    out["api"] = api_out
    store.close()
    return out


# Memory and export (each in a fresh process) -----------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def child_memory(data_dir: Path) -> dict[str, Any]:
    import faiss  # noqa: F401

    from covidnews.search.engine import Filters, Query, SearchEngine

    out: dict[str, Any] = {"rss_after_imports_mb": rss_mb()}
    settings = _settings(data_dir)
    engine = SearchEngine.from_settings(settings)
    engine.search(Query("vacuna casos", "keyword", Filters(covid=None)))
    out["rss_after_keyword_query_mb"] = rss_mb()
    embed: Any = engine._embed_query
    embed("vacuna")
    out["rss_after_embedder_loaded_mb"] = rss_mb()
    engine.search(Query("vacuna", "hybrid", Filters(covid=None)))
    out["rss_after_hybrid_query_mb"] = rss_mb()
    from covidnews.follow import read_state
    from covidnews.search.keyword import LAYOUT

    (index_dir,) = [p for p in settings.index_dir.iterdir() if (p / "manifest.json").exists()]
    manifest = json.loads((index_dir / "manifest.json").read_text())
    raw = manifest["rows"] * manifest["dims"] * 4
    vector_mb = dir_mb(index_dir)
    out.update(
        keyword_index_mb=dir_mb(settings.search_dir / LAYOUT),
        keyword_index_rss_mb=round(
            out["rss_after_keyword_query_mb"] - out["rss_after_imports_mb"], 1
        ),
        embedder_rss_mb=round(
            out["rss_after_embedder_loaded_mb"] - out["rss_after_keyword_query_mb"], 1
        ),
        vector_side_rss_mb=round(
            out["rss_after_hybrid_query_mb"] - out["rss_after_embedder_loaded_mb"], 1
        ),
        raw_float32_vectors_mb=round(raw / 1e6, 1),
        vector_index_mb=vector_mb,
        vector_index_vs_raw_float32=round(vector_mb * 1e6 / raw, 2),
        vector_index_kind=f"ivf-{manifest.get('codes', 'sq8')}" if manifest["trained"] else "exact",
        vector_segments=len(manifest["segments"]),
        store_mb=round((data_dir / "covidnews.db").stat().st_size / 1e6, 1),
        node_documents=(read_state(data_dir) or {}).get("documents"),
    )
    return out


def child_export(data_dir: Path, fmt: str) -> dict[str, Any]:
    from api import create_app

    app = create_app({"SETTINGS": _settings(data_dir), "RATELIMIT_ENABLED": False})
    client = app.test_client()
    warm = client.get("/api/v1/search?q=vacuna&mode=keyword")  # engine + store opened
    assert warm.status_code == 200
    before = rss_mb()
    samples = []
    size = 0
    lines = 0
    with Timer() as t:
        resp = client.get(f"/api/v1/export?q=&covid=all&format={fmt}", buffered=False)
        assert resp.status_code == 200
        for i, chunk in enumerate(resp.response):
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8")
            size += len(data)
            lines += data.count(b"\n")
            if i % 10 == 0:
                samples.append(rss_mb())
        resp.close()
    samples.append(rss_mb())
    rows = lines - 1 if fmt == "csv" else lines  # csv: header line; quoted newlines: see docs
    quarter = max(1, len(samples) // 4)
    return {
        "rows": rows,
        "output_mb": round(size / 1e6, 1),
        "seconds": round(t.seconds, 2),
        "rows_per_s": round(rows / t.seconds, 1),
        "rss_before_mb": before,
        "rss_peak_during_mb": max(samples),
        "rss_first_quarter_mb": max(samples[:quarter]),
        "rss_last_quarter_mb": max(samples[-quarter:]),
        "rss_growth_mb": round(max(samples) - before, 1),
    }


def run_child(kind: str, data_dir: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed: {proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# Server throughput -------------------------------------------------------------------------

BARE_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return "ok"
"""

WRK_SCRIPT = """
local paths = {%s}
local i = math.random(#paths)
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %%d, "seconds": %%f, "errors": %%d, "non_2xx": %%d, '
    .. '"p50_us": %%.1f, "p90_us": %%.1f, "p99_us": %%.1f}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(
    base: str, paths: list[str], seconds: float, connections: int, tmp: Path
) -> dict[str, Any]:
    """requests/s and latency of GETs cycling through ``paths`` (wrk, else Python threads)."""
    wrk = shutil.which("wrk")
    if wrk:
        script = tmp / "paths.lua"
        script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
        proc = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                str(script),
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON "))
        raw = json.loads(line.removeprefix("WRKJSON "))
        return {
            "client": "wrk",
            "requests_per_s": round(raw["requests"] / raw["seconds"], 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p90_ms": round(raw["p90_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "requests": raw["requests"],
            "errors": raw["errors"] + raw["non_2xx"],
        }
    return python_load(base, paths, seconds, connections)


def python_load(base: str, paths: list[str], seconds: float, connections: int) -> dict[str, Any]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        mine = []
        i = offset
        while time.monotonic() < end:
            i = (i + 1) % len(paths)
            start = time.perf_counter()
            conn.request("GET", paths[i])
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - start)
            if resp.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - started
    return {
        "client": "python-threads",
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **stats_ms(latencies),
        "requests": len(latencies),
        "errors": errors[0],
    }


def measure_server(data_dir: Path, seconds: float, connections: int) -> dict[str, Any]:
    out: dict[str, Any] = {"workers": 2, "threads": 4, "connections": connections}
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--worker-class",
                "gthread",
                "--preload",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(tmp),
                "bare_app:app",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/", bare)
            out["bare_flask"] = load(base, ["/"], seconds, connections, tmp)
        finally:
            stop(bare)
        port = free_port()
        env.update(
            COVIDNEWS_DATA_DIR=str(data_dir),
            COVIDNEWS_DATABASE_URL=f"sqlite:///{data_dir / 'covidnews.db'}",
            COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="10000000",
            COVIDNEWS_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("covidnews")),
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with Timer() as t:
                wait_http(base + "/healthz", server)
            out["server_start_seconds"] = round(t.seconds, 1)
            out["healthz"] = load(base, ["/healthz"], seconds, connections, tmp)
            for mode in ("keyword", "hybrid"):
                paths = [
                    "/api/v1/search?" + urlencode({"q": q, "mode": mode, **p}) for q, p in QUERIES
                ]
                for path in paths:  # warm both workers' caches (embeddings, snapshots)
                    for _ in range(2):
                        urllib.request.urlopen(base + path, timeout=60).read()
                out[f"search_{mode}"] = load(base, paths, seconds, connections, tmp)
            # Every request a query never seen (two words of the corpus): nothing cached, the
            # query embedding included — what a crowd of new users costs.
            for mode in ("keyword", "hybrid"):
                paths = [
                    "/api/v1/search?" + urlencode({"q": q, "mode": mode})
                    for q in two_word_queries(4000, seed=1 if mode == "keyword" else 2)
                ]
                out[f"search_{mode}_unique"] = load(base, paths, seconds, connections, tmp)
            out["node_memory"] = tree_memory(server.pid)
        finally:
            stop(server)
    return out


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS and PSS of a process and its descendants (the node: server master, workers and the
    index follower). RSS counts pages shared between them (the mapped indexes, the preloaded
    models) once per process; PSS divides them among the processes sharing them, so its sum is
    the node's real footprint."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    rss = pss = anon = 0
    each = []
    for p in tree:
        try:
            fields = {}
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Anonymous"):
                    fields[name] = int(rest.split()[0])
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        rss += fields.get("Rss", 0)
        pss += fields.get("Pss", 0)
        anon += fields.get("Anonymous", 0)
        each.append(
            {
                "command": " ".join(cmd.split()[1:4])[:60],
                "rss_mb": round(fields.get("Rss", 0) / 1024),
                "pss_mb": round(fields.get("Pss", 0) / 1024),
                "anonymous_mb": round(fields.get("Anonymous", 0) / 1024),
            }
        )
    return {
        "processes": len(tree),
        "rss_sum_mb": round(rss / 1024),
        "pss_sum_mb": round(pss / 1024),
        "anonymous_sum_mb": round(anon / 1024),
        "per_process": each,
    }


# Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300, help="timed searches per mode")
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep built corpora here")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--embed", type=int, default=3000, help="texts embedded with E5")
    parser.add_argument("--noise", type=float, default=0.012, help="per-dimension vector noise")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--follow-rounds", type=int, default=20, help="32-article polls timed")
    parser.add_argument("--child", choices=["memory", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", default="jsonl", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child = (
            child_memory(args.data_dir)
            if args.child == "memory"
            else child_export(args.data_dir, args.format)
        )
        print(json.dumps(child))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = None
    if args.cache_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-search-")
        root = Path(tmp)
    else:
        root = args.cache_dir.resolve()
        root.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for n in sizes:
            data_dir, build = ensure_corpus(root, n, args)
            result: dict[str, Any] = {"articles": n, "build": build}
            result["follow"] = measure_follow(data_dir, args.follow_rounds)
            result.update(measure_latency(data_dir, args.queries))
            result["memory"] = run_child("memory", data_dir)
            if not args.skip_export:
                result["export"] = {
                    fmt: run_child("export", data_dir, "--format", fmt) for fmt in ("jsonl", "csv")
                }
            if not args.skip_server:
                result["server"] = measure_server(data_dir, args.load_seconds, args.connections)
            results.append(result)
        print(
            json.dumps(
                {
                    "benchmark": "search",
                    "sizes": sizes,
                    "queries_per_mode": args.queries,
                    "distinct_queries": len(QUERIES),
                    "per_page": PER_PAGE,
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    "results": results,
                }
            )
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
