"""The query language of keyword search, and how a parsed query becomes a tantivy query.

Query language (``parse_query``): words are all required (AND); ``"…"`` is a phrase (words
adjacent, in order); ``-word`` and ``-"…"`` exclude; a word that splits into several tokens
(``covid-19``) is a phrase. Stopwords are dropped from plain words unless nothing else is left.
Accents and case never matter.

A query of more than :data:`MAX_QUERY_CHARS` characters or :data:`MAX_CLAUSES` words is a
**passage** (a paragraph or a claim pasted to find its coverage): semantic and hybrid modes take
it whole, up to :data:`MAX_PASSAGE_CHARS`; keyword mode refuses it with a clear error.

Compiling (``text_query``): each word is looked up in every language field through that field's
own analysis — its Spanish stem in ``*_es``, its English stem in ``*_en``, its folded form in
``*_fold`` and ``*_xx`` — so ``vacunas`` matches "vacunación" in Spanish text and ``vaccines``
matches "vaccination" in English text, titles weigh double, and scores are tantivy's BM25.
A phrase matches its exact words (accents and case folded, in any language, no stemming): a
lookup of word pairs in ``*_pairs`` — one term for two words, a phrase of pairs for more.
``text_query(parsed, highlight=True)`` is the same query with phrases also looked up word by word
in the language fields, so snippets can mark phrase words in the stored texts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import tantivy

from covidnews.search.keyword import ANALYZERS, PAIR_FIELDS, SCHEMA, TEXT_FIELDS, TITLE_BOOST, pairs
from covidnews.text import fold_search as fold

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 32
MAX_PASSAGE_CHARS = 2000
#: Terms the keyword side of a passage search keeps (its most informative ones).
PASSAGE_TERMS = 25

_TOKEN = re.compile(r"[^\W_]+")
_CLAUSE = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')

# Folded function words of Spanish and English: never required on their own.
STOPWORDS = frozenset(
    """
    a al algo algun alguna algunas alguno algunos ante antes aquel aquella aquello asi aun aunque
    bajo bien cada como con contra cual cuales cuando de del desde donde dos el ella ellas ello
    ellos en entre era eran es esa esas ese eso esos esta estaba estado estan estar estas este
    esto estos fue fueron ha habia han has hasta hay la las le les lo los mas me mi mientras muy
    nada ni no nos nosotros o os otra otras otro otros para pero poco por porque que quien se sea
    segun ser si sido sin sino sobre son su sus tambien tan tanto te tiene tienen todo todos tras
    tu un una uno unos usted y ya yo
    about after all also am an and any are as at be been before being but by can could did do
    does during for from had has have he her his how i if in into is it its may more most my no
    not of on or our out over she should so such than that the their them then there these they
    this those through to under up was we were what when where which while who why will with
    would you your
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def tokens(text: str) -> list[str]:
    """Folded tokens of a text, in order."""
    return _TOKEN.findall(fold(text))


@dataclass(frozen=True)
class Clause:
    """A required or excluded word or phrase (``text`` as typed, ``tokens`` folded)."""

    tokens: tuple[str, ...]
    text: str
    negated: bool = False

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1


@dataclass(frozen=True)
class ParsedQuery:
    required: tuple[Clause, ...] = ()
    excluded: tuple[Clause, ...] = ()
    text: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.required and not self.excluded

    @property
    def is_passage(self) -> bool:
        """Too long for a keyword query: searched as a passage (semantic/hybrid only)."""
        return (
            len(self.text) > MAX_QUERY_CHARS
            or len(self.required) + len(self.excluded) > MAX_CLAUSES
        )


class QueryError(ValueError):
    """The query cannot be used (too long, or a passage in keyword mode)."""


def keyword_limit_error() -> QueryError:
    return QueryError(
        f"keyword mode takes up to {MAX_QUERY_CHARS} characters and {MAX_CLAUSES} words or "
        'phrases; to search by a passage (up to 2000 characters) use mode "hybrid" or "semantic"'
    )


def parse_query(q: str) -> ParsedQuery:
    """Parse a user query (see the module docstring for the language)."""
    if len(q) > MAX_PASSAGE_CHARS:
        raise QueryError(f"the query is longer than {MAX_PASSAGE_CHARS} characters")
    required: list[Clause] = []
    stop_only: list[Clause] = []
    excluded: list[Clause] = []
    for match in _CLAUSE.finditer(q):
        quoted = match.group(2) is not None
        negated = bool(match.group(1) if quoted else match.group(3))
        raw = match.group(2) if quoted else match.group(4)
        toks = tokens(raw)
        if not toks:
            continue
        clause = Clause(tuple(toks), raw, negated)
        if negated:
            excluded.append(clause)
        elif not quoted and len(toks) == 1 and toks[0] in STOPWORDS:
            stop_only.append(clause)
        else:
            required.append(clause)
    if not required:
        required = stop_only
    # The same clause twice adds nothing.
    required = list(dict.fromkeys(required))
    excluded = list(dict.fromkeys(excluded))
    return ParsedQuery(tuple(required), tuple(excluded), q.strip())


