"""Terminology (a TICO-19 glossary) and number localisation (1,234.5 ⇄ 1.234,5) around a
translator."""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nlp_worker.backends.translate.text import Pair

# --------------------------------------------------------------------------------------------
# Terminology glossary and number conventions (used by the Apertium backend)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Glossary:
    """Term pairs per direction: ``{(source, target): {source term: target term}}``.

    Apertium does not let us inject terms, so a glossary is applied as post-editing: for every
    term found in the source text, the translation Apertium gives to the term on its own is
    replaced in the output by the glossary's term (``brote`` → ``shoot`` becomes ``outbreak``).
    """

    terms: Mapping[Pair, Mapping[str, str]]
    name: str = "glossary"

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for pair in sorted(self.terms):
            for src, tgt in sorted(self.terms[pair].items()):
                h.update(f"{pair[0]}\t{pair[1]}\t{src}\t{tgt}\n".encode())
        return h.hexdigest()[:8]


def _lang(code: str) -> str:
    return code.strip().lower().split("-")[0].split("_")[0]


def load_tico_glossary(paths: Iterable[str | os.PathLike[str]]) -> Glossary:
    """Read TICO-19 terminology CSVs (CC0; columns ``sourceLang, targetLang, sourceString,
    targetString``) into a :class:`Glossary` for both directions.

    Entries are used as published, with general rules only: each list gives its own direction
    and, reversed, the other one; for a term with several translations the first listed wins, a
    list for the direction wins over a reversed one, and a reversed entry is used only when that
    translation has a single source term (``illness``, ``disease`` and ``sickness`` are all
    ``enfermedad``, so ``enfermedad`` is not reversed to any of them); terms shorter than three
    characters and entries starting with an article (``an epidemic``: ``una epidemia``) are
    dropped.
    """
    direct: dict[Pair, dict[str, str]] = {}
    reverse: dict[Pair, dict[str, set[str]]] = {}
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                s, t = _lang(row.get("sourceLang") or ""), _lang(row.get("targetLang") or "")
                src = " ".join((row.get("sourceString") or "").split())
                tgt = " ".join((row.get("targetString") or "").split())
                if not (s and t and src and tgt) or len(src) < 3 or len(tgt) < 3:
                    continue
                if _ARTICLE_START.match(src) or _ARTICLE_START.match(tgt):
                    continue
                direct.setdefault((s, t), {}).setdefault(src.lower(), tgt)
                reverse.setdefault((t, s), {}).setdefault(tgt.lower(), set()).add(src)
    terms: dict[Pair, dict[str, str]] = {}
    for pair in set(direct) | set(reverse):
        # a reversed entry only when it is unambiguous (one source term for that translation)
        merged = {k: next(iter(v)) for k, v in reverse.get(pair, {}).items() if len(v) == 1}
        merged.update(direct.get(pair, {}))
        terms[pair] = merged
    return Glossary(terms, name="tico19")


_ARTICLE_START = re.compile(r"(?i)^(?:the|a|an|el|la|los|las|un|una|unos|unas|lo)\s", re.UNICODE)

#: a number's surroundings that make it something other than a quantity (versions, dates, ids)
_NUM_LEFT = r"(?<![\w.,/:\-])"
_NUM_RIGHT = r"(?![\w]|[.,]\d)"
_EN_NUMBER = re.compile(_NUM_LEFT + r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?" + _NUM_RIGHT)
_ES_SPACE_GROUPS = re.compile(_NUM_LEFT + r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+" + _NUM_RIGHT)
_ES_DOT_GROUPS = re.compile(_NUM_LEFT + r"\d{1,3}(?:\.\d{3})+(?:,\d+)?" + _NUM_RIGHT)
_ES_DECIMAL = re.compile(_NUM_LEFT + r"(\d+),(\d{1,2}|\d{4,})" + _NUM_RIGHT)
_URLISH = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\S+@\S+\.\w+")


def _outside_urls(text: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    """``pattern.sub(repl, text)`` except inside URLs and e-mail addresses."""
    out: list[str] = []
    last = 0
    for m in _URLISH.finditer(text):
        out.append(pattern.sub(repl, text[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(pattern.sub(repl, text[last:]))
    return "".join(out)


def _group_es(digits: str) -> str:
    """Spanish grouping (RAE): no separator up to four digits, else a non-breaking space."""
    if len(digits) <= 4:
        return digits
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return "\u00a0".join(groups)


def _en_to_es_number(m: re.Match[str]) -> str:
    integer, decimals = m.group(1), m.group(2)
    if "," not in integer and decimals is None:
        return m.group()
    grouped = _group_es(integer.replace(",", ""))
    return grouped if decimals is None else f"{grouped},{decimals}"


def localize_numbers(text: str, target: str) -> str:
    """Write quantities with the target language's separators: English ``80,000`` and ``3.5``
    become Spanish ``80 000`` and ``3,5`` (RAE); Spanish ``80 000``/``80.000`` and ``3,5``
    become English ``80,000`` and ``3.5``. Ambiguous forms (``3,500`` in Spanish text, which is
    3500 in Mexico and 3.5 in Spain) and anything inside a URL are left alone."""
    if target == "es":
        return _outside_urls(text, _EN_NUMBER, _en_to_es_number)
    if target == "en":

        def groups(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group())
            return f"{int(digits):,}"

        def dots(m: re.Match[str]) -> str:
            integer, _, decimals = m.group().partition(",")
            return integer.replace(".", ",") + (f".{decimals}" if decimals else "")

        text = _outside_urls(text, _ES_SPACE_GROUPS, groups)
        text = _outside_urls(text, _ES_DOT_GROUPS, dots)
        return _outside_urls(text, _ES_DECIMAL, lambda m: f"{m.group(1)}.{m.group(2)}")
    return text
