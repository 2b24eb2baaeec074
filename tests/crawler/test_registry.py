from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from crawler.registry import (
    DEFAULT_REGISTRY,
    Registry,
    RegistryError,
    SourceEntry,
    load_registry,
)

CENTRAL_AMERICA = {"GT", "CR", "SV", "HN", "NI", "PA"}
CARIBBEAN = {"CU", "DO", "PR"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def spanish_outlets(registry: Registry) -> list[SourceEntry]:
    return [e for e in registry if e.kind == "outlet" and e.language == "es"]


# ── the bundled registry ──────────────────────────────────────────────────────


def test_bundled_registry_loads(registry: Registry) -> None:
    assert DEFAULT_REGISTRY.name == "sources.yaml"
    assert len(registry) == len(list(registry)) > 0
    assert len(load_registry(DEFAULT_REGISTRY)) == len(registry)


def test_enough_spanish_outlets_from_enough_countries(registry: Registry) -> None:
    outlets = spanish_outlets(registry)
    assert len(outlets) >= 60
    assert len({e.country for e in outlets}) >= 12


def test_every_country_group_is_covered(registry: Registry) -> None:
    countries = {e.country for e in spanish_outlets(registry)}
    assert {"ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC"} <= countries
    assert countries & CENTRAL_AMERICA
    assert countries & CARIBBEAN
    us_hispanic = [e for e in spanish_outlets(registry) if e.country == "US"]
    assert any(e.scope != "international" for e in us_hispanic)
    assert any(e.scope == "international" for e in registry)


def test_health_agencies(registry: Registry) -> None:
    agencies = [e for e in registry if e.kind == "agency"]
    spanish = {e.slug for e in agencies if e.language == "es"}
    assert any("oms" in slug for slug in spanish)
    assert any("ops" in slug for slug in spanish)
    assert any("cdc" in slug for slug in spanish)
    assert sum(1 for e in agencies if e.language == "en") >= 2
    ministries = {e.country for e in agencies if e.language == "es" and e.scope == "national"}
    assert {"ES", "MX", "AR", "CO", "CL", "PE"} <= ministries


def test_every_entry_has_a_starting_point(registry: Registry) -> None:
    for entry in registry:
        assert entry.feeds or entry.sitemaps or entry.start_urls, entry.name


def test_every_source_lists_a_feed_or_sitemap_or_says_why_not(registry: Registry) -> None:
    missing = [e.name for e in registry if not (e.feeds or e.sitemaps or (e.no_feed or "").strip())]
    assert not missing, (
        f"{len(missing)} source(s) list neither feeds nor sitemaps and give no no_feed reason: "
        + ", ".join(missing)
    )


def test_every_url_is_owned_by_its_entry(registry: Registry) -> None:
    for entry in registry:
        urls = entry.urls() + ([entry.homepage] if entry.homepage else [])
        for url in urls:
            parts = urlsplit(url)
            assert parts.scheme in ("http", "https"), url
            assert entry.owns(parts.hostname or ""), (entry.name, url)
            assert registry.by_domain(parts.hostname or "") is entry, (entry.name, url)


def test_names_slugs_and_domains_are_unique(registry: Registry) -> None:
    entries = list(registry)
    assert len({e.name for e in entries}) == len(entries)
    assert len({e.slug for e in entries}) == len(entries)
    domains = [d for e in entries for d in e.domains]
    assert len(domains) == len(set(domains))
    assert registry.allowed_domains() == set(domains)


def test_entries_are_well_formed(registry: Registry) -> None:
    for entry in registry:
        assert re.fullmatch(r"[A-Z]{2}", entry.country), entry.name
        assert re.fullmatch(r"[a-z]{2}", entry.language), entry.name
        assert 0.1 <= entry.weight <= 3.0, entry.name
        for domain in entry.domains:
            assert domain == domain.lower(), domain
            assert not domain.startswith("www."), domain
    assert registry.countries() >= {"ES", "MX", "AR", "US", "GB", "DE"}


# ── lookups ──────────────────────────────────────────────────────────────────


def test_get_by_name_or_slug(registry: Registry) -> None:
    entry = registry.get("El País")
    assert entry is not None
    assert entry.slug == "el-pais"
    assert registry.get("el-pais") is entry
    assert registry.get("EL PAIS") is entry
    assert registry.get("no such source") is None


def test_owns_and_by_domain(registry: Registry) -> None:
    elpais = registry.get("El País")
    assert elpais is not None
    for host in ("elpais.com", "www.elpais.com", "WWW.ElPais.COM", "feeds.elpais.com"):
        assert elpais.owns(host), host
        assert registry.by_domain(host) is elpais, host
    for host in ("notelpais.com", "elpais.com.evil.net", "elpais.co", "com"):
        assert not elpais.owns(host), host
    assert registry.by_domain("notelpais.com") is None
    assert registry.by_domain("elpais.com.uy") is registry.get("El País (Uruguay)")
    assert registry.by_domain("www.example.org") is None


def test_by_domain_longest_match_wins(registry: Registry) -> None:
    spanish, english = registry.get("CDC en español"), registry.get("CDC Newsroom")
    assert spanish is not None
    assert english is not None
    assert registry.by_domain("espanol.cdc.gov") is spanish
    assert registry.by_domain("www.cdc.gov") is english
    assert registry.by_domain("tools.cdc.gov") is english


def test_entry_normalises_fields() -> None:
    entry = SourceEntry(
        name=" Diario ",
        domains=["WWW.Diario.Example", "diario.example"],
        country="mx",
        language="es",
        homepage="https://www.diario.example/",
        feeds=["https://rss.diario.example/feed"],
    )
    assert entry.name == "Diario"
    assert entry.domains == ["diario.example"]
    assert entry.country == "MX"
    assert (entry.kind, entry.scope, entry.weight) == ("outlet", "national", 1.0)
    assert entry.sitemaps == entry.start_urls == entry.article_patterns == []
    assert entry.owns("diario.example:443")


# ── invalid registries ───────────────────────────────────────────────────────


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Diario Prueba",
        "domains": ["diario.example"],
        "country": "ES",
        "language": "es",
        "feeds": ["https://diario.example/rss"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "sources": list(entries)}), encoding="utf-8")
    return path