# Compiling to tantivy ----------------------------------------------------------------------


def _field_query(name: str, terms: list[str]) -> tantivy.Query | None:
    if not terms:
        return None
    if len(terms) == 1:
        query = tantivy.Query.term_query(SCHEMA, name, terms[0])
    else:
        words: list[str | tuple[int, str]] = list(terms)
        query = tantivy.Query.phrase_query(SCHEMA, name, words)
    if name.startswith("title_"):
        query = tantivy.Query.boost_query(query, TITLE_BOOST)
    return query


def clause_query(clause: Clause, highlight: bool = False) -> tantivy.Query:
    """A word in any language field, each through its own analysis; a phrase as word pairs
    (``highlight``: also word by word in the language fields, for snippets)."""
    text = " ".join(clause.tokens)
    analysed = {name: ANALYZERS[name].analyze(text) for name in ANALYZERS}
    words = analysed["fold"]
    parts = []
    if len(words) > 1:
        parts = [q for name in PAIR_FIELDS if (q := _field_query(name, pairs(words)))]
        if not highlight:
            return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in parts])
    parts += [
        q for name, analyzer in TEXT_FIELDS.items() if (q := _field_query(name, analysed[analyzer]))
    ]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in parts])


def excluded_query(parsed: ParsedQuery) -> tantivy.Query | None:
    """Documents matching any excluded clause (None: no exclusions)."""
    if not parsed.excluded:
        return None
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, clause_query(c)) for c in parsed.excluded]
    )


def text_query(parsed: ParsedQuery, highlight: bool = False) -> tantivy.Query | None:
    """Every required clause (AND), none of the excluded ones; None for an empty query.
    ``highlight``: the query snippets are made with (see :func:`clause_query`)."""
    if parsed.is_empty:
        return None
    parts = [(tantivy.Occur.Must, clause_query(c, highlight)) for c in parsed.required]
    if not parts:
        parts = [(tantivy.Occur.Must, tantivy.Query.all_query())]
    parts += [(tantivy.Occur.MustNot, clause_query(c)) for c in parsed.excluded]
    return tantivy.Query.boolean_query(parts)


def passage_query(passage: str, min_doc_frequency: int = 2) -> tantivy.Query:
    """The keyword side of a passage: its most informative terms (tf-idf, as Lucene's
    ``more_like_this``) in the Spanish, English and folded fields, any of them matching."""
    return tantivy.Query.more_like_this_document_fields_query(
        SCHEMA,
        {"body_es": [passage], "body_en": [passage], "body_xx": [passage]},
        min_doc_frequency=min_doc_frequency,
        min_term_frequency=1,
        max_query_terms=PASSAGE_TERMS,
        min_word_length=3,
        stop_words=sorted(STOPWORDS),
    )


PASSAGE_FIELDS = (("body_es", "es"), ("body_en", "en"), ("body_xx", "fold"))


def passage_terms_query(searcher: tantivy.Searcher, passage: str) -> tantivy.Query:
    """What :func:`passage_query` selects, computed here: the passage's 25 terms of highest
    tf × idf in the same fields. Used only when tantivy's ``more_like_this`` panics — it does
    while deleted documents still count in a term's document frequency (until a merge), which
    a follower's updates cause (tantivy issue: quickwit-oss/tantivy#2964, open)."""
    docs = max(1, int(searcher.num_docs))
    scored: list[tuple[float, str, str]] = []
    for field, analyzer in PASSAGE_FIELDS:
        tokens = [
            t for t in ANALYZERS[analyzer].analyze(passage) if len(t) >= 3 and t not in STOPWORDS
        ]
        for term, tf in Counter(tokens).items():
            df = min(int(searcher.doc_freq(field, term)), docs)
            if df:
                scored.append((tf * math.log(1 + (docs - df + 0.5) / (df + 0.5)), field, term))
    top = sorted(scored, reverse=True)[:PASSAGE_TERMS]
    if not top:
        return tantivy.Query.boolean_query([])
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, tantivy.Query.term_query(SCHEMA, f, t)) for _, f, t in top]
    )
