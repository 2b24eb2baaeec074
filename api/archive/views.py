"""The archive's pages (see ``api/archive/__init__.py`` for headers, caching and language)."""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from flask import abort, render_template, request, url_for
from flask_babel import format_date, format_number, get_locale, ngettext  # type: ignore[import-untyped]
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from api.archive import DEFAULT_LANGUAGE, LANGUAGES, bp, charts, data
from api.services import services
from covidnews.factchecks import VERDICTS, FactCheckQuery, factchecks_of, find_factchecks
from covidnews.search.engine import Filters, Query
from covidnews.search.results import load_articles
from covidnews.taxonomy import topic, topic_ids
from covidnews.text import shorten

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from covidnews.search.engine import Interval, SearchEngine


log = logging.getLogger(__name__)

PER_PAGE = 20
STATIC = Path(__file__).resolve().parents[1] / "static"
_PARAGRAPHS = re.compile(r"\n\s*\n")


# Template helpers --------------------------------------------------------------------------


def current_lang() -> str:
    lang = str(get_locale().language)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def u(endpoint: str, **values: Any) -> str:  # url_for's values: any, turned into text
    """``url_for`` that keeps the interface language (``lang=en`` while it is English)."""
    if endpoint.startswith("."):
        endpoint = "archive" + endpoint
    lang = current_lang()
    if lang != DEFAULT_LANGUAGE:
        values.setdefault("lang", lang)
    return url_for(endpoint, **{k: v for k, v in values.items() if v not in (None, "", [])})


def lang_url(target: str) -> str:
    """This page in another language."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [target]
    return request.path + "?" + urlencode(args, doseq=True)


@cache
def _static_version(filename: str) -> str:
    try:
        return hashlib.sha256((STATIC / filename).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(filename: str) -> str:
    return url_for("static", filename=filename, v=_static_version(filename))


def fdate(value: date | datetime | None, fmt: str = "medium") -> str:
    """A date in the reader's language; an aware datetime shows its own day (an article's is on
    its outlet's clock, see ``local_time``), not the day in UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.date()
    return str(format_date(value, fmt)) if value is not None else ""


def fnum(value: int | float) -> str:
    return str(format_number(value))


def news_count(n: int) -> str:
    return str(ngettext("%(count)s noticia", "%(count)s noticias", n, count=fnum(n)))


def month_name(month: int, width: str = "wide") -> str:
    return str(get_locale().months["stand-alone"][width][month])


def page_url(endpoint: str | None = None, **values: Any) -> str:
    """The absolute URL of a page (default: this one, with its arguments) in the reader's
    language: what ``og:url`` and ``rel=canonical`` name."""
    if endpoint is None:
        return request.url
    if endpoint.startswith("."):
        endpoint = "archive" + endpoint
    lang = current_lang()
    if lang != DEFAULT_LANGUAGE:
        values.setdefault("lang", lang)
    return url_for(endpoint, _external=True, **values)


def default_preview(title: str) -> list[data.MetaTag]:
    """The link preview of a page that has none of its own: its title, the site's description."""
    lang = current_lang()
    return data.link_preview(
        title=title,
        description=site_description(),
        url=page_url(),
        language=lang,
        alternate="en" if lang == "es" else "es",
    )


def site_description() -> str:
    return str(
        _("Noticias sobre la Covid-19 en español: agregadas, clasificadas por tema y traducidas.")
    )


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "default_preview": default_preview,
        "site_description": site_description,
        "u": u,
        "lang": current_lang(),
        "lang_url": lang_url,
        "static_url": static_url,
        "fdate": fdate,
        "fnum": fnum,
        "month_name": month_name,
        "news_count": news_count,
        "topic_name": data.topic_name,
        "country_name": data.country_name,
        "language_name": data.language_name,
        "nav_topics": data.topic_list(),
        "verdict_label": data.verdict_label,
    }


# Errors ------------------------------------------------------------------------------------


