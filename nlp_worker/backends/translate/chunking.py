"""Chunking for the neural translators: texts → paragraphs → lines → sentences
(:func:`nlp_worker.backends.sentences.split_sentences`) → word groups within the model's token
budget, and back together after translation."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlp_worker.backends.sentences import split_sentences
from nlp_worker.backends.translate.text import _SPACES, Pair, _paragraphs, clean_text

# --------------------------------------------------------------------------------------------
# Chunking for the neural backends
# --------------------------------------------------------------------------------------------


class _SentenceSplitter:
    """The sentences of one line in ``language``: :func:`split_sentences`, the splitter the
    summaries use (pysbd for es/en with its repairs and length guards, a regex otherwise)."""

    def __init__(self, language: str) -> None:
        self.language = language

    def split(self, text: str) -> list[str]:
        return split_sentences(text, self.language)


@dataclass
class _Plan:
    """Where each chunk's translation goes: text → paragraphs → lines → chunk indices."""

    chunks: list[str] = field(default_factory=list)
    layout: list[list[list[list[int]]]] = field(default_factory=list)

    def assemble(self, translated: Sequence[str]) -> list[str]:
        out = []
        for paragraphs in self.layout:
            out.append(
                "\n\n".join(
                    "\n".join(
                        " ".join(t for i in line if (t := translated[i].strip())) for line in para
                    ).strip()
                    for para in paragraphs
                ).strip()
            )
        return out


def _plan_chunks(
    texts: Sequence[str],
    splitter: _SentenceSplitter,
    count_tokens: Callable[[list[str]], list[int]],
    budget: int,
) -> _Plan:
    """Split texts into chunks of at most ``budget`` tokens (sentences, or word groups of a
    longer sentence, or character slices of a longer "word"); identical chunks are translated
    once."""
    plan = _Plan()
    index: dict[str, int] = {}

    def add(chunk: str) -> int:
        if chunk not in index:
            index[chunk] = len(plan.chunks)
            plan.chunks.append(chunk)
        return index[chunk]

    sentences_per_line: list[list[str]] = []
    layout_lines: list[list[list[int]]] = []  # per text: per paragraph: line numbers
    for text in texts:
        text_layout: list[list[int]] = []
        for para in _paragraphs(clean_text(text)):
            line_numbers = []
            for line in para.split("\n"):
                line = _SPACES.sub(" ", line).strip()
                if line:
                    line_numbers.append(len(sentences_per_line))
                    sentences_per_line.append(splitter.split(line))
            text_layout.append(line_numbers)
        layout_lines.append(text_layout)

    all_sentences = [s for line in sentences_per_line for s in line]
    counts = count_tokens(all_sentences) if all_sentences else []
    pos = 0
    line_chunks: list[list[int]] = []
    for sentences in sentences_per_line:
        ids: list[int] = []
        for sentence in sentences:
            if counts[pos] <= budget:
                ids.append(add(sentence))
            else:
                ids.extend(add(piece) for piece in _split_long(sentence, count_tokens, budget))
            pos += 1
        line_chunks.append(ids)
    plan.layout = [
        [[line_chunks[n] for n in para] for para in text_layout] for text_layout in layout_lines
    ]
    return plan


def _split_long(
    sentence: str, count_tokens: Callable[[list[str]], list[int]], budget: int
) -> list[str]:
    """Word groups of at most ``budget`` tokens (a word longer than that is cut in slices)."""
    words = sentence.split(" ")
    counts = count_tokens(words)
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for word, n in zip(words, counts, strict=True):
        if n > budget:
            if current:
                pieces.append(" ".join(current))
                current, size = [], 0
            slices = math.ceil(n / budget) * 2
            step = max(1, math.ceil(len(word) / slices))
            pieces.extend(word[i : i + step] for i in range(0, len(word), step))
            continue
        if current and size + n > budget:
            pieces.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += n
    if current:
        pieces.append(" ".join(current))
    return pieces


def _parse_models(models: Mapping[Pair, str | os.PathLike[str]] | str) -> dict[Pair, str]:
    """``{("es", "en"): "Helsinki-NLP/opus-mt-es-en"}`` or ``"es-en=path,en-es=path"``."""
    if isinstance(models, str):
        parsed: dict[Pair, str] = {}
        for item in filter(None, (x.strip() for x in models.split(","))):
            pair, sep, where = item.partition("=")
            src, dash, tgt = pair.strip().partition("-")
            if not (sep and dash and src and tgt and where.strip()):
                raise ValueError(f"bad model mapping {item!r}; expected like es-en=PATH_OR_ID")
            parsed[(src, tgt)] = where.strip()
        return parsed
    return {(s, t): os.fspath(m) for (s, t), m in models.items()}


def _short_name(model: str) -> str:
    path = Path(model)
    return path.name if path.exists() else model


#: NLLB-style language codes for the pairs we use
NLLB_CODES = {"es": "spa_Latn", "en": "eng_Latn"}
