"""What the archive pages show: stories of a query (copies collapsed), sources, topics, counts,
and the search/filter parameters read from a request (the API's names and meanings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import get_locale  # type: ignore[import-untyped]
from flask_babel import gettext as _
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from api.errors import ApiProblem
from api.services import services
from covidnews.search import results
from covidnews.search.analysis import MAX_PASSAGE_CHARS, QueryError
from covidnews.search.engine import CursorError, Filters, Query
from covidnews.search.results import (
    ArticleView,
    SourceView,
    excerpt,
    load_articles,
    stage_status,
)
from covidnews.taxonomy import topic, topic_ids, topics
from covidnews.text import shorten

MODES = ("hybrid", "keyword", "semantic")
COVID = ("true", "all", "false")
SORTS = ("relevance", "newest")
INTERVALS = ("day", "week", "month")
_MARK = re.compile(r"</?mark>")
_CC = re.compile(r"^[A-Za-z]{2}$")
_LANG = re.compile(r"^[A-Za-z]{2,3}$")


class BadQuery(ValueError):
    """The query or cursor of a list cannot be used (shown as a 400 page)."""


@dataclass
class Story:
    """One list entry: the best-ranked copy of a story and the other outlets' copies."""

    view: ArticleView
    copies: list[ArticleView] = field(default_factory=list)
    snippet: Markup | None = None


@dataclass
class Listing:
    stories: list[Story]
    total: int
    next_cursor: str | None


def safe_snippet(text: str) -> Markup:
    """A snippet of the engine (or :func:`covidnews.search.results.excerpt`) as markup, only
    after checking it is escaped text with nothing but ``<mark>``/``</mark>`` tags; otherwise
    plain escaped text."""
    rest = _MARK.sub("", text)
    if any(c in rest for c in "<>\"'"):
        return Markup(escape(rest))
    return Markup(text)  # checked above: html.escape output plus <mark> only


def listing(query: Query, per_page: int, cursor: str | None, *, snippets: bool = False) -> Listing:
    svc = services()
    try:
        page = svc.engine.search(query, per_page, cursor)
    except (QueryError, CursorError) as exc:
        raise BadQuery(str(exc)) from None
    copy_ids = sorted({c for h in page.hits for c in h.copies})
    views = load_articles(svc.store, [h.article_id for h in page.hits], with_text=False)
    copies = load_articles(svc.store, copy_ids, with_text=False)
    marked = svc.engine.snippets(page) if snippets else {}
    stories = []
    for h in page.hits:
        view = views.get(h.article_id)
        if view is None:  # deleted after the index was written
            continue
        story = Story(view, [copies[c] for c in h.copies if c in copies])
        if snippets:
            text, _lang = marked.get(h.article_id) or excerpt(view)
            story.snippet = safe_snippet(text)
        stories.append(story)
    return Listing(stories, page.total, page.next_cursor)


def story_copies(view: ArticleView) -> list[ArticleView]:
    """The other stored copies of this article's story (in the index), oldest first."""
    ids = [i for i in services().engine.story_members(view.story_id) if i != view.id]
    found = load_articles(services().store, ids, with_text=False)
    return sorted(found.values(), key=lambda v: (v.published_at is None, v.published_at, v.id))


def similar(view: ArticleView, k: int = 6) -> list[ArticleView]:
    hits = services().engine.similar(view.id, k, Filters(covid=True))
    found = load_articles(services().store, [h.article_id for h in hits], with_text=False)
    return [found[h.article_id] for h in hits if h.article_id in found]


def translation_deferred(article_id: int) -> bool:
    """The article's translation waits for a translator that could not run when it was
    processed (``covidnews process`` makes it once one can)."""
    return stage_status(services().store, article_id, "translate") == "deferred"


def source_by_slug(slug: str) -> SourceView | None:
    return results.source_by_slug(services().store, slug)


def sources_with_counts() -> list[dict[str, Any]]:
    """Every source (as ``/api/v1/sources``) with its number of indexed articles."""
    from api.v1 import sources_with_counts as v1_sources

    return v1_sources()


def source_freshness() -> dict[str, tuple[Any, bool]]:
    """Source slug → (newest article stored, silent: published before, nothing for days)."""
    from covidnews.schema import utcnow
    from covidnews.source_health import source_health

    now = utcnow()
    return {h.slug: (h.last_article_at, h.silent(now)) for h in source_health(services().store)}


def source_slugs() -> dict[int, str]:
    return results.source_slugs(services().store)


def topic_counts() -> dict[str, int]:
    """Covid articles per topic in the index."""
    counts: dict[str, int] = services().engine.topic_counts()
    return counts


