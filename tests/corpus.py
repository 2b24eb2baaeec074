"""A fixed search corpus of real text, processed by the real pipeline (for search and API tests).

- 30 Spanish articles of the bundled FakeDeS sample (covidnews/data/sample_articles.jsonl),
  with countries and dates assigned deterministically;
- two syndicated copies of one of them (other outlets, retitled, same body);
- 6 English documents assembled from TICO-19 dev sentences (Wikinews/Wikipedia Covid texts).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
COUNTRIES = ["MX", "ES", "CO", "AR", "PE"]
START = datetime(2021, 1, 4, 12, 0, tzinfo=UTC)
COPIED = 13  # "Cargamento con 219,375 vacunas contra Covid-19 de Pfizer llega a México"
ENGLISH_DOCS = ["Wikinews_4", "Wikinews_6", "Wikinews_2", "wiki_29", "wiki_20", "wiki_11"]


def build_corpus(shared: Path) -> list[dict[str, Any]]:
    lines = (ROOT / "covidnews/data/sample_articles.jsonl").read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines[:30]):
        row = json.loads(line)
        row.update(
            country=COUNTRIES[i % len(COUNTRIES)],
            published_at=(START + timedelta(days=2 * i)).isoformat(),
            language="es",
        )
        out.append(row)
    original = out[COPIED]
    for n, outlet in enumerate(["Agencia Uno", "Diario Dos"], start=1):
        copy = dict(original)
        copy.update(
            url=f"https://copias{n}.example.org/nota/{n}",
            title=f"{original['title']} ({outlet})",
            source=outlet,
            country="MX",
            published_at=(START + timedelta(days=2 * COPIED, hours=n)).isoformat(),
        )
        copy.pop("id", None)
        copy.pop("external_id", None)
        out.append(copy)
    sentences: dict[str, list[str]] = defaultdict(list)
    with open(shared / "tico19/tico19_dev.tsv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            sentence = row["en"]
            if sentence.startswith(("b'", 'b"')):  # a few TICO rows are Python bytes literals
                sentence = sentence[2:-1]
            sentences[row["tuid"].split(":")[0]].append(sentence)
    for i, doc in enumerate(ENGLISH_DOCS):
        sents = sentences[doc]
        title = sents[0] if len(sents[0]) <= 140 else sents[0][:140].rsplit(" ", 1)[0]
        out.append(
            {
                "url": f"https://en.example.org/{doc.lower()}",
                "title": title,
                "text": "\n\n".join(sents[1:]),
                "source": "Wikinews" if doc.startswith("Wikinews") else "Wikipedia",
                "language": "en",
                "published_at": (START + timedelta(days=3 * i, hours=5)).isoformat(),
            }
        )
    return out


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


TABLES = ["sources", "articles", "translations", "article_topics", "embeddings", "stage_runs"]


def copy_store(src_url: str, dst_url: str) -> None:
    """Copy every row of the processed tables (ids kept) into another migrated database."""
    src, dst = create_engine(src_url), create_engine(dst_url)
    meta = MetaData()
    meta.reflect(src)
    dst_meta = MetaData()
    dst_meta.reflect(dst)
    with src.connect() as a, dst.begin() as b:
        for name in TABLES:
            rows = [dict(r._mapping) for r in a.execute(select(meta.tables[name]))]
            if name == "articles":
                # duplicate_of points into the same table: insert parents first.
                rows.sort(key=lambda r: (r["duplicate_of"] is not None, r["id"]))
            if rows:
                b.execute(insert(dst_meta.tables[name]), rows)
        if dst.dialect.name == "postgresql":
            for name in ["sources", "articles", "translations"]:
                b.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT MAX(id) FROM {name}))"
                    )
                )
    src.dispose()
    dst.dispose()


@contextlib.contextmanager
def serve_copy(corpus: Any, root: Path, workers: int) -> Iterator[tuple[str, Path]]:
    """`covidnews serve` (gunicorn) on a copy of a processed corpus (a test may change the
    copy's index); yields (base URL, the copy's data dir). Stopped with SIGTERM; its stderr must
    hold no traceback."""
    data_dir = root / "var"
    shutil.copytree(corpus.settings.data_dir, data_dir)
    db = root / "covidnews.db"
    shutil.copy(corpus.url.removeprefix("sqlite:///"), db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(data_dir),
        COVIDNEWS_DATABASE_URL=f"sqlite:///{db}",
        COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="100000",
        TMPDIR=str(root),
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "covidnews",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        yield base, data_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
