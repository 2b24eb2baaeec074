"""Text analysis for keyword search: folding, tokens, stems, stopwords, and the query language.

Indexing and querying go through the same functions, so a query matches exactly the forms the
index holds:

- **fold**: Unicode NFKD, combining marks removed, case-folded — ``Vacunación`` and ``vacunacion``
  are one token, so are ``Año`` and ``ano`` (accent-less queries from any keyboard match);
- **tokens**: runs of letters and digits (``covid-19`` is ``covid`` + ``19``);
- **stems**: Snowball Spanish for Spanish text, Snowball English for English text, none for other
  languages (their folded tokens are indexed as they are). A query word can be in either
  language, so it is looked up as its folded form, its Spanish stem and its English stem
  (``vacunas`` → ``vacunas``, ``vacun``, ``vacuna``).

Query language (``parse_query``): words are all required (AND); ``"…"`` is a phrase (words
adjacent, in order; a stopword inside a phrase holds its place but matches any word, so
``"ciudad de méxico"`` also matches "Ciudad en México" — the price of not walking the
positions of "de" in every document); ``-word`` and ``-"…"`` exclude; a word that splits
into several tokens (``covid-19``) is a phrase. Stopwords are dropped from plain words unless
nothing else is left.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Languages with a stemmer. Text in any other language is indexed folded but not stemmed.
STEMMERS = {"es": "spanish", "en": "english"}
MAX_QUERY_CHARS = 500
MAX_CLAUSES = 32

_TOKEN = re.compile(r"[^\W_]+")
_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
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


def fold(text: str) -> str:
    """Accent- and case-folded text (the form every token is indexed and searched in)."""
    return _MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()


def tokens(text: str) -> list[str]:
    """Folded tokens of a text, in order."""
    return _TOKEN.findall(fold(text))


class _Stemmers(threading.local):
    """PyStemmer objects are not thread-safe: one set per thread."""

    def __init__(self) -> None:
        import Stemmer

        self.by_language = {lang: Stemmer.Stemmer(algo) for lang, algo in STEMMERS.items()}


_stemmers = _Stemmers()


def stem_language(language: str | None) -> str | None:
    """The stemmer language used for text in ``language`` (None: not stemmed)."""
    if not language:
        return None
    base = language.lower().split("-")[0].split("_")[0]
    return base if base in STEMMERS else None


def stems(words: list[str], language: str | None) -> list[str]:
    """Stems of folded tokens in one language (unchanged for languages without a stemmer)."""
    lang = stem_language(language)
    if lang is None:
        return words
    return list(_stemmers.by_language[lang].stemWords(words))


def analyze(text: str, language: str | None) -> list[str]:
    """The index terms of a text, in order (one per token: stemmed in its language)."""
    return stems(tokens(text), language)


def variants(token: str) -> tuple[str, ...]:
    """Index terms a folded query token may appear as: itself, its Spanish and English stems."""
    out = [token]
    for lang in STEMMERS:
        stem = _stemmers.by_language[lang].stemWord(token)
        if stem not in out:
            out.append(stem)
    return tuple(out)


@dataclass(frozen=True)
class Clause:
    """A required or excluded word or phrase: for each position, the terms it may match."""

    words: tuple[tuple[str, ...], ...]
    text: str
    negated: bool = False

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


@dataclass(frozen=True)
class ParsedQuery:
    required: tuple[Clause, ...] = ()
    excluded: tuple[Clause, ...] = ()
    #: Folded tokens of the required clauses (for highlighting).
    highlight: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_empty(self) -> bool:
        return not self.required and not self.excluded


class QueryError(ValueError):
    """The query cannot be parsed (too long, too many clauses)."""


def parse_query(q: str) -> ParsedQuery:
    """Parse a user query (see the module docstring for the language)."""
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters")
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
        clause = Clause(tuple(variants(t) for t in toks), raw, negated)
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
    if len(required) + len(excluded) > MAX_CLAUSES:
        raise QueryError(f"the query has more than {MAX_CLAUSES} words or phrases")
    highlight = frozenset(w[0] for c in required for w in c.words)
    return ParsedQuery(tuple(required), tuple(excluded), highlight)


def highlight_spans(text: str, words: frozenset[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of the tokens of ``text`` that match a query word (folded or same stem)."""
    if not words:
        return
    wanted = {v for w in words for v in variants(w)}
    matches = list(_TOKEN.finditer(text))
    folded = [fold(m.group()) for m in matches]
    # Stems in bulk (one C call per language), not per token.
    stemmed = [_stemmers.by_language[lang].stemWords(folded) for lang in STEMMERS]
    for i, match in enumerate(matches):
        if folded[i] in wanted or any(st[i] in wanted for st in stemmed):
            yield match.start(), match.end()