def test_small_valid_registry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        entry(),
        entry(
            name="Otro",
            domains=["otro.example"],
            feeds=None,
            start_urls=["https://otro.example/salud/"],
        ),
    )
    reg = load_registry(str(path))
    assert [e.name for e in reg] == ["Diario Prueba", "Otro"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"feeds": ["https://feeds.feedburner.com/diario"]}, "feeds.feedburner.com"),
        ({"feeds": ["https://notdiario.example/rss"]}, "not one of its domains"),
        ({"country": "España"}, "country"),
        ({"country": "E1"}, "country"),
        ({"language": "spa"}, "language"),
        ({"article_patterns": ["/(unclosed"]}, "does not compile"),
        ({"exclude_patterns": ["*bad"]}, "does not compile"),
        ({"feeds": None}, "no feeds, sitemaps or start_urls"),
        ({"feeds": ["/relative/rss"]}, "absolute"),
        ({"feeds": ["ftp://diario.example/rss"]}, "absolute"),
        ({"domains": []}, "domains"),
        ({"domains": ["https://diario.example/"]}, "bare host"),
        ({"weight": 5}, "weight"),
        ({"kind": "blog"}, "kind"),
        ({"homepage": "https://elsewhere.example/"}, "elsewhere.example"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_invalid_entry_names_file_and_entry(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    path = write(
        tmp_path,
        entry(name="Bueno", domains=["bueno.example"], feeds=["https://bueno.example/rss"]),
        entry(**overrides),
    )
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    text = str(info.value)
    assert str(path) in text
    assert "entry 1 ('Diario Prueba')" in text
    assert message in text


def test_no_feed_reason(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "name": "Diario", "domains": ["d.example"], "country": "MX", "language": "es",
    }  # fmt: skip
    link_only = SourceEntry(
        **base, start_urls=["https://d.example/"], no_feed="no feed in the lists consulted"
    )
    assert link_only.no_feed == "no feed in the lists consulted"
    assert SourceEntry(**base, start_urls=["https://d.example/"]).no_feed is None  # allowed
    for lists in ({"feeds": ["https://d.example/rss"]}, {"sitemaps": ["https://d.example/n.xml"]}):
        with pytest.raises(ValueError, match=r"lists feeds or sitemaps.*stale no_feed"):
            SourceEntry(**base, **lists, no_feed="none known")
    with pytest.raises(ValueError, match="no_feed"):
        SourceEntry(**base, start_urls=["https://d.example/"], no_feed="  ")
    path = write(tmp_path, entry(no_feed="no feed known"))
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert "entry 0 ('Diario Prueba')" in str(info.value)
    assert "remove the stale no_feed" in str(info.value)


def test_duplicate_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, entry(), entry(domains=["otro.example"], feeds=["https://otro.example/rss"])
    )
    with pytest.raises(RegistryError, match=r"entry 1 \('Diario Prueba'\).*already used"):
        load_registry(path)


def test_duplicate_slug(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        entry(),
        entry(name="diario-prueba", domains=["otro.example"], feeds=["https://otro.example/rss"]),
    )
    with pytest.raises(RegistryError, match="diario-prueba"):
        load_registry(path)


def test_domain_claimed_twice(tmp_path: Path) -> None:
    path = write(tmp_path, entry(), entry(name="Copia", domains=["www.diario.example"]))
    with pytest.raises(RegistryError, match=r"Copia.*'diario\.example' already claimed"):
        load_registry(path)


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nsources:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="invalid YAML") as info:
        load_registry(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text", ["", "- just a list\n", "version: 1\nsources: nope\n", "version: 2\nsources: []\n"]
)
def test_wrong_structure(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError, match=r"odd\.yaml"):
        load_registry(path)


def test_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("version: 1\nsources:\n  - El País\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"entry 0.*expected a mapping"):
        load_registry(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "absent.yaml")
    assert issubclass(RegistryError, ValueError)


def test_a_source_dates_its_news_in_its_zone() -> None:
    from zoneinfo import ZoneInfo

    base: dict[str, Any] = {
        "name": "Diario", "domains": ["d.example"], "language": "es",
        "feeds": ["https://d.example/rss"],
    }  # fmt: skip
    assert SourceEntry(**base, country="BO").zone == ZoneInfo("America/La_Paz")
    tijuana = SourceEntry(**base, country="MX", timezone="America/Tijuana")
    assert tijuana.zone == ZoneInfo("America/Tijuana")  # not Mexico City's
    with pytest.raises(ValueError, match="not an IANA zone"):
        SourceEntry(**base, country="MX", timezone="Mexico/Nowhere")


def test_selectors_are_checked_when_the_registry_loads() -> None:
    base: dict[str, Any] = {
        "name": "Diario", "domains": ["d.example"], "language": "es", "country": "MX",
        "feeds": ["https://d.example/rss"],
    }  # fmt: skip
    ok = SourceEntry(**base, selectors={"authors": ".firma a", "published": "time.fecha"})
    assert ok.selectors["authors"] == ".firma a"
    with pytest.raises(ValueError, match="choose from title, authors, published, body"):
        SourceEntry(**base, selectors={"headline": "h1"})
    with pytest.raises(ValueError, match="not valid CSS"):
        SourceEntry(**base, selectors={"title": "h1[["})
