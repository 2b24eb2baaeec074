"""The NLP command-line contracts, through the real `covidnews` command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import SHARED, run_cli


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(COVIDNEWS_DATA_DIR=str(tmp_path / "var"), **extra)
    return env


def test_translate_keeps_one_line_per_line(tmp_path: Path) -> None:
    lines = [
        "La vacuna llegó ayer a Lima.",
        "",
        "¿Cuántos casos hay hoy? 🦠 Muchos.",
        " ".join(["El hospital amplió sus camas de cuidados intensivos."] * 300),
        "Texto con\u2028separador de línea y \u200ecaracteres raros\u0301.",
        "",
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    proc = run_cli(
        "translate", "--source", "es", "--target", "en", "-", env=_env(tmp_path), input=data
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")[:-1]
    assert len(out) == len(lines)
    assert out[1] == "" and out[5] == ""
    assert "vaccine" in out[0].lower()
    assert len(out[3]) > 1000
    back = run_cli(
        "translate",
        "--source",
        "en",
        "--target",
        "es",
        env=_env(tmp_path),
        input=b"The vaccine arrived.\n",
    )
    assert back.returncode == 0 and "vacuna" in back.stdout.lower()


def test_translate_refuses_unknown_pairs(tmp_path: Path) -> None:
    proc = run_cli(
        "translate", "--source", "es", "--target", "de", env=_env(tmp_path), input=b"hola\n"
    )
    assert proc.returncode == 2
    assert "cannot translate" in proc.stderr


def test_classify_reports_bad_lines_and_keeps_good_ones(tmp_path: Path) -> None:
    good = [
        {
            "title": "Récord de contagios de covid",
            "text": "El Ministerio de Salud reportó 5.000 nuevos casos de coronavirus y pidió usar mascarilla.",
        },
        {
            "title": "COVID-19 vaccines arrive",
            "text": "The first doses of the COVID-19 vaccine arrived at the hospital today.",
            "language": "en",
        },
        {
            "title": "Final de la Copa",
            "text": "El equipo local ganó el partido de fútbol por tres goles a uno ante su público.",
        },
    ]
    data = (
        "\n".join(
            [json.dumps(good[0]), "{not json", json.dumps(good[1]), "[1, 2]", json.dumps(good[2])]
        )
        + "\n"
    )
    proc = run_cli("classify", env=_env(tmp_path), input=data.encode())
    assert proc.returncode == 1
    assert ":2:" in proc.stderr and ":4:" in proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 3
    assert out[0]["is_covid"] and out[1]["is_covid"] and not out[2]["is_covid"]
    assert out[0]["language"] == "es" and out[1]["language"] == "en"
    assert out[2]["topics"] == []
    for o in out:
        assert 0.0 <= o["covid_score"] <= 1.0
        assert [t["score"] for t in o["topics"]] == sorted(
            (t["score"] for t in o["topics"]), reverse=True
        )


@pytest.mark.slow
def test_ingest_runs_the_pipeline_then_process_and_reindex(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (SHARED / "fakedes" / "labelled_dev.jsonl").open()]
    rows = [r for r in rows if r.get("link") and r["text"].strip()][:12]
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"url": r["link"], "title": r["headline"], "text": r["text"]}) for r in rows
        )
        + "\n",
        encoding="utf-8",
    )
    env = _env(tmp_path, COVIDNEWS_EMBEDDER="hashing")
    ingest = run_cli("ingest", str(path), "--json", env=env)
    assert ingest.returncode == 0, ingest.stderr
    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["states"]["done"] == 12  # ingest ran the stages in-process
    assert stats["embeddings"] == 12
    assert stats["covid"]["yes"] + stats["covid"]["no"] == 12
    again = run_cli("process", "--json", env=env)
    assert json.loads(again.stdout)["processed"] == 0
    reindex = run_cli("reindex", env=env)
    assert reindex.returncode == 0 and "12 vectors" in reindex.stdout
