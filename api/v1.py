"""The researchers' API, version 1: search, articles, similar, sources, topics, stats, export
(the views; their schemas are in :mod:`api.schemas`).

Every list endpoint takes the same filters. The contract is public (researchers script
against it): parameters and fields are only ever added, never renamed or removed, within v1.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from apiflask import APIBlueprint
from flask import Response, current_app, request, stream_with_context, url_for

from api.errors import ApiProblem, bad_param
from api.ops import SEARCH_SECONDS
from api.schemas import (
    ArticleOut,
    ExportArgs,
    FactChecksArgs,
    FactChecksOut,
    SearchArgs,
    SearchOut,
    SimilarArgs,
    SimilarOut,
    SourcesOut,
    StatsArgs,
    StatsOut,
    TopicsOut,
)
from api.services import services
from covidnews.factchecks import FactCheckQuery, factchecks_of, find_factchecks
from covidnews.search.analysis import QueryError
from covidnews.search.engine import CursorError, Filters, Hit, Query
from covidnews.search.results import (
    ArticleView,
    excerpt,
    load_articles,
    load_sources,
    source_ids_by_slug,
    source_slugs,
)
from covidnews.search.snippets import SNIPPET_CHARS
from covidnews.taxonomy import topics

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


bp = APIBlueprint("v1", __name__, url_prefix="/api/v1", tag="Search")

EXPORT_CHUNK = 500


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _source_ids(slugs: list[str]) -> tuple[int, ...]:
    if not slugs:
        return ()
    found = source_ids_by_slug(services().store, slugs)
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        raise bad_param("source", f"unknown source {unknown[0]!r}; see /api/v1/sources")
    return tuple(sorted(found[slug] for slug in slugs))


def filters_from(args: dict[str, Any]) -> Filters:
    start, end = args.get("from_"), args.get("to")
    if start and end and start > end:
        raise bad_param("from", "'from' is after 'to'")
    covid = {"true": True, "false": False, "all": None}[args.get("covid", "true")]
    return Filters(
        date_from=start,
        date_to=end,
        sources=_source_ids(list(dict.fromkeys(args.get("source") or []))),
        countries=tuple(sorted({c.upper() for c in args.get("country") or []})),
        languages=tuple(sorted({c.lower() for c in args.get("language") or []})),
        topics=tuple(sorted(set(args.get("topic") or []))),
        covid=covid,
    )


def query_from(args: dict[str, Any]) -> Query:
    return Query(
        q=args.get("q") or "",
        mode=args.get("mode", "hybrid"),
        filters=filters_from(args),
        sort=args.get("sort", "relevance"),
        collapse=bool(args.get("collapse", True)),
    )


def _source_out(view: ArticleView) -> dict[str, Any] | None:
    return view.source.__dict__ if view.source else None


def _copy_out(view: ArticleView) -> dict[str, Any]:
    return {
        "id": view.id,
        "url": view.url,
        "title": view.title,
        "source": _source_out(view),
        "published_at": _iso(view.published_at),
    }


def results_out(
    hits: list[Hit], snippets: dict[int, tuple[str, str | None]] | None = None
) -> list[dict[str, Any]]:
    """Result objects of hits, in their order (four queries per page, whatever its size).
    ``snippets`` (from the engine) by article id; other results show the opening of their
    summary or text; None: no snippets (exports)."""
    copies = {c for h in hits for c in h.copies}
    ids = [h.article_id for h in hits]
    # One read for the results and their copies (the copies' text openings are not shown).
    views = load_articles(services().store, ids + sorted(copies), with_text=2 * SNIPPET_CHARS)
    checked = factchecks_of(services().store, ids)
    out = []
    for h in hits:
        view = views.get(h.article_id)
        if view is None:  # deleted from the store after the index was written
            continue
        if snippets is None:
            text, lang = "", None
        else:
            text, lang = snippets.get(h.article_id) or excerpt(view)
        out.append(
            {
                "id": view.id,
                "url": view.url,
                "title": view.title,
                "summary": view.summary,
                "snippet": text,
                "snippet_language": lang,
                "translations": {
                    t.language: {"title": t.title, "summary": t.summary}
                    for t in view.translations.values()
                },
                "source": _source_out(view),
                "country": view.country,
                "language": view.language,
                "published_at": _iso(view.published_at),
                "topics": [{"id": t, "score": round(s, 4)} for t, s in view.topics],
                "score": round(h.score, 6),
                "copies": [_copy_out(views[c]) for c in h.copies if c in views],
                "factchecks": [f.as_json() for f in checked.get(h.article_id, [])],
            }
        )
    return out


P = ParamSpec("P")
T = TypeVar("T")


def _run(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except QueryError as exc:
        raise bad_param("q", str(exc)) from None
    except CursorError as exc:
        raise bad_param("cursor", str(exc)) from None


# Endpoints ---------------------------------------------------------------------------------


@bp.get("/search")
@bp.input(SearchArgs, location="query", arg_name="args")
@bp.output(SearchOut)
@bp.doc(summary="Search articles (keyword, semantic or hybrid; cross-lingual)")
def search(args: dict[str, Any]) -> ResponseReturnValue:
    """Every hit exactly once across pages: follow `next` until it is null. Results are ordered by
    score (or date with `sort=newest`), then id, both descending."""
    query = query_from(args)
    engine = services().engine
    with SEARCH_SECONDS.labels(query.mode).time():
        page = _run(engine.search, query, args["per_page"], args.get("cursor"))
    body = {
        "total": page.total,
        "next": page.next_cursor,
        "results": results_out(page.hits, engine.snippets(page)),
    }
    # The body is built to the SearchOut schema (which documents it); serialised directly, not
    # dumped field by field a second time.
    response = current_app.json.response(body)
    if page.next_cursor:
        params = request.args.to_dict(flat=False)
        params["cursor"] = [page.next_cursor]
        link = url_for("v1.search", _external=True) + "?" + urlencode(params, doseq=True)
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


@bp.get("/articles/<int(max=9223372036854775807):article_id>")
@bp.output(ArticleOut)
@bp.doc(summary="One article: full text, translations, topics and the other copies of its story")
def article(article_id: int) -> ResponseReturnValue:
    views = load_articles(services().store, [article_id])
    view = views.get(article_id)
    if view is None:
        raise ApiProblem(404, f"no article {article_id}")
    members = services().engine.story_members(view.story_id)
    copy_ids = [i for i in members if i != article_id]
    copies = load_articles(services().store, copy_ids, with_text=False)
    return {
        **{
            k: getattr(view, k)
            for k in (
                "id",
                "url",
                "title",
                "text",
                "summary",
                "language",
                "country",
                "authors",
                "section",
                "image_url",
                "is_covid",
                "covid_score",
                "story_id",
                "text_complete",
            )
        },
        "published_at": _iso(view.published_at),
        "modified_at": _iso(view.modified_at),
        "fetched_at": _iso(view.fetched_at),
        "topics": [{"id": t, "score": round(s, 4)} for t, s in view.topics],
        "source": _source_out(view),
        "translations": {
            t.language: {"title": t.title, "summary": t.summary, "text": t.text, "model": t.model}
            for t in view.translations.values()
        },
        "copies": [_copy_out(copies[c]) for c in sorted(copies)],
        "factchecks": [
            f.as_json() for f in factchecks_of(services().store, [article_id]).get(article_id, [])
        ],
    }


@bp.get("/articles/<int(max=9223372036854775807):article_id>/similar")
@bp.input(SimilarArgs, location="query", arg_name="args")
@bp.output(SimilarOut)
@bp.doc(summary="Articles most similar in meaning (any language), other copies excluded")
def similar(article_id: int, args: dict[str, Any]) -> ResponseReturnValue:
    engine = services().engine
    if not engine.is_indexed(article_id):
        if not load_articles(services().store, [article_id], with_text=False):
            raise ApiProblem(404, f"no article {article_id}")
        return {"results": []}  # stored but not processed yet
    covid = {"true": True, "false": False, "all": None}[args["covid"]]
    hits = engine.similar(article_id, args["k"], Filters(covid=covid))
    return {"results": results_out(hits, {})}


@bp.get("/sources")
@bp.output(SourcesOut)
@bp.doc(summary="Sources (outlets and agencies) with their number of indexed articles")
def sources() -> ResponseReturnValue:
    return {"sources": sources_with_counts()}


def sources_with_counts() -> list[dict[str, Any]]:
    """Every source with its number of indexed articles (also the archive's source list)."""
    per_source = services().engine.source_counts()
    return [
        {**asdict(r), "articles": int(per_source.get(r.id, 0))}
        for r in load_sources(services().store)
    ]


@bp.get("/topics")
@bp.output(TopicsOut)
@bp.doc(summary="The 11 topics (Spanish and English names) with article counts")
def topics_list() -> ResponseReturnValue:
    counts = services().engine.topic_counts()
    return {
        "topics": [
            {"id": t.id, "es": t.es, "en": t.en, "about": t.about, "articles": counts[t.id]}
            for t in topics()
        ]
    }


@bp.get("/stats")
@bp.input(StatsArgs, location="query", arg_name="args")
@bp.output(StatsOut)
@bp.doc(summary="Number of articles per day/week/month/year, by topic, source, country or language")
def stats(args: dict[str, Any]) -> ResponseReturnValue:
    """Counts the hits of the same query and filters as `/search` (undated articles excluded)."""
    query = query_from(args)
    buckets = _run(services().engine.counts, query, args["interval"], args.get("by"))
    if args.get("by") == "source":
        slugs = source_slugs(services().store)
        for b in buckets:
            b["key"] = slugs.get(b["key"]) if b["key"] is not None else None
    elif args.get("by") is None:
        for b in buckets:
            b["key"] = None
    # Topics overlap (an article has 1-3), so the total is counted, not summed.
    total = (
        _run(services().engine.total, query)
        if args.get("by") == "topic"
        else sum(b["count"] for b in buckets)
    )
    return {"interval": args["interval"], "by": args.get("by"), "total": total, "buckets": buckets}


EXPORT_FIELDS = [
    "id",
    "url",
    "title",
    "summary",
    "source",
    "country",
    "language",
    "published_at",
    "topics",
    "score",
    "title_en",
    "summary_en",
    "title_es",
    "summary_es",
    "copies",
    "factcheck_verdicts",
    "factcheck_urls",
]


def _export_row(r: dict[str, Any]) -> dict[str, Any]:
    tr = r["translations"]
    return {
        "id": r["id"],
        "url": r["url"],
        "title": r["title"],
        "summary": r["summary"] or "",
        "source": (r["source"] or {}).get("slug", ""),
        "country": r["country"] or "",
        "language": r["language"] or "",
        "published_at": r["published_at"] or "",
        "topics": " ".join(t["id"] for t in r["topics"]),
        "score": r["score"],
        "title_en": tr.get("en", {}).get("title", ""),
        "summary_en": tr.get("en", {}).get("summary") or "",
        "title_es": tr.get("es", {}).get("title", ""),
        "summary_es": tr.get("es", {}).get("summary") or "",
        "copies": " ".join(str(c["id"]) for c in r["copies"]),
        "factcheck_verdicts": " ".join(f["verdict"] for f in r["factchecks"]),
        "factcheck_urls": " ".join(f["url"] for f in r["factchecks"]),
    }


@bp.get("/factchecks")
@bp.input(FactChecksArgs, location="query", arg_name="args")
@bp.output(FactChecksOut)
@bp.doc(summary="Fact-checkers' verdicts on claims (ClaimReview), latest first, with filters")
def factchecks(args: dict[str, Any]) -> ResponseReturnValue:
    """Follow `next` (as `cursor`) until it is null. `topic` keeps fact-checks linked to an
    article of that topic."""
    start, end = args.get("from_"), args.get("to")
    if start and end and start > end:
        raise bad_param("from", "'from' is after 'to'")
    query = FactCheckQuery(
        q=args["q"] or None,
        verdicts=tuple(args["verdict"]),
        factcheckers=tuple(args["factchecker"]),
        topic=args.get("topic"),
        date_from=args.get("from_"),
        date_to=args.get("to"),
    )
    found, cursor = find_factchecks(
        services().store, query, args["per_page"], before_id=args.get("cursor")
    )
    return {"next": cursor, "results": [f.as_json() for f in found]}


_TEXT: dict[str, Any] = {"schema": {"type": "string"}}
EXPORT_RESPONSES: Any = {
    200: {
        "description": "One article per row (CSV with a header, or one JSON object per line), "
        "in result order.",
        "content": {"text/csv": _TEXT, "application/x-ndjson": _TEXT},
    }
}


@bp.get("/export")
@bp.input(ExportArgs, location="query", arg_name="args")
@bp.doc(
    summary="Every hit of a query as CSV or JSON Lines, streamed",
    responses=EXPORT_RESPONSES,
)
def export(args: dict[str, Any]) -> ResponseReturnValue:
    """Streams with bounded memory: hits are ranked once, then read from the store 500 at a
    time. JSON Lines rows carry the same fields as search results (without snippets)."""
    query = query_from(args)
    engine = services().engine
    chunks = _run(engine.iter_hits, query, EXPORT_CHUNK)
    fmt = args["format"]

    def generate() -> Iterator[str]:
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            yield buf.getvalue()
        for hits in chunks:
            rows = results_out(hits, None)
            if fmt == "csv":
                buf = io.StringIO()
                writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
                writer.writerows(_export_row(r) for r in rows)
                yield buf.getvalue()
            else:
                yield "".join(
                    json.dumps(
                        {k: v for k, v in r.items() if k not in ("snippet", "snippet_language")},
                        ensure_ascii=False,
                    )
                    + "\n"
                    for r in rows
                )

    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^a-z0-9]+", "-", (query.q or "all").lower()).strip("-")[:40] or "query"
    return Response(
        stream_with_context(generate()),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="covidnews-{name}-{stamp}.{fmt}"'},
    )
