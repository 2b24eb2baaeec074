from __future__ import annotations

from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest

from crawler.guard import GuardMiddleware, address_allowed, parse_networks
from crawler.links import looks_like_article, worth_following
from crawler.registry import Registry, SourceEntry

ENTRY = SourceEntry(
    name="Diario Ejemplo",
    domains=["diario.example"],
    country="ES",
    language="es",
    homepage="https://diario.example/",
    start_urls=["https://diario.example/"],
)
REGISTRY = Registry([ENTRY])


@pytest.mark.parametrize(
    ("address", "allowed", "ok"),
    [
        ("8.8.8.8", [], True),
        ("169.254.169.254", [], False),
        ("127.0.0.1", [], False),
        ("10.1.2.3", [], False),
        ("192.168.1.1", [], False),
        ("::1", [], False),
        ("fe80::1", [], False),
        ("0.0.0.0", [], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("127.0.0.2", ["127.0.0.1"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("not-an-ip", [], False),
    ],
)
def test_address_allowed(address: str, allowed: list[str], ok: bool) -> None:
    assert address_allowed(address, parse_networks(allowed)) is ok


def _middleware(allowed: list[str] = ()) -> GuardMiddleware:  # type: ignore[assignment]
    stats = SimpleNamespace(
        values={}, inc_value=lambda key: stats.values.__setitem__(key, stats.values.get(key, 0) + 1)
    )
    crawler = SimpleNamespace(stats=stats, spider=SimpleNamespace(registry=REGISTRY))
    return GuardMiddleware(parse_networks(allowed), crawler)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://10.0.0.5/noticia",
        "https://www.example.org/noticia",
        "https://diario.example.evil.com/x",
        "ftp://diario.example/x",
    ],
)
def test_middleware_refuses(url: str) -> None:
    with pytest.raises(IgnoreRequest):
        _middleware(["127.0.0.1"]).process_request(Request(url))


def test_middleware_lets_registry_domains_through() -> None:
    mw = _middleware()
    assert mw.process_request(Request("https://diario.example/2020/03/12/a.html")) is None
    assert mw.process_request(Request("https://www.diario.example/")) is None
    assert mw.process_request(Request("https://salud.diario.example/x")) is None


@pytest.mark.parametrize(
    ("url", "article"),
    [
        ("https://diario.example/2020/03/12/vacunas-llegan.html", True),
        (
            "https://diario.example/sociedad/2020-03-12/el-gobierno-decreta-el-estado-de-alarma.html",
            True,
        ),
        ("https://diario.example/noticias/el-gobierno-decreta-el-estado-de-alarma-123456", True),
        ("https://diario.example/salud/la-oms-declara-la-pandemia-global/", True),
        ("https://diario.example/", False),
        ("https://diario.example/tag/coronavirus/", False),
        ("https://diario.example/autor/ana-perez/", False),
        ("https://diario.example/seccion/salud?page=2", False),
        ("https://diario.example/salud/", False),
        ("https://diario.example/fotos/galeria-de-imagenes-del-confinamiento/", False),
        ("https://diario.example/2020/03/12/foto.jpg", False),
    ],
)
def test_article_heuristics(url: str, article: bool) -> None:
    assert looks_like_article(url, ENTRY) is article


def test_registry_patterns_decide_when_given() -> None:
    entry = ENTRY.model_copy(
        update={"article_patterns": [r"^/n/\d+$"], "exclude_patterns": [r"^/privado/"]}
    )
    assert looks_like_article("https://diario.example/n/42", entry)
    assert not looks_like_article("https://diario.example/2020/03/12/vacunas-llegan.html", entry)
    assert not worth_following("https://diario.example/privado/indice", entry)
    assert worth_following("https://diario.example/salud/", entry)
    assert not worth_following("https://diario.example/autor/ana/", entry)
