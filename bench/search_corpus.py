"""The search benchmark's deployments (``bench/bench_search.py``, ``bench/bench_archive.py``): a
synthetic corpus of real text, a store and a node's indexes built from it, cached by size.

- **corpus**: articles of 1-4 real paragraphs of the covid19mx press-conference transcripts
  (Spanish; title = the first sentence, summary = the first two) plus 5 % English articles of
  TICO-19 sentences; dates over 2020-2021, 12 sources in 7 countries, 1-3 random topics, 90 %
  flagged Covid, 5 % syndicated copies (same text and story, another outlet);
- **store**: SQLite, articles written by ``covidnews.ingest.ingest_path`` (by SQL past 200k rows),
  then marked processed (state, Covid flag and score, summary, story) and given topics by SQL;
- **vectors**: only ``--embed`` distinct texts (article leads) are embedded with the real default
  embedder (E5, ``kind="passage"``); every article's vector is the vector of its lead plus
  Gaussian noise (``--noise`` per dimension), re-normalised, and a syndicated copy has its
  original's vector — so neighbourhoods and score levels are those of real E5 vectors, at a cost
  2 cores can afford;
- **node**: its keyword and vector indexes bootstrapped from the store by the follower (what
  ``covidnews serve`` does on an empty data directory), timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED, Timer, write_jsonl

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
_SPEAKER = re.compile(r"^[A-ZÁÉÍÓÚÑÜ][A-ZÁÉÍÓÚÑÜ .,\-]{3,}:\s*")
INGEST_MAX = 200_000  # past this many rows, articles are inserted by SQL
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


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
