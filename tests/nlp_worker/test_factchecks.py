"""Linking fact-checks and articles with the real backends (E5, Apertium) on both databases:
exact appearances, a Spanish claim ↔ an English article and the reverse, unrelated articles on
the same topic left alone, and links made whichever side arrives second."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from covidnews.factchecks import (
    FactCheckQuery,
    FactCheckRecord,
    factchecks_of,
    find_factchecks,
    upsert_factchecks,
)
from covidnews.ingest import parse_record
from covidnews.schema import FactCheck, FactCheckLink
from covidnews.settings import Settings, load_settings
from covidnews.store import Store
from nlp_worker.factchecks import link_pending
from nlp_worker.process import process_ids
from nlp_worker.stages import Backends
from tests.nlp_worker.conftest import real_backends

pytestmark = pytest.mark.slow

WHEN = "2021-03-02T10:00:00-05:00"
ARTICLES = {
    "chip_es": (
        "https://diario.example/2021/03/01/vacunas-microchip",
        "es",
        "No, las vacunas contra la covid-19 no llevan un microchip para rastrear a la gente",
        "Circula en redes sociales un mensaje que asegura que las vacunas contra la covid-19 "
        "contienen un microchip para rastrear a las personas vacunadas. Es falso: las vacunas "
        "no llevan ningún microchip ni dispositivo de rastreo, según las autoridades sanitarias. "
        "Un microchip no cabe por la aguja de una jeringa y no podría transmitir datos.",
    ),
    "water_en": (
        "https://news.example/2021/03/01/hot-water-coronavirus",
        "en",
        "Drinking hot water does not kill the coronavirus",
        "Messages shared on WhatsApp claim that drinking hot water every fifteen minutes kills "
        "the coronavirus in the throat. Doctors say drinking hot water does not kill the virus "
        "and does not prevent or cure COVID-19; the claim has no scientific basis.",
    ),
    "lot_es": (
        "https://diario.example/2021/03/01/lote-vacunas-pfizer",
        "es",
        "México recibe un nuevo lote de vacunas de Pfizer para adultos mayores",
        "El Gobierno de México recibió este lunes un nuevo cargamento de vacunas de Pfizer "
        "contra la covid-19, que se distribuirá en los centros de vacunación de la capital para "
        "inmunizar a los adultos mayores de 60 años durante las próximas dos semanas.",
    ),
    "chip_es_2": (
        "https://otro.example/vacuna-chip-5g",
        "es",
        "Las vacunas no tienen microchips: un bulo que vuelve a circular",
        "Otra vez circula el bulo de que las vacunas contra el coronavirus tienen un microchip "
        "para rastrear a la población. Las vacunas no contienen microchips ni pueden rastrear "
        "a nadie, explican los expertos consultados.",
    ),
    "appeared_es": (
        "https://diario.example/2021/02/28/remedio-casero?utm_source=twitter",
        "es",
        "Un remedio casero con limón y bicarbonato",
        "Una receta que combina limón y bicarbonato de sodio se comparte como remedio casero "
        "para fortalecer las defensas. Los nutricionistas recomiendan una dieta variada y "
        "advierten que no existen alimentos milagrosos contra las enfermedades respiratorias.",
    ),
}


def review(claim: str, language: str, verdict: str, **more: object) -> FactCheckRecord:
    return FactCheckRecord(
        url=f"https://verifica.example/{abs(hash(claim)) % 10**8}",
        claim=claim,
        verdict_text=verdict.capitalize(),
        verdict=verdict,
        language=language,
        reviewed_at=datetime(2021, 3, 3, 12, tzinfo=UTC),
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def e5_backends() -> Backends:
    return real_backends("e5")


def add(store: Store, backends: Backends, settings: Settings, *keys: str) -> dict[str, int]:
    records = [
        parse_record(
            {"url": url, "language": lang, "title": title, "text": text, "published_at": WHEN}
        )
        for url, lang, title, text in (ARTICLES[k] for k in keys)
    ]
    result = store.upsert_articles(records)
    ids = dict(zip(keys, result.changed_ids, strict=True))
    process_ids(store, settings, list(ids.values()), backends=backends)
    return ids


def links(store: Store) -> set[tuple[int, int, str]]:
    with store.session() as s:
        rows = s.execute(
            select(FactCheckLink.factcheck_id, FactCheckLink.article_id, FactCheckLink.reason)
        )
        return {(int(f), int(a), str(r)) for f, a, r in rows}


def test_links_by_appearance_and_by_statement_across_languages(
    store: Store, e5_backends: Backends, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "var")
    ids = add(store, e5_backends, settings, "chip_es", "water_en", "lot_es", "appeared_es")
    chip, water, other = upsert_factchecks(
        store,
        [
            review("COVID-19 vaccines contain a microchip to track people", "en", "false"),
            review("Beber agua caliente mata el coronavirus", "es", "false"),
            review(
                "El limón con bicarbonato cura la covid",
                "es",
                "false",
                appearances=["https://www.diario.example/2021/02/28/remedio-casero"],
            ),
        ],
        source_id=None,
    )
    link_pending(store, e5_backends.embedder)
    made = links(store)
    assert (chip, ids["chip_es"], "similar") in made  # an English claim, a Spanish article
    assert (water, ids["water_en"], "similar") in made  # a Spanish claim, an English article
    assert (other, ids["appeared_es"], "appearance") in made  # the URL, exactly
    assert not any(a == ids["lot_es"] for _, a, _ in made)  # vaccines too, another statement
    assert len(made) == 3, made
    with store.session() as s:
        assert all(f.linked_at is not None and f.embedding for f in s.scalars(select(FactCheck)))

    # The article side sees them, with the reason and the fact-checker's verdict.
    seen = factchecks_of(store, [ids["chip_es"], ids["lot_es"]])
    assert [v.id for v in seen[ids["chip_es"]]] == [chip] and ids["lot_es"] not in seen
    assert seen[ids["chip_es"]][0].verdict == "false"
    assert seen[ids["chip_es"]][0].reason == "similar"

    # The second side arriving later links too: a new article repeating a checked claim.
    new = add(store, e5_backends, settings, "chip_es_2")
    assert (chip, new["chip_es_2"], "similar") in links(store)

    # Searching fact-checks: words, verdict, and nothing twice.
    found, cursor = find_factchecks(store, FactCheckQuery(q="agua caliente", verdicts=("false",)))
    assert [f.id for f in found] == [water] and cursor is None


def test_a_changed_review_is_linked_again_and_the_same_one_is_a_no_op(store: Store) -> None:
    first = review("Las mascarillas causan hipoxia", "es", "false")
    (fid,) = upsert_factchecks(store, [first], source_id=None)
    assert upsert_factchecks(store, [first], source_id=None) == []
    with store.session() as s:
        s.get(FactCheck, fid).linked_at = datetime(2021, 3, 4, tzinfo=UTC)  # type: ignore[union-attr]
    first.verdict, first.verdict_text = "misleading", "Engañoso"
    assert upsert_factchecks(store, [first], source_id=None) == [fid]
    with store.session() as s:
        row = s.get(FactCheck, fid)
        assert row is not None and row.verdict == "misleading" and row.linked_at is None