@bp.errorhandler(Exception)
def _error(error: Exception) -> ResponseReturnValue:
    from api.errors import STORE_RETRY_AFTER
    from covidnews.store import unavailable

    headers = {}
    if isinstance(error, HTTPException):
        code = error.code or 500
        detail = error.description if code == 400 else None
    elif unavailable(error):  # the database is restarting: a page saying so, retry shortly
        log.warning("store unavailable in %s %s: %s", request.method, request.path, error)
        code, detail = 503, None
        headers["Retry-After"] = str(STORE_RETRY_AFTER)
    else:
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=error)
        code, detail = 500, None
    return render_template("archive/error.html", code=code, detail=detail), code, headers


def _bad(exc: Exception) -> None:
    abort(400, description=str(exc))


# Lists -------------------------------------------------------------------------------------


def _feeds(kind: str, **values: Any) -> list[dict[str, str]]:
    """The page's feeds, for <link rel="alternate"> and the footer."""
    return [
        {
            "type": "application/rss+xml",
            "title": _("Canal RSS"),
            "href": u(f".feed_{kind}", fmt="rss", **values),
        },
        {
            "type": "application/atom+xml",
            "title": _("Canal Atom"),
            "href": u(f".feed_{kind}", fmt="atom", **values),
        },
    ]


def _list_page(filters: Filters, *, title: str, heading_extra: dict[str, Any], feeds: Any) -> str:
    cursor = request.args.get("cursor") or None
    try:
        listing = data.listing(Query(filters=filters, sort="newest"), PER_PAGE, cursor)
    except data.BadQuery as exc:
        _bad(exc)
        raise
    next_url = None
    if listing.next_cursor:
        next_url = u(
            request.endpoint or ".home", **(request.view_args or {}), cursor=listing.next_cursor
        )
    return render_template(
        "archive/list.html",
        title=title,
        listing=listing,
        next_url=next_url,
        paged=bool(cursor),
        feeds=feeds,
        **heading_extra,
    )


@bp.get("/")
def home() -> str:
    latest, grouped = data.home()
    return render_template(
        "archive/home.html",
        latest=latest,
        grouped=grouped,
        topic_counts=data.topic_counts(),
        feeds=_feeds("latest"),
    )


@bp.get("/tema/<topic_id>")
def topic_page(topic_id: str) -> str:
    t = topic(topic_id)
    if t is None:
        abort(404)
    return _list_page(
        Filters(topics=(t.id,)),
        title=t.name(current_lang()),
        heading_extra={"kind": "topic", "topic_id": t.id},
        feeds=_feeds("topic", topic_id=t.id),
    )


@bp.get("/fuente/<slug>")
def source_page(slug: str) -> str:
    source = data.source_by_slug(slug)
    if source is None:
        abort(404)
    return _list_page(
        Filters(sources=(source.id,)),
        title=source.name,
        heading_extra={"kind": "source", "source": source},
        feeds=_feeds("source", slug=source.slug),
    )


@bp.get("/pais/<cc>")
def country_page(cc: str) -> str:
    if not data.known_country(cc):
        abort(404)
    return _list_page(
        Filters(countries=(cc.upper(),)),
        title=data.country_name(cc),
        heading_extra={"kind": "country", "cc": cc.upper()},
        feeds=_feeds("country", cc=cc.lower()),
    )


# Date archive ------------------------------------------------------------------------------


def _counts(start: date | None, end: date | None, interval: Interval) -> dict[date, int]:
    query = Query(filters=Filters(date_from=start, date_to=end), sort="newest")
    rows = services().engine.counts(query, interval)
    return {date.fromisoformat(r["period"]): int(r["count"]) for r in rows}


def _month_add(year: int, month: int, delta: int) -> tuple[int, int]:
    n = year * 12 + (month - 1) + delta
    return n // 12, n % 12 + 1


@bp.get("/archivo/")
def archive_index() -> str:
    months = _counts(None, None, "month")
    years: dict[int, dict[int, int]] = {}
    for d, n in sorted(months.items(), reverse=True):
        years.setdefault(d.year, {})[d.month] = n
    return render_template("archive/archive_index.html", years=years)


