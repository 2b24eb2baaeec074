"""The query language of keyword search and the analysis of each language field."""

from __future__ import annotations

import pytest

from covidnews.search.analysis import (
    MAX_CLAUSES,
    MAX_PASSAGE_CHARS,
    MAX_QUERY_CHARS,
    QueryError,
    fold,
    parse_query,
    tokens,
)
from covidnews.search.keyword import ANALYZERS


def test_fold_removes_accents_and_case() -> None:
    assert fold("Vacunación ÑANDÚ Pingüino") == "vacunacion nandu pinguino"
    assert tokens("¿Covid-19? ¡Sí!") == ["covid", "19", "si"]


def test_field_analyzers_fold_and_stem_per_language() -> None:
    forms = ["vacuna", "vacunas", "vacunación", "vacunacion", "Vacunados"]
    assert {ANALYZERS["es"].analyze(f)[0] for f in forms} == {"vacun"}
    assert ANALYZERS["en"].analyze("vaccines vaccination vaccinated") == ["vaccin"] * 3
    # The folded field keeps words whole: exact matches and languages without a stemmer.
    assert ANALYZERS["fold"].analyze("Vacinação COVID-19") == ["vacinacao", "covid", "19"]


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


def test_long_queries_are_passages_up_to_a_limit() -> None:
    assert not parse_query("vacunas " + "x" * (MAX_QUERY_CHARS - 8)).is_passage
    assert parse_query("a" * (MAX_QUERY_CHARS + 1)).is_passage
    assert parse_query(" ".join(f"w{i}" for i in range(MAX_CLAUSES + 1))).is_passage
    with pytest.raises(QueryError):
        parse_query("a" * (MAX_PASSAGE_CHARS + 1))
