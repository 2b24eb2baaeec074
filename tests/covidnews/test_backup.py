"""`covidnews backup` / `covidnews restore` on both backends: backup → wipe → restore gives the
same `stats` and the same search results (indexes rebuilt from the restored store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import text, update

from api import create_app
from covidnews.schema import Article
from covidnews.settings import load_settings
from covidnews.store import Store
from tests.conftest import run_cli

ROWS = [
    {"url": f"https://d{i % 3}.example/nota-{i}", "title": title, "text": body, "language": "es",
     "published_at": f"2021-03-{10 + i:02d}T22:30:00-05:00", "source": f"Diario {i % 3}"}
    for i, (title, body) in enumerate([
        ("Llegan vacunas a Bogotá", "Las vacunas contra la covid llegaron a Bogotá en la noche."),
        ("Nuevos casos en Lima", "El ministerio reportó nuevos casos de covid en Lima."),
        ("Mascarillas en el metro", "El uso de mascarillas sigue en el metro de la ciudad."),
        ("Vacunas para mayores", "La campaña de vacunas sigue con los mayores de 80 años."),
        ("Hospitales llenos", "Los hospitales de la capital están llenos por la covid."),
    ])
]  # fmt: skip


def _search(settings: Any, q: str) -> list[int]:
    app = create_app({"SETTINGS": settings, "TESTING": True, "RATELIMIT_ENABLED": False})
    try:
        got = app.test_client().get(f"/api/v1/search?q={q}&mode=keyword&covid=all").get_json()
    finally:
        app.extensions["covidnews"].close()
    return [r["id"] for r in got["results"]]


def test_backup_wipe_restore_gives_the_same_store_and_search(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n")
    assert run_cli("ingest", str(source), env=cli_env).returncode == 0
    store = Store(db_url)
    with store.session() as s:
        s.execute(update(Article).values(state="done", is_covid=True, covid_score=0.9))
    store.close()
    assert run_cli("reindex", env=cli_env).returncode == 0
    settings = load_settings(data_dir=tmp_path / "var", database_url=db_url, index_max_lag=0)
    before = json.loads(run_cli("stats", "--json", env=cli_env).stdout)
    found = {q: _search(settings, q) for q in ("vacunas", "covid", "metro")}
    assert found["vacunas"] and found["covid"] and found["metro"]

    dest = tmp_path / "backups" / "covidnews.backup"
    made = run_cli("backup", str(dest), env=cli_env)
    assert made.returncode == 0, made.stderr
    assert dest.is_file() and "5 articles" in made.stdout
    again = run_cli("backup", str(dest), env=cli_env)  # never overwrites
    assert again.returncode == 3 and "exists" in again.stderr

    # Wipe: the database emptied, this node's indexes gone.
    store = Store(db_url)
    if store.dialect == "sqlite":
        store.close()
        Path(db_url.removeprefix("sqlite:///")).unlink()
    else:
        with store.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        store.close()
    for child in (tmp_path / "var").iterdir():
        if child.is_dir():
            import shutil

            shutil.rmtree(child)
    assert json.loads(run_cli("stats", "--json", env=cli_env).stdout)["articles"] == 0

    refused = run_cli("restore", str(tmp_path / "nothing.backup"), "--yes", env=cli_env)
    assert refused.returncode == 3 and "no backup file" in refused.stderr
    done = run_cli("restore", str(dest), "--yes", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "restored 5 articles" in done.stdout and "indexes rebuilt: 5 documents" in done.stdout
    after = json.loads(run_cli("stats", "--json", env=cli_env).stdout)
    assert after == before
    assert {q: _search(settings, q) for q in found} == found
