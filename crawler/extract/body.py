"""The body text (trafilatura, or the publisher's own complete ``articleBody``), cleaned of
site furniture, and the language."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from covidnews.text import fold_words
from crawler.extract.page import _BOILERPLATE, _STOPWORDS, _first, _parse


def _guess_language(text: str) -> str | None:
    words = re.findall(r"\w+", text.lower()[:5000])
    if len(words) < 5:
        return None
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    return lang if best >= 3 else None


def _language(
    doc: Any, meta: dict[str, list[str]], article: dict[str, Any], text: str
) -> str | None:
    for raw in (
        doc.get("lang"),
        doc.get("xml:lang"),
        _first(meta, "language", "content-language", "dc.language"),
        article.get("inLanguage") if isinstance(article.get("inLanguage"), str) else None,
        _first(meta, "og:locale"),
    ):
        match = re.match(r"^\s*([a-zA-Z]{2})(?:[-_]|$)", raw or "")
        if match:
            return match.group(1).lower()
    return _guess_language(text)


# Body ---------------------------------------------------------------------------------------


def _body_text(html: str, url: str, article: dict[str, Any], doc: Any = None) -> str:
    import trafilatura

    extracted = (
        trafilatura.extract(
            doc if doc is not None else html,  # our parsed tree: no second parse
            url=url or None,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            deduplicate=False,
        )
        or ""
    )
    if len(extracted) < 250:
        recall = trafilatura.extract(
            html, url=url or None, favor_recall=True, include_comments=False, include_tables=False
        )
        extracted = recall if recall and len(recall) > len(extracted) else extracted
    if len(extracted) < 250:
        dense = _densest_paragraphs(html)
        extracted = dense if len(dense) > len(extracted) else extracted
    declared = article.get("articleBody")
    if isinstance(declared, str):
        declared = html_lib.unescape(declared)
        if "<" in declared and re.search(r"</?(?:p|div|br|span|a)\b", declared):
            declared = re.sub(r"<br\s*/?>|</p>", "\n", declared)
            declared = re.sub(r"<[^>]+>", "", declared)
        declared = "\n".join(" ".join(line.split()) for line in declared.splitlines()).strip()
        # The publisher's own body wins when complete: not a teaser, not cut with an ellipsis.
        if (
            len(declared) >= 400
            and len(declared) >= 0.7 * len(extracted)
            and not declared.rstrip().endswith(("...", "…"))
        ):
            return declared
    return extracted


def _densest_paragraphs(html: str) -> str:
    """Last resort for layouts extractors miss (old table-based CMSs): the element whose direct
    ``<p>`` children hold the most text, outside page furniture."""
    doc = _parse(html)
    for bad in doc.xpath("//script|//style|//noscript|//form|//nav|//footer|//header|//aside"):
        bad.drop_tree()
    best, best_len = None, 0
    for parent in {p.getparent() for p in doc.xpath("//p") if p.getparent() is not None}:
        if _in_chrome(parent):
            continue
        total = sum(len(p.text_content().strip()) for p in parent.findall("p"))
        if total > best_len:
            best, best_len = parent, total
    if best is None:
        return ""
    paras = [" ".join(p.text_content().split()) for p in best.findall("p")]
    return "\n".join(p for p in paras if p)


def _clean_body(text: str, title: str, byline_authors: list[str]) -> str:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    folded_title = fold_words(title)
    # Leading furniture: the headline and the byline. (A line equal to the meta description
    # stays: sites often fill the description with the first paragraph.)
    while lines:
        head = fold_words(lines[0])
        if (head and head == folded_title) or (
            len(lines[0]) < 120 and byline_authors and any(a in lines[0] for a in byline_authors)
        ):
            lines.pop(0)
        else:
            break
    return "\n".join(line for line in lines if not _BOILERPLATE.search(line))


_CHROME = {"header", "nav", "footer", "aside"}


def _in_chrome(el: Any) -> bool:
    """Inside page furniture (header, nav, footer, aside, or a 'today's date' widget)?"""
    for node in el.iterancestors():
        label = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if node.tag in _CHROME or any(
            w in label for w in ("header", "cabecera", "footer", "hoy", "today")
        ):
            return True
    label = f"{el.get('class', '')} {el.get('id', '')}".lower()
    return "hoy" in label or "today" in label
