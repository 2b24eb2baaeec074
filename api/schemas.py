"""The v1 API's request and response schemas (marshmallow, via apiflask): what the OpenAPI
document says and what requests are validated against. Part of the public contract: fields are
only ever added within v1."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Date, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from covidnews.factchecks import VERDICTS
from covidnews.search.analysis import MAX_CLAUSES, MAX_PASSAGE_CHARS, MAX_QUERY_CHARS
from covidnews.taxonomy import topic_ids

MAX_PER_PAGE = 100

# Schemas: parameters -----------------------------------------------------------------------


class FilterArgs(Schema):
    q = String(
        load_default="",
        validate=Length(max=MAX_PASSAGE_CHARS),
        metadata={
            "description": 'Words (all required), "a phrase" (its exact words, in order), '
            "-excluded. Accents and case do not matter; Spanish and English word forms match "
            "(vacuna/vacunas/vacunación). "
            "Empty: every article under the filters. Keyword mode takes up to "
            f"{MAX_QUERY_CHARS} characters and {MAX_CLAUSES} words or phrases; semantic and "
            f"hybrid modes also take a passage (a paragraph or claim, up to {MAX_PASSAGE_CHARS} "
            "characters) and find its coverage in either language."
        },
    )
    mode = String(
        load_default="hybrid",
        validate=OneOf(["keyword", "semantic", "hybrid"]),
        metadata={
            "description": "keyword (BM25), semantic (embeddings, cross-lingual) or "
            "hybrid (reciprocal-rank fusion of both)."
        },
    )
    from_ = Date(
        data_key="from",
        load_default=None,
        metadata={
            "description": "Published on or after (YYYY-MM-DD), a day on the outlet's own clock "
            "(an article of 3 May 22:41 -04:00 is on 3 May)."
        },
    )
    to = Date(
        load_default=None,
        metadata={"description": "Published on or before (YYYY-MM-DD), on the outlet's clock."},
    )
    source = List(
        String(validate=Length(min=1, max=200)),
        load_default=list,
        metadata={"description": "Source slug (repeatable: any of)."},
    )
    country = List(
        String(validate=Regexp(r"^[A-Za-z]{2}$")),
        load_default=list,
        metadata={"description": "ISO 3166-1 alpha-2 country (repeatable)."},
    )
    language = List(
        String(validate=Regexp(r"^[A-Za-z]{2,3}$")),
        load_default=list,
        metadata={"description": "ISO 639-1 language of the original (repeatable)."},
    )
    topic = List(
        String(validate=OneOf(list(topic_ids()))),
        load_default=list,
        metadata={"description": "Topic id (repeatable: any of); see /api/v1/topics."},
    )
    covid = String(
        load_default="true",
        validate=OneOf(["true", "false", "all"]),
        metadata={"description": "true: Covid news only (default); false: only other news; all."},
    )
    collapse = Boolean(
        load_default=True,
        metadata={"description": "Syndicated copies of one story as one result (default true)."},
    )


class SearchArgs(FilterArgs):
    sort = String(load_default="relevance", validate=OneOf(["relevance", "newest"]))
    per_page = Integer(load_default=20, validate=Range(min=1, max=MAX_PER_PAGE))
    cursor = String(
        load_default=None,
        validate=Length(max=1000),
        metadata={"description": "The `next` value of the previous page."},
    )


class StatsArgs(FilterArgs):
    interval = String(load_default="day", validate=OneOf(["day", "week", "month", "year"]))
    by = String(load_default=None, validate=OneOf(["topic", "source", "country", "language"]))


class ExportArgs(FilterArgs):
    sort = String(load_default="relevance", validate=OneOf(["relevance", "newest"]))
    format = String(load_default="jsonl", validate=OneOf(["jsonl", "csv"]))


class SimilarArgs(Schema):
    k = Integer(load_default=10, validate=Range(min=1, max=100))
    covid = String(load_default="all", validate=OneOf(["true", "false", "all"]))


# Schemas: responses ------------------------------------------------------------------------


class SourceOut(Schema):
    id = Integer()
    slug = String()
    name = String()
    country = String(allow_none=True)
    language = String(allow_none=True)
    kind = String()
    homepage = String(allow_none=True)


class TopicScore(Schema):
    id = String()
    score = Float()


class TranslationOut(Schema):
    title = String()
    summary = String(allow_none=True)


class CopyOut(Schema):
    id = Integer()
    url = String()
    title = String()
    source = Nested(SourceOut, allow_none=True)
    published_at = String(allow_none=True)


class FactCheckOut(Schema):
    id = Integer()
    url = String(metadata={"description": "The fact-check's page."})
    claim = String(metadata={"description": "The claim reviewed, as the fact-checker quotes it."})
    claimant = String(allow_none=True, metadata={"description": "Who made the claim."})
    verdict = String(
        metadata={
            "description": "The rating normalised: false, misleading, mixed, true, unproven or "
            "other."
        }
    )
    verdict_text = String(metadata={"description": "The rating as the fact-checker wrote it."})
    title = String()
    language = String(allow_none=True)
    reviewed_at = String(allow_none=True)
    factchecker = String(allow_none=True)
    factchecker_slug = String(allow_none=True)
    appearances = List(String(), metadata={"description": "Where the claim appeared (URLs)."})


class LinkedFactCheckOut(FactCheckOut):
    reason = String(
        metadata={
            "description": "Why it is linked: `appearance` (the fact-check names this "
            "article's URL) or `similar` (claim and article say the same thing)."
        }
    )
    score = Float(metadata={"description": "1 for an appearance; the similarity otherwise."})


class FactChecksArgs(Schema):
    q = String(
        load_default="",
        validate=Length(max=MAX_QUERY_CHARS),
        metadata={"description": "Words of the claim, title or claimant (all required)."},
    )
    verdict = List(
        String(validate=OneOf(list(VERDICTS))),
        load_default=list,
        metadata={"description": "Verdict (repeatable: any of)."},
    )
    factchecker = List(
        String(validate=Length(min=1, max=200)),
        load_default=list,
        metadata={"description": "Fact-checker's source slug (repeatable); see /api/v1/sources."},
    )
    topic = String(
        load_default=None,
        validate=OneOf(list(topic_ids())),
        metadata={"description": "Only fact-checks linked to an article of this topic."},
    )
    from_ = Date(
        data_key="from",
        load_default=None,
        metadata={"description": "Reviewed on or after (YYYY-MM-DD)."},
    )
    to = Date(load_default=None, metadata={"description": "Reviewed on or before (YYYY-MM-DD)."})
    per_page = Integer(load_default=20, validate=Range(min=1, max=MAX_PER_PAGE))
    cursor = Integer(
        load_default=None,
        validate=Range(min=1),
        metadata={"description": "The `next` value of the previous page."},
    )


class FactChecksOut(Schema):
    next = Integer(
        allow_none=True, metadata={"description": "Cursor of the next page (null: last)."}
    )
    results = List(Nested(FactCheckOut))


class ResultOut(Schema):
    id = Integer()
    url = String()
    title = String()
    summary = String(allow_none=True)
    snippet = String(metadata={"description": "HTML-escaped excerpt; matches in <mark>."})
    snippet_language = String(allow_none=True)
    translations = Dict(keys=String(), values=Nested(TranslationOut))
    source = Nested(SourceOut, allow_none=True)
    country = String(allow_none=True)
    language = String(allow_none=True)
    published_at = String(allow_none=True)
    topics = List(Nested(TopicScore))
    score = Float()
    copies = List(Nested(CopyOut), metadata={"description": "Other outlets' copies of the story."})
    factchecks = List(
        Nested(LinkedFactCheckOut),
        metadata={"description": "Fact-checks of what this article says (may be empty)."},
    )


class SearchOut(Schema):
    total = Integer()
    next = String(
        allow_none=True, metadata={"description": "Cursor of the next page (null: last)."}
    )
    results = List(Nested(ResultOut))


class ArticleTranslationOut(Schema):
    title = String()
    summary = String(allow_none=True)
    text = String(allow_none=True)
    model = String()


class ArticleOut(Schema):
    id = Integer()
    url = String()
    title = String()
    text = String()
    summary = String(allow_none=True)
    language = String(allow_none=True)
    country = String(allow_none=True)
    published_at = String(allow_none=True)
    modified_at = String(allow_none=True)
    fetched_at = String()
    authors = List(String())
    section = String(allow_none=True)
    image_url = String(allow_none=True)
    is_covid = Boolean(allow_none=True)
    covid_score = Float(allow_none=True)
    text_complete = Boolean(
        metadata={
            "description": "false when a paywall or a consent wall kept part of the text from "
            "the crawler: `text` is what could be had (the paragraphs before the paywall, or the "
            "feed's summary)"
        }
    )
    topics = List(Nested(TopicScore))
    source = Nested(SourceOut, allow_none=True)
    translations = Dict(keys=String(), values=Nested(ArticleTranslationOut))
    story_id = Integer()
    copies = List(Nested(CopyOut))
    factchecks = List(Nested(LinkedFactCheckOut))


class SimilarOut(Schema):
    results = List(Nested(ResultOut))


class SourceCountOut(SourceOut):
    articles = Integer(metadata={"description": "Articles of this source in the search index."})


class SourcesOut(Schema):
    sources = List(Nested(SourceCountOut))


class TopicOut(Schema):
    id = String()
    es = String()
    en = String()
    about = String()
    articles = Integer(metadata={"description": "Covid articles with this topic."})


class TopicsOut(Schema):
    topics = List(Nested(TopicOut))


class BucketOut(Schema):
    period = String(metadata={"description": "First day of the period (YYYY-MM-DD)."})
    key = String(
        allow_none=True, metadata={"description": "Topic, source slug, country or language."}
    )
    count = Integer()


class StatsOut(Schema):
    interval = String()
    by = String(allow_none=True)
    total = Integer()
    buckets = List(Nested(BucketOut))


# Helpers -----------------------------------------------------------------------------------
