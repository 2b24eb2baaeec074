"""Accent and case folding: one module, a few named variants.

Most code wants :func:`fold` ("Vacunación" → "vacunacion": case-folded, every combining mark
dropped). Two variants exist because what they produce is stored, and changing it would silently
split old data from new:

- :func:`fold_latin` drops only the Latin combining block (U+0300–U+036F): the simhash word
  fingerprints in ``articles.simhash`` (``covidnews.fingerprint``) were computed with it;
- :func:`fold_search` drops the marks of every combining block before case folding: the keyword
  index's ``*_fold``/``*_xx`` fields were analysed with it (``covidnews.search.analysis``).

:func:`fold_words` is :func:`fold` with runs of non-word characters collapsed to one space (for
comparing short strings such as bylines and titles).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ELLIPSIS",
    "MONTHS_ES",
    "content_words",
    "fold",
    "fold_latin",
    "fold_search",
    "fold_words",
    "shorten",
]

ELLIPSIS = "…"

#: Spanish month names, January first (dates in posts and pages; parsing: crawler.dates).
MONTHS_ES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)

_LATIN_MARKS = re.compile(r"[\u0300-\u036f]")
_ALL_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_WORD = re.compile(r"\W+")


def fold(text: str) -> str:
    """Case-folded, without accents or any other combining mark: 'Vacunación' → 'vacunacion'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_latin(text: str) -> str:
    """Case-folded, Latin combining marks dropped (the simhash fingerprints' folding)."""
    return _LATIN_MARKS.sub("", unicodedata.normalize("NFKD", text.casefold()))


def fold_search(text: str) -> str:
    """Marks of every combining block dropped, then case-folded (the keyword index's folding)."""
    return _ALL_MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()


def fold_words(text: str) -> str:
    """:func:`fold`, then runs of non-word characters as one space: 'J. Pérez-López' →
    'j perez lopez'."""
    return _NON_WORD.sub(" ", fold(text)).strip()


def content_words(text: str) -> set[str]:
    """Stemmed Spanish and English words of ``text`` that carry meaning (no function words):
    what fact-check linking and the bot's "does this sentence add to the headline" compare."""
    from covidnews.search.analysis import STOPWORDS
    from covidnews.search.keyword import ANALYZERS

    out: set[str] = set()
    for lang in ("es", "en"):
        out.update(t for t in ANALYZERS[lang].analyze(text) if len(t) >= 4 and t not in STOPWORDS)
    return out


def shorten(text: str, max_chars: int) -> str:
    """``text`` (whitespace collapsed) in at most ``max_chars`` characters, cut between words
    with "…" when it is longer (card and page descriptions); a single over-long word is cut."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - len(ELLIPSIS) + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > 0 else cut[: max_chars - len(ELLIPSIS)]
    return head.rstrip(" ,;:—-–([«“\"'") + ELLIPSIS
