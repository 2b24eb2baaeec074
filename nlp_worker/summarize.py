"""Extractive summaries: the sentences that best represent the article, in their original order.

Model-free and language-independent: each sentence is scored by the lexical centrality of its
words (how much of the document's vocabulary it carries, TF-weighted, stopwords excluded by
frequency) with a small bonus for the lead, as news puts the essentials first. Deterministic, fast,
and it never invents text — important for a public-health news service.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

MODEL_ID = "extractive-centrality-v1"
_WORD = re.compile(r"\w+", re.UNICODE)
_FALLBACK_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"“¿¡A-ZÁÉÍÓÚÑ0-9])")


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) > 2 and not w.isdigit()]


def summarize(
    text: str,
    *,
    title: str = "",
    max_sentences: int = 3,
    max_chars: int = 480,
    split: Callable[[str], list[str]] | None = None,
) -> str:
    """Up to ``max_sentences`` sentences (and about ``max_chars``) of ``text``."""
    text = text.strip()
    if not text:
        return ""
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    sentences: list[str] = []
    for paragraph in paragraphs:
        parts = split(paragraph) if split else _FALLBACK_SPLIT.split(paragraph)
        sentences.extend(s.strip() for s in parts if s.strip())
    if len(sentences) <= 1:
        return sentences[0][:max_chars] if sentences else ""
    doc_counts = Counter(_words(text))
    # Words in most sentences are function words in any language: damp them (idf over sentences).
    sentence_words = [set(_words(s)) for s in sentences]
    df = Counter(w for ws in sentence_words for w in ws)
    n = len(sentences)
    title_words = set(_words(title))

    def weight(word: str) -> float:
        return doc_counts[word] * math.log(1 + n / df[word])

    scores = []
    for position, words in enumerate(sentence_words):
        if not words:
            scores.append(0.0)
            continue
        centrality = sum(weight(w) for w in words) / math.sqrt(len(words))
        lead = 1.0 + 0.5 / (1 + position)
        topical = 1.0 + 0.3 * len(words & title_words) / (1 + len(title_words))
        too_short = 0.3 if len(words) < 5 else 1.0
        scores.append(centrality * lead * topical * too_short)
    ranked = sorted(range(n), key=lambda i: -scores[i])
    chosen: list[int] = []
    length = 0
    for i in ranked:
        if len(chosen) >= max_sentences:
            break
        if chosen and length + len(sentences[i]) > max_chars:
            continue
        chosen.append(i)
        length += len(sentences[i]) + 1
    return " ".join(sentences[i] for i in sorted(chosen))[: max_chars * 2]