@bp.get("/archivo/<int(fixed_digits=4):year>/")
def archive_year(year: int) -> str:
    if not 1900 <= year <= 2999:
        abort(404)
    months = _counts(None, None, "month")
    per_month = {d.month: n for d, n in months.items() if d.year == year}
    years = sorted({d.year for d in months})
    prev_year = max((y for y in years if y < year), default=None)
    next_year = min((y for y in years if y > year), default=None)
    return render_template(
        "archive/archive_year.html",
        year=year,
        per_month=per_month,
        total=sum(per_month.values()),
        prev_year=prev_year,
        next_year=next_year,
    )


@bp.get("/archivo/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/")
def archive_month(year: int, month: int) -> str:
    if not (1900 <= year <= 2999 and 1 <= month <= 12):
        abort(404)
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    per_day = _counts(first, last, "day")
    months = sorted(_counts(None, None, "month"))
    prev_m = max((m for m in months if m < first), default=None)
    next_m = min((m for m in months if m > first), default=None)
    cal = calendar.Calendar(firstweekday=int(get_locale().first_week_day))
    weeks = cal.monthdatescalendar(year, month)
    days = get_locale().days["stand-alone"]
    weekday_names = [
        (
            str(days["wide"][(cal.firstweekday + i) % 7]),
            str(days["abbreviated"][(cal.firstweekday + i) % 7]),
        )
        for i in range(7)
    ]
    return render_template(
        "archive/archive_month.html",
        year=year,
        month=month,
        weeks=weeks,
        per_day=per_day,
        total=sum(per_day.values()),
        weekday_names=weekday_names,
        prev_m=prev_m,
        next_m=next_m,
    )


@bp.get(
    "/archivo/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/"
)
def archive_day(year: int, month: int, day: int) -> str:
    try:
        d = date(year, month, day)
    except ValueError:
        abort(404)
    cursor = request.args.get("cursor") or None
    try:
        listing = data.listing(
            Query(filters=Filters(date_from=d, date_to=d), sort="newest"), PER_PAGE, cursor
        )
    except data.BadQuery as exc:
        _bad(exc)
        raise
    next_url = None
    if listing.next_cursor:
        next_url = u(
            ".archive_day",
            year=f"{year:04d}",
            month=f"{month:02d}",
            day=f"{day:02d}",
            cursor=listing.next_cursor,
        )
    return render_template(
        "archive/archive_day.html",
        day=d,
        listing=listing,
        next_url=next_url,
        paged=bool(cursor),
        prev_day=d - timedelta(days=1),
        next_day=d + timedelta(days=1),
    )


# Article -----------------------------------------------------------------------------------


def paragraphs(text: str | None) -> list[str]:
    return [p.strip() for p in _PARAGRAPHS.split(text or "") if p.strip()]


@bp.get("/articulo/<int:article_id>")
def article(article_id: int) -> str:
    view = load_articles(services().store, [article_id]).get(article_id)
    if view is None:
        abort(404)
    original = view.language or "es"
    other = "es" if original == "en" else "en"
    translation = view.translations.get(other)
    ver = request.args.get("ver", "original")
    if ver == original or ver not in ("original", other, "ambos") or translation is None:
        ver = "original"
    lang = current_lang()
    shown = translation if translation is not None and other in (ver, lang) else None
    title = shown.title if shown else view.title
    description = shorten(
        (shown.summary if shown else view.summary) or view.text or site_description(),
        data.DESCRIPTION_CHARS,
    )
    preview = data.link_preview(
        title=title,
        description=description,
        url=page_url(".article", article_id=view.id),
        language=shown.language if shown else original,
        kind="article",
        image=view.image_url,
        country=view.source.country if view.source else None,
        alternate=(original if shown else other) if translation is not None else None,
        published=view.published_at.isoformat() if view.published_at else None,
        section=data.topic_name(view.topics[0][0]) if view.topics else None,
    )
    return render_template(
        "archive/article.html",
        preview=preview,
        canonical=page_url(".article", article_id=view.id),
        description=description,
        a=view,
        original=original,
        other=other,
        translation=translation,
        translation_deferred=translation is None and data.translation_deferred(view.id),
        ver=ver,
        body=paragraphs(view.text),
        body_tr=paragraphs(translation.text if translation else None),
        copies=data.story_copies(view),
        similar=data.similar(view),
        factchecks=factchecks_of(services().store, [view.id]).get(view.id, []),
    )