def countries_in_index() -> list[str]:
    """Countries with Covid articles, most articles first (for filter menus)."""
    return list(services().engine.countries())


# Names in the interface language -----------------------------------------------------------


def topic_name(topic_id: str) -> str:
    t = topic(topic_id)
    return t.name(str(get_locale().language)) if t else topic_id


def country_name(cc: str | None) -> str:
    if not cc:
        return ""
    return str(get_locale().territories.get(cc.upper(), cc.upper()))


def language_name(code: str | None) -> str:
    if not code:
        return ""
    name = get_locale().languages.get(code.lower())
    return str(name) if name else code


def known_country(cc: str) -> bool:
    """An ISO 3166-1 alpha-2 code CLDR knows (not "ZZ", the unknown region)."""
    return bool(_CC.match(cc)) and cc.upper() != "ZZ" and cc.upper() in get_locale().territories


# Request parameters (the API's names: q, mode, from, to, source, country, language, topic,
# covid, sort) ---------------------------------------------------------------------------------


@dataclass
class Params:
    """Parsed search/filter parameters; ``errors`` by parameter name (shown by the form)."""

    values: dict[str, Any]
    errors: dict[str, str]

    @property
    def query(self) -> Query:
        from api.v1 import query_from

        return query_from(self.values)

    def link_args(self) -> dict[str, Any]:
        """The parameters as they appear in a URL (for feeds, pagination and forms)."""
        v = self.values
        out: dict[str, Any] = {}
        if v["q"]:
            out["q"] = v["q"]
        if v["mode"] != "hybrid":
            out["mode"] = v["mode"]
        if v["from_"]:
            out["from"] = v["from_"].isoformat()
        if v["to"]:
            out["to"] = v["to"].isoformat()
        for name in ("source", "country", "language", "topic"):
            if v[name]:
                out[name] = list(v[name])
        if v["covid"] != "true":
            out["covid"] = v["covid"]
        if v.get("sort_given"):
            out["sort"] = v["sort"]
        return out


def _date(raw: str | None) -> date | None:
    if not raw:
        return None
    return date.fromisoformat(raw)


def parse_params(args: MultiDict[str, str] | Mapping[str, Any]) -> Params:
    """Read the search parameters; bad ones are reported, never raised."""
    get = args.get

    def getlist(name: str) -> list[str]:
        return list(args.getlist(name)) if isinstance(args, MultiDict) else []

    errors: dict[str, str] = {}
    q = (get("q") or "").strip()
    if len(q) > MAX_PASSAGE_CHARS:
        errors["q"] = _(
            "La consulta es demasiado larga (máximo %(n)d caracteres).", n=MAX_PASSAGE_CHARS
        )
        q = q[:MAX_PASSAGE_CHARS]
    mode = get("mode") or "hybrid"
    if mode not in MODES:
        errors["mode"] = _("Modo de búsqueda desconocido.")
        mode = "hybrid"
    dates: dict[str, date | None] = {}
    for name in ("from", "to"):
        try:
            dates[name] = _date(get(name))
        except ValueError:
            errors[name] = _("Fecha no válida (AAAA-MM-DD).")
            dates[name] = None
    if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        errors["from"] = _("La fecha «desde» es posterior a «hasta».")
    sources = [s for s in dict.fromkeys(getlist("source")) if s]
    countries = [c.upper() for c in dict.fromkeys(getlist("country")) if c]
    if any(not _CC.match(c) for c in countries):
        errors["country"] = _("País no válido (código de dos letras).")
        countries = [c for c in countries if _CC.match(c)]
    languages = [c.lower() for c in dict.fromkeys(getlist("language")) if c]
    if any(not _LANG.match(c) for c in languages):
        errors["language"] = _("Idioma no válido.")
        languages = [c for c in languages if _LANG.match(c)]
    wanted_topics = [t for t in dict.fromkeys(getlist("topic")) if t]
    if any(t not in topic_ids() for t in wanted_topics):
        errors["topic"] = _("Tema desconocido.")
        wanted_topics = [t for t in wanted_topics if t in topic_ids()]
    covid = get("covid") or "true"
    if covid not in COVID:
        errors["covid"] = _("Valor no válido.")
        covid = "true"
    sort = get("sort") or ""
    sort_given = sort in SORTS
    if sort and not sort_given:
        errors["sort"] = _("Orden desconocido.")
    if not sort_given:
        sort = "relevance" if q else "newest"
    values = {
        "q": q,
        "mode": mode,
        "from_": dates["from"],
        "to": dates["to"],
        "source": sources,
        "country": countries,
        "language": languages,
        "topic": wanted_topics,
        "covid": covid,
        "sort": sort,
        "sort_given": sort_given,
        "collapse": True,
    }
    params = Params(values, errors)
    if sources:
        try:
            params.query  # noqa: B018 - validates the source slugs
        except ApiProblem:
            known = set(source_slugs().values())
            errors["source"] = _("Fuente desconocida.")
            values["source"] = [s for s in sources if s in known]
    return params


