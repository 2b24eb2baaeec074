"""Helpers shared by the templates, feeds and server: escaping, Spanish dates, page context."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from covidnews.text import MONTHS_ES
from crawler.demo_site.outlets import Outlet, section_slug, slugify

Article = dict[str, Any]

WEEKDAYS_ES = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]

# Links no crawler may follow: cloud metadata endpoint and a domain outside the registry.
DANGEROUS_LINKS = (
    "http://169.254.169.254/latest/meta-data/",
    "https://www.example.org/covid/mapa-interactivo",
)

# Fictional reader comments (boilerplate an extractor must drop).
COMMENTS = (
    ("Mariela R.", "Gracias por la información, muy clara."),
    ("jorge_1975", "¿Y cuándo llegan las vacunas a mi provincia? Nadie dice nada."),
    ("Ana Lucía", "Hay que seguir cuidándonos, no bajemos la guardia."),
    ("Pedro M.", "Esto ya lo sabíamos desde hace meses."),
    ("lectora_fiel", "Excelente nota, la comparto con mi familia."),
    ("Carlos Andrés", "Ojalá las autoridades escuchen a los expertos."),
    ("Tito", "Primero!"),
    ("Graciela & Co.", 'Muy buen artículo <3 "gracias" por informar & no alarmar'),
)


def e(text: object) -> str:
    """HTML-escape (quotes too)."""
    return html.escape(str(text), quote=True)


def parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def rfc822(moment: datetime) -> str:
    """RSS pubDate with the numeric offset of the outlet's zone."""
    return format_datetime(moment)


def long_date(moment: datetime, weekday: bool = False) -> str:
    """``9 de noviembre de 2020`` (optionally with the weekday first)."""
    text = f"{moment.day} de {MONTHS_ES[moment.month - 1]} de {moment.year}"
    return f"{WEEKDAYS_ES[moment.weekday()]}, {text}" if weekday else text


def ampm(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour:02d}:{moment.minute:02d} {'a. m.' if moment.hour < 12 else 'p. m.'}"


def relative_es(now: datetime, moment: datetime) -> str:
    """``hace 3 horas`` style age of ``moment`` at ``now``."""
    seconds = max(0, int((now - moment).total_seconds()))
    for size, one, many in (
        (365 * 86400, "año", "años"),
        (30 * 86400, "mes", "meses"),
        (86400, "día", "días"),
        (3600, "hora", "horas"),
        (60, "minuto", "minutos"),
    ):
        if seconds >= size:
            n = seconds // size
            return f"hace {n} {one if n == 1 else many}"
    return "hace unos segundos"


def jsonld(obj: object) -> str:
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    return '<script type="application/ld+json">' + text.replace("</", "<\\/") + "</script>"


def stable_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:4], "big")


def comments_for(article: Article) -> list[tuple[str, str, int]]:
    """0-4 fictional comments (name, text, minutes after publication), stable per article."""
    h = stable_int("comments", article["path"])
    count = h % 5
    return [
        (*COMMENTS[(h // 7 + i * 3) % len(COMMENTS)], 35 + 97 * i + h % 50) for i in range(count)
    ]


@dataclass
class Ctx:
    """What a template needs to render one request of one outlet."""

    outlet: Outlet
    port: int
    articles: list[Article]  # the outlet's articles, newest first, disallowed included
    faults: frozenset[str]
    now: datetime

    @property
    def base(self) -> str:
        return f"http://{self.outlet.slug}.localhost:{self.port}"

    @property
    def host(self) -> str:
        return f"{self.outlet.slug}.localhost:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def visible(self) -> list[Article]:
        return [a for a in self.articles if not a["disallowed"]]

    @property
    def private(self) -> list[Article]:
        return [a for a in self.articles if a["disallowed"]]

    def sections(self) -> list[str]:
        seen: dict[str, None] = {}
        for article in self.visible:
            seen.setdefault(article["section"], None)
        return sorted(seen)

    def by_section(self, slug: str) -> list[Article]:
        return [a for a in self.visible if section_slug(a["section"]) == slug]

    def by_tag(self, slug: str) -> list[Article]:
        return [a for a in self.visible if slug in {slugify(t) for t in a["tags"]}]

    def by_author(self, slug: str) -> list[Article]:
        return [a for a in self.visible if slug in {slugify(n) for n in a["authors"]}]

    def name_of_tag(self, slug: str) -> str:
        for article in self.visible:
            for tag in article["tags"]:
                if slugify(tag) == slug:
                    return str(tag)
        return slug

    def name_of_author(self, slug: str) -> str:
        for article in self.visible:
            for name in article["authors"]:
                if slugify(name) == slug:
                    return str(name)
        return slug

    def related(self, article: Article, count: int = 3) -> list[Article]:
        others = [a for a in self.visible if a["path"] != article["path"]]
        same = [a for a in others if a["section"] == article["section"]]
        rest = [a for a in others if a["section"] != article["section"]]
        return (same + rest)[:count]

    def image_path(self, article: Article) -> str:
        return f"/media/{article['id']}.png"