# Search ------------------------------------------------------------------------------------


@bp.get("/buscar")
def search() -> ResponseReturnValue:
    params = data.parse_params(request.args)
    link_args = params.link_args()
    listing = None
    next_url = None
    cursor = request.args.get("cursor") or None
    status = 400 if params.errors else 200
    searched = bool(link_args) and not params.errors
    if searched:
        try:
            listing = data.listing(params.query, PER_PAGE, cursor, snippets=True)
        except data.BadQuery as exc:
            params.errors["q"] = str(exc)
            status, listing = 400, None
        if listing is not None and listing.next_cursor:
            next_url = u(".search", **link_args, cursor=listing.next_cursor)
    feeds = _feeds("search", **link_args) if searched else []
    return (
        render_template(
            "archive/search.html",
            params=params,
            v=params.values,
            listing=listing,
            next_url=next_url,
            paged=bool(cursor),
            feeds=feeds,
            sources=[s for s in data.sources_with_counts() if s["articles"]],
            countries=data.countries_in_index(),
            modes=data.MODES,
        ),
        status,
    )


# Statistics --------------------------------------------------------------------------------


def _periods(first: date, last: date, interval: str) -> list[date]:
    out = []
    d = first
    while d <= last:
        out.append(d)
        if interval == "day":
            d += timedelta(days=1)
        elif interval == "week":
            d += timedelta(days=7)
        else:
            y, m = _month_add(d.year, d.month, 1)
            d = date(y, m, 1)
    return out


def _period_label(d: date, interval: str) -> str:
    if interval == "month":
        return str(format_date(d, "MMM y"))
    return str(format_date(d, "d MMM y" if current_lang() == "es" else "MMM d, y"))


def _table(periods: list[date], rows: list[dict[str, Any]]) -> dict[tuple[date, str], int]:
    return {(date.fromisoformat(r["period"]), str(r.get("key"))): int(r["count"]) for r in rows}


MAX_COUNTRIES = 8


def _auto_interval(engine: SearchEngine, filters: Filters) -> Interval:
    """The default interval for a span: about 10-100 periods per chart (days for a month or two,
    weeks up to about a year, months beyond), so a chart stays readable and the page fast."""
    span = engine.date_span()
    if span is None:
        return "week"
    start = filters.date_from or datetime.fromtimestamp(span[0], UTC).date()
    end = filters.date_to or datetime.fromtimestamp(span[1], UTC).date()
    days = (end - start).days
    return "day" if days <= 62 else "week" if days <= 400 else "month"


