"""The line contract behind ``covidnews translate --source es --target en [FILE|-]``.

One sentence or paragraph per input line → one translation per output line: the same number of
lines, in the same order; an empty (or blank) line gives an empty line; a translation never
contains a line break (newlines, CR, U+2028, U+2029 … inside it become spaces), so the output
can be pasted next to the input (``paste``) or scored line by line. Lines are read and
translated in batches, so memory stays bounded however long the input is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from covidnews.interfaces import Translator

__all__ = ["one_line", "translate_lines"]

#: every character ``str.splitlines`` breaks at, plus the CRLF pair
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_SPACES = re.compile(r"[^\S\n]{2,}")


def one_line(text: str) -> str:
    """``text`` with every line break replaced by a space (runs of spaces made one)."""
    if not _LINE_BREAKS.search(text):
        return text.strip()
    return _SPACES.sub(" ", _LINE_BREAKS.sub(" ", text)).strip()


def _strip_eol(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def translate_lines(
    lines: Iterable[str],
    translator: Translator,
    source: str,
    target: str,
    batch_size: int = 32,
) -> Iterator[str]:
    """Yield one translation (without a line terminator) per input line, in order.

    ``lines`` may keep their line terminators (as from a file) or not. Blank lines are not sent
    to the translator and give ``""``. Each batch of ``batch_size`` lines is one
    ``translator.translate`` call; a translator that returns a different number of texts is an
    error (:class:`RuntimeError`), never a silent shift of the output.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: list[str] = []
    for line in lines:
        batch.append(_strip_eol(line))
        if len(batch) >= batch_size:
            yield from _translate_batch(batch, translator, source, target)
            batch = []
    if batch:
        yield from _translate_batch(batch, translator, source, target)


def _translate_batch(
    batch: list[str], translator: Translator, source: str, target: str
) -> Iterator[str]:
    wanted = [i for i, line in enumerate(batch) if line.strip()]
    out = [""] * len(batch)
    if wanted:
        texts = [one_line(batch[i]) for i in wanted]
        translated = translator.translate(texts, source, target)
        if len(translated) != len(texts):
            raise RuntimeError(
                f"{translator.model_id} returned {len(translated)} translations "
                f"for {len(texts)} lines"
            )
        for i, text in zip(wanted, translated, strict=True):
            out[i] = one_line(text)
    yield from out
