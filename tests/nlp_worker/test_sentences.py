"""Sentence splitting: pysbd for es/en with repairs, regex elsewhere, long texts in bounded time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nlp_worker.backends import sentences
from nlp_worker.backends.sentences import split_sentences

pytest.importorskip("pysbd")


def test_spanish_abbreviations_decimals_and_questions() -> None:
    text = (
        "El Dr. García dijo que la OMS recomienda 1.5 m. de distancia. ¿Qué opina usted? "
        "¡Increíble! Luego habló el Sr. Pérez. Los casos en EE. UU. subieron un 3,5 %."
    )
    assert split_sentences(text, "es") == [
        "El Dr. García dijo que la OMS recomienda 1.5 m. de distancia.",
        "¿Qué opina usted?",
        "¡Increíble!",
        "Luego habló el Sr. Pérez.",
        "Los casos en EE. UU. subieron un 3,5 %.",
    ]


@pytest.mark.parametrize("language", ["es", None])
def test_sentence_ending_in_a_short_word_is_not_glued(language: str | None) -> None:
    text = "¿Vienes? Dijo que no. Luego se fue a la Av. Juárez con la Dra. Ruiz."
    assert split_sentences(text, language) == [
        "¿Vienes?",
        "Dijo que no.",
        "Luego se fue a la Av. Juárez con la Dra. Ruiz.",
    ]


def test_english() -> None:
    text = "Mr. Smith met Dr. Jones at 3 p.m. today. They talked about U.S. policy. Then left."
    assert split_sentences(text, "en") == [
        "Mr. Smith met Dr. Jones at 3 p.m. today.",
        "They talked about U.S. policy.",
        "Then left.",
    ]


def test_newlines_are_boundaries() -> None:
    text = "Titular sin punto\nPrimer párrafo aquí. Segundo aquí.\n\n  Otro párrafo  \n"
    expected = ["Titular sin punto", "Primer párrafo aquí.", "Segundo aquí.", "Otro párrafo"]
    assert split_sentences(text, "es") == expected
    assert split_sentences(text, None) == expected


def test_other_languages_use_the_regex() -> None:
    text = "Olá, tudo bem? Eu sou o Dr. Silva. A vacina chegou hoje!\nNova linha… E mais «uma». Fim"
    assert split_sentences(text, "pt") == [
        "Olá, tudo bem?",
        "Eu sou o Dr. Silva.",
        "A vacina chegou hoje!",
        "Nova linha…",
        "E mais «uma».",
        "Fim",
    ]
    assert split_sentences("Es un texto. sigue en minúscula.", None) == [
        "Es un texto. sigue en minúscula."
    ]


@pytest.mark.parametrize("language", ["es", "en", "pt", None, "ES"])
def test_empty(language: str | None) -> None:
    assert split_sentences("", language) == []
    assert split_sentences(" \n\t ", language) == []


def test_real_article_keeps_all_text(shared_data: Path) -> None:
    with (shared_data / "fakedes" / "labelled_dev.jsonl").open(encoding="utf-8") as f:
        text = json.loads(f.readline())["text"]
    out = split_sentences(text, "es")
    assert len(out) > 5
    assert "".join(out).replace(" ", "") == "".join(text.split())


def _check_fast(texts: list[str], seconds: float) -> None:
    for text in texts:
        started = time.perf_counter()
        out = split_sentences(text, "es")
        assert time.perf_counter() - started < seconds
        assert "".join(out).replace(" ", "") == "".join(text.split())  # nothing lost


def _fakedes(shared_data: Path) -> list[str]:
    with (shared_data / "fakedes" / "train.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_long_texts_are_fast(shared_data: Path) -> None:
    texts = _fakedes(shared_data)
    one_line = " ".join(t.replace("\n", " ") for t in texts[:10])  # ~25 k chars, no newline
    assert len(split_sentences(one_line, "es")) > 100
    _check_fast(["\n".join(texts[:60]), one_line, "palabra " * 20_000], seconds=4.0)


@pytest.mark.slow
def test_very_long_texts_are_fast(shared_data: Path) -> None:
    texts = _fakedes(shared_data)
    _check_fast(
        [
            "\n".join(texts),  # 1.5 M characters
            " ".join(t.replace("\n", " ") for t in texts),  # the same on one line
            "palabra " * 200_000,  # 1.6 M characters without a full stop
            "Una frase corta. " * 100_000,
        ],
        seconds=8.0,
    )


def test_pysbd_only_sees_a_bounded_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentences, "PYSBD_MAX_CHARS", 100)
    monkeypatch.setattr(sentences, "BLOCK_CHARS", 40)
    text = "Primera frase corta aquí. Segunda frase del texto.\n" * 10
    out = split_sentences(text, "es")
    assert out == ["Primera frase corta aquí.", "Segunda frase del texto."] * 10


def test_a_piece_starting_with_a_comma_continues_the_sentence() -> None:
    # Seen in the demo corpus: pysbd ends a sentence at "EE.UU." before the comma.
    text = (
        "El Dr. Anthony Fauci, el principal experto de EE.UU., instó el domingo a vacunarse. "
        "Otra frase."
    )
    assert split_sentences(text, "es") == [
        "El Dr. Anthony Fauci, el principal experto de EE.UU., instó el domingo a vacunarse.",
        "Otra frase.",
    ]
