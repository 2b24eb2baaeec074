"""The source registry (``sources.yaml``): outlets and health agencies the crawler may fetch."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from covidnews.store import slugify

DEFAULT_REGISTRY = Path(__file__).with_name("sources.yaml")

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class RegistryError(ValueError):
    """The registry file is missing, malformed or inconsistent."""


def normalize_host(host: str) -> str:
    """Lower-case ``host`` and drop a trailing dot, a port and a leading ``www.``."""
    host = host.strip().lower().rstrip(".").rsplit("@", 1)[-1].split(":", 1)[0]
    return host.removeprefix("www.")


SELECTOR_FIELDS = ("title", "authors", "published", "body")


class SourceEntry(BaseModel):
    """One outlet or agency: where its articles come from and which hosts belong to it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=1)
    domains: list[str] = Field(min_length=1)
    country: str
    language: str
    #: a factchecker's pages with schema.org ClaimReview are stored as fact-checks (its other
    #: pages as articles)
    kind: Literal["outlet", "agency", "factchecker"] = "outlet"
    scope: Literal["national", "regional", "international"] = "national"
    homepage: str | None = None
    feeds: list[str] = Field(default_factory=list)
    sitemaps: list[str] = Field(default_factory=list)
    #: why no feed or sitemap is listed (discovery looks for them at run time: robots.txt
    #: Sitemap lines, sitemap indexes, homepage feed links)
    no_feed: str | None = Field(default=None, min_length=1)
    start_urls: list[str] = Field(default_factory=list)
    article_patterns: list[str] = Field(default_factory=list)
    exclude_patterns: list[str] = Field(default_factory=list)
    weight: float = Field(default=1.0, ge=0.1, le=3.0)
    #: IANA zone the outlet dates its news in (default: its country's capital's, see
    #: ``crawler.dates.COUNTRY_TZ``); set it for outlets elsewhere in a many-zone country
    timezone: str | None = None
    #: CSS selectors for an outlet whose markup defeats the generic extraction: any of
    #: ``title``, ``authors``, ``published``, ``body``; tried first, the generic chain answers
    #: when one finds nothing
    selectors: dict[str, str] = Field(default_factory=dict)

    @field_validator("selectors")
    @classmethod
    def _selectors(cls, value: dict[str, str]) -> dict[str, str]:
        from cssselect import GenericTranslator, SelectorError

        for name, css in value.items():
            if name not in SELECTOR_FIELDS:
                raise ValueError(f"selector {name!r}: choose from {', '.join(SELECTOR_FIELDS)}")
            try:
                GenericTranslator().css_to_xpath(css)
            except SelectorError as exc:
                raise ValueError(f"selector {name!r}: {css!r} is not valid CSS ({exc})") from None
        return value

    @property
    def zone(self) -> tzinfo:
        """The zone dates without an offset are read in, and UTC dates are shown in."""
        from crawler.dates import zone_for

        return ZoneInfo(self.timezone) if self.timezone else zone_for(self.country)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {value!r} is not an IANA zone such as America/La_Paz"
            ) from None
        return value

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper()
            if not re.fullmatch(r"[A-Z]{2}", value):
                raise ValueError(f"country {value!r} is not an ISO 3166-1 alpha-2 code")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(f"language {value!r} is not a lower-case ISO 639-1 code")
        return value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        domains: list[str] = []
        for raw in value:
            domain = normalize_host(raw)
            if not _DOMAIN_RE.fullmatch(domain):
                raise ValueError(f"domain {raw!r} is not a bare host name (no scheme or path)")
            if domain not in domains:
                domains.append(domain)
        return domains

    @field_validator("homepage", "feeds", "sitemaps", "start_urls")
    @classmethod
    def _urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        for url in [value] if isinstance(value, str) else value or []:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an absolute http(s) URL")
        return value

    @field_validator("article_patterns", "exclude_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceEntry:
        if not (self.feeds or self.sitemaps or self.start_urls):
            raise ValueError(f"source {self.name!r} has no feeds, sitemaps or start_urls")
        if self.no_feed is not None and (self.feeds or self.sitemaps):
            raise ValueError(
                f"source {self.name!r} lists feeds or sitemaps and also says why it has none "
                f"(no_feed: {self.no_feed!r}): remove the stale no_feed"
            )
        for url in [*self.urls(), *([self.homepage] if self.homepage else [])]:
            host = urlsplit(url).hostname or ""
            if not self.owns(host):
                raise ValueError(
                    f"source {self.name!r}: host of {url} is not one of its domains "
                    f"{self.domains} (add the host's domain)"
                )
        return self

    @property
    def slug(self) -> str:
        """ASCII slug of the name (``El País`` → ``el-pais``)."""
        return slugify(self.name)

    def urls(self) -> list[str]:
        """Feed, sitemap and start URLs, in that order."""
        return [*self.feeds, *self.sitemaps, *self.start_urls]

    def owns(self, host: str) -> bool:
        """Whether ``host`` is one of the domains or a subdomain of one."""
        host = normalize_host(host)
        return any(host == d or host.endswith("." + d) for d in self.domains)


class Registry:
    """Validated entries with lookups by name, slug and host."""

    def __init__(self, entries: Iterable[SourceEntry]) -> None:
        self._entries = list(entries)
        self._by_slug: dict[str, SourceEntry] = {}
        self._by_domain: dict[str, SourceEntry] = {}
        for index, entry in enumerate(self._entries):
            where = f"entry {index} ({entry.name!r})"
            if entry.slug in self._by_slug:
                other = self._by_slug[entry.slug].name
                raise RegistryError(f"{where}: name/slug {entry.slug!r} already used by {other!r}")
            self._by_slug[entry.slug] = entry
            for domain in entry.domains:
                if domain in self._by_domain:
                    other = self._by_domain[domain].name
                    raise RegistryError(f"{where}: domain {domain!r} already claimed by {other!r}")
                self._by_domain[domain] = entry

    def __iter__(self) -> Iterator[SourceEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name_or_slug: str) -> SourceEntry | None:
        """The entry with this name or slug (accents and case ignored), or None."""
        return self._by_slug.get(slugify(name_or_slug))

    def by_domain(self, host: str) -> SourceEntry | None:
        """The entry owning ``host``; the longest matching domain wins."""
        labels = normalize_host(host).split(".")
        for start in range(len(labels)):
            entry = self._by_domain.get(".".join(labels[start:]))
            if entry is not None:
                return entry
        return None

    def allowed_domains(self) -> set[str]:
        """Every domain of every entry."""
        return set(self._by_domain)

    def countries(self) -> set[str]:
        """Country codes of all entries."""
        return {entry.country for entry in self._entries}


def _describe(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        messages.append(f"{where}: {message}" if where else message)
    return "; ".join(messages)


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry file (default: the bundled ``sources.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise RegistryError(f"{path}: expected a mapping with a 'sources' list")
    if data.get("version", 1) != 1:
        raise RegistryError(f"{path}: unsupported registry version {data.get('version')!r}")
    entries: list[SourceEntry] = []
    for index, item in enumerate(data["sources"]):
        name = item.get("name") if isinstance(item, dict) else None
        where = f"{path}: entry {index} ({name!r})"
        if not isinstance(item, dict):
            raise RegistryError(f"{where}: expected a mapping, got {type(item).__name__}")
        try:
            entries.append(SourceEntry.model_validate(item))
        except ValidationError as exc:
            raise RegistryError(f"{where}: {_describe(exc)}") from None
    try:
        return Registry(entries)
    except RegistryError as exc:
        raise RegistryError(f"{path}: {exc}") from None