@bp.get("/estadisticas")
def stats() -> ResponseReturnValue:
    params = data.parse_params(request.args)
    engine = services().engine
    query = params.query
    asked = request.args.get("interval")
    interval: Interval
    if asked in data.INTERVALS:
        interval = cast("Interval", asked)
    elif asked:
        params.errors["interval"] = _("Intervalo desconocido.")
        interval = "week"
    else:
        interval = _auto_interval(engine, query.filters)
    try:
        totals = engine.counts(query, interval)
        by_topic = engine.counts(query, interval, "topic")
        by_country = engine.counts(query, interval, "country")
    except ValueError as exc:  # QueryError
        params.errors["q"] = str(exc)
        totals, by_topic, by_country = [], [], []
    periods: list[date] = []
    if totals:
        found = sorted(date.fromisoformat(r["period"]) for r in totals)
        periods = _periods(found[0], found[-1], interval)
    labels = [_period_label(p, interval) for p in periods]
    total_map = {date.fromisoformat(r["period"]): int(r["count"]) for r in totals}
    total_values = [total_map.get(p, 0) for p in periods]

    topic_cells = _table(periods, by_topic)
    topic_series = []
    for n, tid in enumerate(topic_ids()):
        values = [topic_cells.get((p, tid), 0) for p in periods]
        if sum(values):
            topic_series.append(charts.Series(tid, data.topic_name(tid), values, charts.color(n)))
    country_cells = _table(periods, by_country)
    country_totals: dict[str, int] = {}
    for (_p, cc), count in country_cells.items():
        country_totals[cc] = country_totals.get(cc, 0) + count
    top = sorted(country_totals, key=lambda c: (-country_totals[c], c))[:MAX_COUNTRIES]
    country_series = [
        charts.Series(
            cc,
            data.country_name(cc) if cc != "None" else _("Sin país"),
            [country_cells.get((p, cc), 0) for p in periods],
            charts.color(k),
        )
        for k, cc in enumerate(top)
    ]
    span = _("del %(a)s al %(b)s", a=labels[0], b=labels[-1]) if labels else ""
    chart_total = charts.bar_chart(
        "chart-total",
        _("Noticias por periodo"),
        _("Total de noticias %(span)s.", span=span),
        labels,
        total_values,
    )
    chart_topics = charts.line_chart(
        "chart-topics",
        _("Noticias por tema"),
        _("Una línea por tema, %(span)s.", span=span),
        labels,
        topic_series,
    )
    chart_countries = charts.line_chart(
        "chart-countries",
        _("Noticias por país"),
        _("Una línea por país (los %(n)d con más noticias), %(span)s.", n=MAX_COUNTRIES, span=span),
        labels,
        country_series,
    )
    return (
        render_template(
            "archive/stats.html",
            params=params,
            v=params.values,
            interval=interval,
            intervals=data.INTERVALS,
            labels=labels,
            total_values=total_values,
            topic_series=topic_series,
            country_series=country_series,
            chart_total=chart_total,
            chart_topics=chart_topics,
            chart_countries=chart_countries,
            countries=data.countries_in_index(),
            swatch=charts.swatch,
        ),
        400 if params.errors else 200,
    )


# Fact-checks -------------------------------------------------------------------------------

FACTCHECKS_PER_PAGE = 20


@bp.get("/verificaciones")
def factchecks_page() -> ResponseReturnValue:
    """Recent verdicts of fact-checkers, newest first; ``tema`` keeps those linked to an article
    of that topic, ``veredicto`` one verdict."""
    topic_id = request.args.get("tema") or None
    verdict = request.args.get("veredicto") or None
    raw_cursor = request.args.get("cursor") or ""
    if (
        (topic_id and topic_id not in topic_ids())
        or (verdict and verdict not in VERDICTS)
        or (raw_cursor and not raw_cursor.isdigit())
    ):
        abort(404)
    found, cursor = find_factchecks(
        services().store,
        FactCheckQuery(topic=topic_id, verdicts=(verdict,) if verdict else ()),
        FACTCHECKS_PER_PAGE,
        before_id=int(raw_cursor) if raw_cursor else None,
    )
    keep = {k: v for k, v in (("tema", topic_id), ("veredicto", verdict)) if v}
    return render_template(
        "archive/factchecks.html",
        factchecks=found,
        topic_id=topic_id,
        verdict=verdict,
        verdicts=[v for v in VERDICTS if v != "other"],
        keep=keep,
        next_url=u(".factchecks_page", **keep, cursor=cursor) if cursor else None,
    )


# About -------------------------------------------------------------------------------------


@bp.get("/acerca")
def about() -> str:
    sources = data.sources_with_counts()
    freshness = data.source_freshness()
    for s in sources:
        s["last_article_at"], s["silent"] = freshness.get(s["slug"], (None, False))
    return render_template(
        "archive/about.html",
        sources=sources,
        indexed=sum(s["articles"] for s in sources),
        topic_counts=data.topic_counts(),
    )
