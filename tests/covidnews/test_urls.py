from __future__ import annotations

import pytest

from covidnews.urls import InvalidURL, canonical_url, host_of, url_hash


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "HTTPS://WWW.ElPais.com/sociedad/2020-03-12/x.html#comentarios",
            "https://www.elpais.com/sociedad/2020-03-12/x.html",
        ),
        (
            "https://elpais.com:443/a?utm_source=tw&utm_medium=social&id=7&fbclid=abc",
            "https://elpais.com/a?id=7",
        ),
        ("http://example.com:8080/a?b=2&a=1", "http://example.com:8080/a?a=1&b=2"),
        (
            "https://www.infobae.com/america/2020/03/12/nota/amp/",
            "https://www.infobae.com/america/2020/03/12/nota",
        ),
        (
            "https://www.20minutos.es/noticia/123/0/coronavirus.amp.html",
            "https://www.20minutos.es/noticia/123/0/coronavirus.html",
        ),
        ("https://example.com", "https://example.com/"),
        ("  https://example.com/a b  ", "https://example.com/ab"),
        ("https://example.com/caf%C3%A9", "https://example.com/caf%C3%A9"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        (
            "http://www.mvsnoticias.com/#!/noticias/alertan-970",
            "http://www.mvsnoticias.com/#!/noticias/alertan-970",
        ),
        ("https://spa.example/#/noticias/1?x=1", "https://spa.example/#/noticias/1?x=1"),
    ],
)
def test_canonical_url(given: str, expected: str) -> None:
    assert canonical_url(given) == expected
    assert canonical_url(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "/relative/path",
        "https://",
        "https://nohost/x",
        "https://example.com:99999/",
    ],
)
def test_invalid_urls_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidURL):
        canonical_url(bad)


def test_url_hash_folds_host_and_scheme_variants() -> None:
    variants = [
        "https://www.elpais.com/x.html",
        "http://elpais.com/x.html",
        "https://m.elpais.com/x.html?utm_campaign=a",
        "https://amp.elpais.com/x.html#top",
    ]
    assert len({url_hash(canonical_url(v)) for v in variants}) == 1
    assert url_hash(canonical_url("https://elpais.com/y.html")) != url_hash(
        canonical_url("https://elpais.com/x.html")
    )
    # The host is only folded for the key; the stored URL still opens the page.
    assert canonical_url(variants[2]).startswith("https://m.elpais.com/")


def test_host_of() -> None:
    assert host_of("https://www.elpais.com/x") == "elpais.com"
    assert host_of("https://noticias.ELPAIS.com./x") == "noticias.elpais.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # Escapes that change what the URL points to are kept as they are.
        ("https://x.es/a/100%25-seguro", "https://x.es/a/100%25-seguro"),
        ("https://x.es/a%2Fb/c", "https://x.es/a%2Fb/c"),
        ("https://x.es/a%3Fb", "https://x.es/a%3Fb"),
        ("https://x.es/buscar?q=a%26b&r=%2F", "https://x.es/buscar?q=a%26b&r=%2F"),
        # The rest is normalised: case of hex digits, unreserved characters, non-ASCII.
        ("https://x.es/ni%c3%b1o", "https://x.es/ni%C3%B1o"),
        ("https://x.es/niño", "https://x.es/ni%C3%B1o"),
        ("https://x.es/%41b%7e", "https://x.es/Ab~"),
    ],
)
def test_canonical_url_never_changes_what_a_url_points_to(given: str, expected: str) -> None:
    assert canonical_url(given) == expected
    assert canonical_url(expected) == expected  # stable: a canonical URL is its own canonical
