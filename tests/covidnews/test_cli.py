"""The real `covidnews` command in subprocesses, against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from covidnews.cli import COMMANDS
from covidnews.schema import Article, Source
from covidnews.store import Store
from tests.conftest import ROOT, run_cli

FAKEDES_MAP = ("--map", "headline=title", "--map", "link=url")


def stats(env: dict[str, str]) -> dict[str, object]:
    proc = run_cli("stats", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def test_help_for_every_command() -> None:
    env = dict(os.environ)
    top = run_cli("--help", env=env)
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        sub = run_cli(name, "--help", env=env)
        assert sub.returncode == 0, sub.stderr
        assert "Usage: covidnews " + name in sub.stdout


def test_help_imports_nothing_heavy() -> None:
    """`covidnews --help` must answer fast: it may not import the database or model stacks."""
    code = (
        "import sys; from click.testing import CliRunner; from covidnews.cli import main;"
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy','alembic','pydantic','pydantic_settings','numpy','psycopg'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ingest_fakedes_stores_every_valid_row_and_rerun_adds_nothing(
    cli_env: dict[str, str], shared_data: Path
) -> None:
    corpus = shared_data / "fakedes" / "train.jsonl"
    rows = [json.loads(line) for line in corpus.open(encoding="utf-8")]
    expected_urls = {r["link"] for r in rows if r.get("link") and r.get("text", "").strip()}
    proc = run_cli("ingest", str(corpus), *FAKEDES_MAP, "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inserted"] == len(expected_urls) == len(rows)
    assert report["bad"] == 0
    first = stats(cli_env)
    assert first["articles"] == len(expected_urls)
    assert first["states"] == {"pending": len(rows), "processing": 0, "done": 0, "failed": 0}
    assert (
        first["sources"] == len({r["source"].strip().lower() for r in rows})
        or first["sources"] > 10
    )

    again = run_cli("ingest", str(corpus), *FAKEDES_MAP, "--json", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["inserted"] == 0
    assert json.loads(again.stdout)["unchanged"] == len(rows)
    assert stats(cli_env) == first

    # Spot-check one row end to end: fields land where the contract says.
    store = Store(cli_env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            art = s.scalar(select(Article).where(Article.external_id == rows[5]["id"]))
            assert art is not None
            assert art.title == " ".join(rows[5]["headline"].split())
            assert art.text == rows[5]["text"].replace("\r\n", "\n").strip()
            assert art.extra["label"] == rows[5]["label"]
            src = s.get(Source, art.source_id)
            assert src is not None
            assert src.name == rows[5]["source"].strip()
    finally:
        store.close()


def test_ingest_reports_three_broken_lines_and_stores_the_rest(
    cli_env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / "fakedes" / "development.jsonl").read_text(encoding="utf-8").splitlines()
    good = [json.loads(line) for line in lines[:20]]
    docs = [json.dumps({"url": r["link"], "title": r["headline"], "text": r["text"]}) for r in good]
    broken = {
        4: '{"url": "https://diario.example/x", "text": "sin cerrar"',  # bad JSON
        9: json.dumps({"title": "sin url", "text": "texto"}),  # missing url
        15: json.dumps({"url": "https://diario.example/vacio", "text": "   "}),  # empty text
    }
    out = list(docs)
    for number in sorted(broken):
        out.insert(number - 1, broken[number])
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    errors = tmp_path / "rejected.jsonl"

    proc = run_cli("ingest", str(path), "--errors", str(errors), env=cli_env)
    assert proc.returncode == 1
    assert f"{path}:4: invalid JSON" in proc.stderr
    assert f"{path}:9: missing required field 'url'" in proc.stderr
    assert f"{path}:15: 'text' is empty" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert stats(cli_env)["articles"] == len({r["link"] for r in good})
    rejected = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejected] == [4, 9, 15]
    assert rejected[0]["raw"] == broken[4]  # nothing lost: the original line is kept


def test_ingest_from_stdin(cli_env: dict[str, str]) -> None:
    data = "\n".join(
        json.dumps({"url": f"https://diario.example/{i}", "text": f"texto {i}", "language": "es"})
        for i in range(7)
    ).encode()
    proc = run_cli("ingest", "-", env=cli_env, input=data)
    assert proc.returncode == 0, proc.stderr
    assert "7 new" in proc.stderr
    assert stats(cli_env)["articles"] == 7


def test_ingest_missing_file_is_a_usage_error(cli_env: dict[str, str]) -> None:
    proc = run_cli("ingest", "/nonexistent/file.jsonl", env=cli_env)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_unreachable_database_is_a_clean_error(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, COVIDNEWS_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none")
    proc = run_cli("stats", env=env)
    assert proc.returncode == 3
    assert "cannot open database" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stats_human_output(cli_env: dict[str, str]) -> None:
    data = json.dumps({"url": "https://d.example/a", "text": "t", "published_at": "2020-03-12"})
    run_cli("ingest", "-", env=cli_env, input=data.encode())
    proc = run_cli("stats", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "Articles    1" in proc.stdout
    assert "pending 1" in proc.stdout
    assert "2020-03-12" in proc.stdout


def _big_corpus(shared: Path, path: Path, n: int) -> list[dict[str, str]]:
    base = [json.loads(line) for line in (shared / "fakedes" / "train.jsonl").open()]
    rows = []
    for i in range(n):
        src = base[i % len(base)]
        rows.append(
            {
                "url": f"https://diario{i % 13}.example/noticia/{i}",
                "id": f"row-{i}",
                "title": src["headline"],
                "text": f"{src['text'][:600]} ({i})",
                "source": f"Diario {i % 13}",
            }
        )
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows


def _count(url: str) -> int:
    store = Store(url)
    try:
        with store.session() as s:
            return s.scalar(select(func.count()).select_from(Article)) or 0
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_completes_without_duplicates(
    cli_env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    n = 30_000
    path = tmp_path / "big.jsonl"
    rows = _big_corpus(shared_data, path, n)
    url = cli_env["COVIDNEWS_DATABASE_URL"]
    assert run_cli("init", env=cli_env).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "covidnews", "ingest", str(path), "--batch-size", "100"],
        env=cli_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        stored = _count(url)
        if stored >= 1000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "ingest finished before it could be killed; enlarge the file"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    killed_at = _count(url)
    assert 0 < killed_at < n
    assert killed_at % 100 == 0  # only whole batches (transactions) are ever visible
    store = Store(url)
    try:
        with store.session() as s:
            conn = s.connection()
            if store.dialect == "sqlite":
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
            # Every stored row is complete and equals its input line.
            by_id = {r["id"]: r for r in rows}
            for ext, title, body in s.execute(
                select(Article.external_id, Article.title, Article.text)
            ):
                assert by_id[ext]["text"] == body
                assert by_id[ext]["title"].split() == title.split()
    finally:
        store.close()

    rerun = run_cli("ingest", str(path), "--batch-size", "500", "--json", env=cli_env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["unchanged"] == killed_at
    assert report["inserted"] == n - killed_at
    final = stats(cli_env)
    assert final["articles"] == n
    assert final["sources"] == 13
    store = Store(url)
    try:
        with store.session() as s:
            distinct = s.scalar(select(func.count(func.distinct(Article.external_id))))
            assert distinct == n
    finally:
        store.close()
