"""Text analysis and the query language of keyword search."""

from __future__ import annotations

import pytest

from covidnews.search.analysis import (
    MAX_QUERY_CHARS,
    QueryError,
    analyze,
    fold,
    highlight_spans,
    parse_query,
    tokens,
    variants,
)


def test_fold_removes_accents_and_case() -> None:
    assert fold("Vacunación ÑANDÚ Pingüino") == "vacunacion nandu pinguino"
    assert tokens("¿Covid-19? ¡Sí!") == ["covid", "19", "si"]


def test_spanish_stems_match_with_and_without_accents() -> None:
    forms = ["vacuna", "vacunas", "vacunación", "vacunacion", "vacunados"]
    assert {analyze(f, "es")[0] for f in forms} == {"vacun"}
    assert analyze("vaccines vaccination vaccinated", "en") == ["vaccin"] * 3
    # Unknown languages are folded, not stemmed.
    assert analyze("Vacinação", "pt") == ["vacinacao"]


def test_query_words_look_up_both_languages() -> None:
    assert set(variants("vacunas")) == {"vacunas", "vacun", "vacuna"}
    assert "vaccin" in variants("vaccines")


def test_parse_query_phrases_exclusions_and_stopwords() -> None:
    q = parse_query('vacunas "ministerio de salud" -pfizer -"sputnik v" de covid-19')
    required = [c.text for c in q.required]
    assert required == ["vacunas", "ministerio de salud", "covid-19"]
    assert [c.is_phrase for c in q.required] == [False, True, True]
    assert [c.text for c in q.excluded] == ["pfizer", "sputnik v"]
    assert all(c.negated for c in q.excluded)
    # Only stopwords: they are kept (the user asked for them).
    assert [c.text for c in parse_query("de la").required] == ["de", "la"]
    assert parse_query("  ").is_empty
    assert parse_query('"unclosed phrase').required[0].is_phrase


def test_parse_query_limits() -> None:
    with pytest.raises(QueryError):
        parse_query("a" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(QueryError):
        parse_query(" ".join(f"w{i}" for i in range(40)))


def test_highlight_spans_match_word_forms() -> None:
    text = "La Vacunación avanza: más vacunas llegan."
    words = parse_query("vacuna").highlight
    assert [text[s:e] for s, e in highlight_spans(text, words)] == ["Vacunación", "vacunas"]
