"""Sentence splitting: ``split_sentences(text, language) -> list[str]``.

Spanish and English go through ``pysbd`` (rule-based, knows abbreviations like "Dr.", "EE. UU.",
"p.m.", decimals and quotes); other or unknown languages through a small regular expression
(split after ``.``, ``!``, ``?`` or ``…`` and closing quotes when whitespace follows).

Both are followed by the same repair: a piece that starts with a lower-case letter or with a
comma, semicolon, colon or closing bracket/quote is glued back to the one before
("1.5 m. | de distancia", "EE.UU. | , instó"), as is a piece after a title abbreviation
("el Sr. | Pérez"), mistakes pysbd makes on Spanish news.

Newlines are hard boundaries: a headline or list item without a final stop is its own sentence.
Long texts stay fast: pysbd's time grows with the square of the length of what it is given
(one 20 k-character paragraph: 0.9 s; four 5 k ones: 0.3 s), so lines are fed to it in blocks of
at most ``BLOCK_CHARS`` characters (a longer line is cut after a sentence terminator, else at a
space), about 16 µs per character; past ``PYSBD_MAX_CHARS`` the rest of a text is split with the
regular expression (≥ 100× faster), so no text costs much more than a second.
Returned sentences are stripped of surrounding whitespace; blank ones are dropped.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from typing import Any

__all__ = ["BLOCK_CHARS", "PYSBD_LANGUAGES", "PYSBD_MAX_CHARS", "split_sentences"]

#: Languages handed to pysbd.
PYSBD_LANGUAGES = frozenset({"es", "en"})
#: Paragraphs are grouped into pysbd calls of at most this many characters.
BLOCK_CHARS = 3_000
#: Characters of one text that pysbd sees at most; the rest goes to the regular expression.
PYSBD_MAX_CHARS = 50_000

#: The end of a sentence: terminators and closing quotes/brackets, before whitespace.
_TERMINATOR = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_TITLE_ABBREVIATION = re.compile(
    r"(?:^|\s)(?:sr|sra|srta|sres|dr|dra|lic|ing|arq|prof|profa|mr|mrs|ms|gral|gob|pdte|"
    r"núm|art|vol|pág|ej|av|avda)\.$",
    re.IGNORECASE,
)

#: A piece starting with one of these continues the previous sentence.
_CONTINUES = frozenset(",;:)]»”’")

#: Characters at the end of a pysbd piece used to locate it in the original text.
_TAIL = 16

_segmenters: dict[str, Any] = {}
_lock = threading.Lock()


def _segmenter(language: str) -> Any:
    segmenter = _segmenters.get(language)
    if segmenter is None:
        import pysbd  # type: ignore[import-untyped]

        with _lock:
            segmenter = _segmenters.setdefault(
                language, pysbd.Segmenter(language=language, clean=False, char_span=False)
            )
    return segmenter


def _regex_split(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        pos = 0
        for match in _TERMINATOR.finditer(line):
            out.append(line[pos : match.end()])
            pos = match.end()
        out.append(line[pos:])
    return out


def _cut_line(line: str) -> list[str]:
    """A line longer than BLOCK_CHARS cut into pieces of at most that size, preferably after a
    sentence terminator, else at a space."""
    pieces: list[str] = []
    while len(line) > BLOCK_CHARS:
        window = line[:BLOCK_CHARS]
        ends = [m.end() for m in _TERMINATOR.finditer(window)]
        cut = ends[-1] if ends else window.rfind(" ") + 1
        if cut <= 0:
            cut = BLOCK_CHARS
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def _blocks(text: str) -> list[str]:
    """Non-blank lines grouped into blocks of at most BLOCK_CHARS characters."""
    blocks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        for piece in _cut_line(line):
            if current and size + len(piece) > BLOCK_CHARS:
                blocks.append("\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 1
    if current:
        blocks.append("\n".join(current))
    return blocks


def _pysbd_split(text: str, language: str) -> list[str]:
    """pysbd's boundaries, applied to the original text.

    pysbd occasionally alters what it returns (``"(..)"`` comes back as ``"(.."``), so its
    pieces are used only to find where each sentence ends in the block: the end of a piece is
    located by its last characters, and the sentence is cut from the block itself. Nothing of the
    text is lost or changed; a piece that cannot be located just joins the next one.
    """
    segmenter = _segmenter(language)
    out: list[str] = []
    for block in _blocks(text):
        pos = 0
        for piece in segmenter.segment(block):
            body = str(piece).rstrip()
            tail = body[-_TAIL:]
            if not tail.strip():
                continue
            found = block.find(tail, pos + max(0, len(body) - _TAIL - 10))
            if found < 0:
                found = block.find(tail, pos)
            if found < 0:
                continue
            end = found + len(tail)
            out.extend(block[pos:end].split("\n"))
            pos = end
        out.extend(block[pos:].split("\n"))
    return out


def _repair(pieces: list[str]) -> list[str]:
    out: list[str] = []
    for raw in pieces:
        piece = raw.strip()
        if not piece:
            continue
        if out and (
            piece[0].islower() or piece[0] in _CONTINUES or _TITLE_ABBREVIATION.search(out[-1])
        ):
            # "EE.UU. | , instó…": a piece starting with a comma continues the sentence.
            glue = "" if piece[0] in _CONTINUES else " "
            out[-1] = f"{out[-1]}{glue}{piece}"
        else:
            out.append(piece)
    return out


def split_sentences(text: str, language: str | None) -> list[str]:
    """The sentences of ``text`` in order; ``language`` is ISO 639-1 or None (unknown)."""
    if not text or text.isspace():
        return []
    lang = (language or "").lower()[:2]
    if lang not in PYSBD_LANGUAGES or importlib.util.find_spec("pysbd") is None:
        return _repair(_regex_split(text))
    head, tail = text[:PYSBD_MAX_CHARS], text[PYSBD_MAX_CHARS:]
    if tail:
        # cut at a line break, else after a terminator, so no sentence is split between the two
        cut = head.rfind("\n")
        if cut <= 0:
            ends = [m.end() for m in _TERMINATOR.finditer(head, len(head) - BLOCK_CHARS)]
            cut = ends[-1] if ends else 0
        if cut > 0:
            head, tail = head[:cut], head[cut:] + tail
    return _repair(_pysbd_split(head, lang) + _regex_split(tail))