def verdict_label(verdict: str) -> str:
    """A verdict in words (the badge's colour is never the only sign)."""
    labels = {
        "false": _("Falso"),
        "misleading": _("Engañoso"),
        "mixed": _("Verdad a medias"),
        "true": _("Verdadero"),
        "unproven": _("Sin pruebas"),
        "other": _("Otra calificación"),
    }
    return str(labels.get(verdict, labels["other"]))


def topic_list() -> list[dict[str, str]]:
    lang = str(get_locale().language)
    return [{"id": t.id, "name": t.name(lang)} for t in topics()]


def home(
    latest: int = 15, per_topic: int = 3, window: int = 300
) -> tuple[list[Story], dict[str, list[Story]]]:
    """The latest stories and, per topic, its latest few: one ranking of the newest ``window``
    stories, grouped by topic in memory, then one read of the store."""
    svc = services()
    page = svc.engine.search(Query(sort="newest"), window, None)
    masks = svc.engine.topic_masks([h.article_id for h in page.hits])
    bits = [masks.get(h.article_id, 0) for h in page.hits]
    picked_latest = page.hits[:latest]
    by_topic: dict[str, list[int]] = {}
    for n, topic_id in enumerate(topic_ids()):
        rows = [i for i, b in enumerate(bits) if (b >> n) & 1][:per_topic]
        if rows:
            by_topic[topic_id] = rows
    wanted = {h.article_id for h in picked_latest}
    wanted |= {page.hits[i].article_id for rows in by_topic.values() for i in rows}
    copy_ids = {c for h in picked_latest for c in h.copies}
    views = load_articles(svc.store, sorted(wanted), with_text=False)
    copies = load_articles(svc.store, sorted(copy_ids), with_text=False)

    def story(i: int) -> Story | None:
        h = page.hits[i]
        view = views.get(h.article_id)
        if view is None:
            return None
        return Story(view, [copies[c] for c in h.copies if c in copies])

    latest_stories = [s for i in range(len(picked_latest)) if (s := story(i))]
    grouped = {t: [s for i in rows if (s := story(i))] for t, rows in by_topic.items()}
    return latest_stories, {t: s for t, s in grouped.items() if s}


# Link previews: OpenGraph and Twitter-card tags ----------------------------------------------

SITE_NAME = "covidnews"
#: a description in a link preview (Facebook and X show about two lines)
DESCRIPTION_CHARS = 200
MetaTag = tuple[str, str, str]  # attribute ("property" for og:*, "name" for twitter:*), key, value


def og_locale(language: str, country: str | None = None) -> str:
    """OpenGraph's ``language_TERRITORY``: an outlet's country for Spanish (``es_MX``), else
    ``es_ES``; ``en_US`` for English."""
    if language == "en":
        return "en_US"
    if country and len(country) == 2 and country.isalpha():
        return f"{language}_{country.upper()}"
    return f"{language}_ES"


def _http_url(value: str | None) -> str | None:
    return value if value and re.match(r"https?://", value, re.IGNORECASE) else None


def link_preview(
    *,
    title: str,
    description: str,
    url: str,
    language: str,
    kind: str = "website",
    image: str | None = None,
    country: str | None = None,
    alternate: str | None = None,
    published: str | None = None,
    section: str | None = None,
) -> list[MetaTag]:
    """The tags X, Mastodon, Facebook and chat apps read to draw a page's card: OpenGraph
    (``og:*``, ``article:*``) and the Twitter card (``twitter:*``). Values are text; the
    template escapes them."""
    description = shorten(description, DESCRIPTION_CHARS)
    image = _http_url(image)
    tags: list[MetaTag] = [
        ("property", "og:site_name", SITE_NAME),
        ("property", "og:type", kind),
        ("property", "og:title", title),
        ("property", "og:description", description),
        ("property", "og:url", url),
        ("property", "og:locale", og_locale(language, country)),
    ]
    if alternate:
        tags.append(("property", "og:locale:alternate", og_locale(alternate, country)))
    if image:
        tags.append(("property", "og:image", image))
    if published:
        tags.append(("property", "article:published_time", published))
    if section:
        tags.append(("property", "article:section", section))
    tags += [
        ("name", "twitter:card", "summary_large_image" if image else "summary"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", description),
    ]
    if image:
        tags.append(("name", "twitter:image", image))
    return tags
