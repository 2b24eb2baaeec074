"""ClaimReview extraction on real-shaped markup, and the verdict table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from covidnews.factchecks import VERDICTS, normalise_verdict
from crawler.extract.claimreview import claim_reviews

URL = "https://verifica.example/2021/02/10/falso-vacunas-chip"


def page(*scripts: object, body: str = "") -> str:
    tags = "".join(
        f'<script type="application/ld+json">{json.dumps(s, ensure_ascii=False)}</script>'
        for s in scripts
    )
    return f"<html><head><title>Verifica</title>{tags}</head><body>{body}<p>texto</p></body></html>"


def review(claim: str, rating: dict[str, object], **more: object) -> dict[str, object]:
    return {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "claimReviewed": claim,
        "reviewRating": {"@type": "Rating", **rating},
        "datePublished": "2021-02-10T18:30:00-03:00",
        **more,
    }


def test_several_reviews_on_one_page_in_a_graph() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "name": "Tres bulos sobre las vacunas"},
            review("Las vacunas contienen un chip", {"alternateName": "Falso"}),
            review(
                "La vacuna altera el ADN",
                {"alternateName": "Engañoso"},
                itemReviewed={
                    "@type": "Claim",
                    "author": {"@type": "Person", "name": "Un usuario de Facebook"},
                    "datePublished": "2021-02-01",
                    "appearance": [
                        {
                            "@type": "CreativeWork",
                            "url": "https://diario.example/nota-adn?utm_source=x",
                        },
                        {"@type": "CreativeWork", "url": "https://www.diario.example/otra"},
                    ],
                },
            ),
        ],
    }
    got = claim_reviews(page(graph), URL, title="Tres bulos")
    assert [(r.claim, r.verdict, r.verdict_text) for r in got] == [
        ("Las vacunas contienen un chip", "false", "Falso"),
        ("La vacuna altera el ADN", "misleading", "Engañoso"),
    ]
    second = got[1]
    assert second.claimant == "Un usuario de Facebook"
    assert second.appearances == [
        "https://diario.example/nota-adn?utm_source=x",
        "https://www.diario.example/otra",
    ]
    assert second.claim_date is not None and second.claim_date.date().isoformat() == "2021-02-01"
    assert second.reviewed_at == datetime(2021, 2, 10, 21, 30, tzinfo=UTC)
    assert got[0].title == "Tres bulos"  # a review without a name takes the page's title


def test_rating_only_in_name_or_only_as_numbers() -> None:
    by_name = review("A", {"name": "Verdadero, pero..."})
    by_number = review("B", {"ratingValue": "1", "bestRating": "5", "worstRating": "1"})
    got = {r.claim: r for r in claim_reviews(page(by_name, by_number), URL)}
    assert got["A"].verdict == "mixed" and got["A"].verdict_text == "Verdadero, pero..."
    assert got["B"].verdict == "false" and got["B"].extra["rating_value"] == 1.0


def test_item_reviewed_as_creative_work_is_where_the_claim_appeared() -> None:
    item = {"@type": "CreativeWork", "url": "https://red.example/post/1", "author": "Cuenta X"}
    got = claim_reviews(
        page(review("C", {"alternateName": "Sin evidencia"}, itemReviewed=item)), URL
    )
    assert got[0].appearances == ["https://red.example/post/1"]
    assert got[0].claimant == "Cuenta X" and got[0].verdict == "unproven"


def test_microdata_and_the_same_review_twice_counts_once() -> None:
    micro = """
    <div itemscope itemtype="https://schema.org/ClaimReview">
      <span itemprop="claimReviewed">El agua caliente cura la covid</span>
      <div itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">
        <meta itemprop="alternateName" content="Bulo"></div>
      <div itemprop="itemReviewed" itemscope itemtype="https://schema.org/Claim">
        <div itemprop="appearance" itemscope itemtype="https://schema.org/CreativeWork">
          <link itemprop="url" href="https://cadena.example/mensaje"></div></div>
    </div>"""
    same = review("El agua caliente cura la covid", {"alternateName": "Bulo"})
    got = claim_reviews(page(same, body=micro), URL)
    assert len(got) == 1 and got[0].verdict == "false"
    only_micro = claim_reviews(page(body=micro), URL)
    assert only_micro[0].appearances == ["https://cadena.example/mensaje"]


def test_an_article_page_has_no_reviews_and_broken_json_loses_nothing() -> None:
    article = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Vacunas"}
    assert claim_reviews(page(article), URL) == []
    broken = page().replace(
        "</head>", '<script type="application/ld+json">{"@type": "ClaimReview",</script></head>'
    )
    assert claim_reviews(broken, URL) == []
    good = review("D", {"alternateName": "Falso"})
    mixed = page(good).replace(
        "</head>", '<script type="application/ld+json">{oops</script></head>'
    )
    assert [r.claim for r in claim_reviews(mixed, URL)] == ["D"]


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ("Falso", "false"),
        ("FALSO", "false"),
        ("Es falso", "false"),
        ("Bulo", "false"),
        ("Pants on Fire!", "false"),
        ("Parcialmente falso", "misleading"),
        ("Engañoso", "misleading"),
        ("Sacado de contexto", "misleading"),
        ("Missing context", "misleading"),
        ("Exagerado", "misleading"),
        ("Verdadero, pero", "mixed"),
        ("Discutible", "mixed"),
        ("Half True", "mixed"),
        ("Verdadero", "true"),
        ("Mostly True", "true"),
        ("Insostenible", "unproven"),
        ("Sin evidencia", "unproven"),
        ("Sátira", "other"),
        ("Lo que sabemos", "other"),
        ("", "other"),
    ],
)
def test_verdict_table(rating: str, expected: str) -> None:
    assert normalise_verdict(rating) == expected


def test_numeric_scales_and_the_words_first() -> None:
    assert normalise_verdict(None, 5, best=5, worst=1) == "true"
    assert normalise_verdict(None, 2, best=5, worst=1) == "misleading"
    assert normalise_verdict(None, 3, best=5, worst=1) == "mixed"
    assert normalise_verdict("Falso", 5, best=5, worst=1) == "false"  # words win
    assert normalise_verdict(None, 9, best=5, worst=1) == "other"  # off the scale
    assert set(VERDICTS) == {"false", "misleading", "mixed", "true", "unproven", "other"}


def test_lists_where_objects_are_expected_and_odd_values_lose_nothing() -> None:
    odd = {
        "@type": ["ClaimReview"],
        "claimReviewed": ["El 5G", "propaga el virus"],
        "reviewRating": [{"@type": "Rating", "alternateName": "Falso"}],
        "itemReviewed": [
            {"@type": "Claim", "author": [{"name": "A"}, "B"], "datePublished": "ayer?"}
        ],
        "datePublished": 20210310,
        "inLanguage": {"@type": "Language", "name": "es-MX"},
    }
    (got,) = claim_reviews(page(odd), URL)
    assert got.claim == "El 5G propaga el virus" and got.verdict == "false"
    assert got.claimant == "A B" and got.claim_date is None
    assert got.language == "es"
    assert claim_reviews(page({"@type": "ClaimReview", "reviewRating": {}}), URL) == []  # no claim
