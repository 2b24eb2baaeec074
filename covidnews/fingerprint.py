"""Content hashes and the SimHash near-duplicate fingerprint.

``content_hash`` says whether an article's text changed (a change re-queues it for NLP).
``simhash`` gives syndicated copies of one wire story (EFE, Europa Press… reprinted with small
edits by many outlets) fingerprints a few bits apart, so dedup can group them into one story.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import numpy as np

from covidnews.text import fold_latin

_WORD = re.compile(r"\w+", re.UNICODE)
SHINGLE = 3  # words per shingle
SIMHASH_BITS = 64


def normalise_text(text: str) -> str:
    """NFC, whitespace collapsed, stripped: formatting-only edits don't change hashes."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(title: str, text: str) -> str:
    """sha256 of the normalised title and text."""
    payload = normalise_text(title) + "\n" + normalise_text(text)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_WORD_CACHE: dict[str, int] = {}
_WORD_CACHE_MAX = 1_000_000
_K = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def _word_hash(word: str) -> int:
    value = _WORD_CACHE.get(word)
    if value is None:
        value = int.from_bytes(
            hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little"
        )
        if len(_WORD_CACHE) < _WORD_CACHE_MAX:
            _WORD_CACHE[word] = value
    return value


def _mix(x: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """splitmix64 finaliser: spreads every input bit over the 64 output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray[Any, np.dtype[np.uint64]] = x ^ (x >> np.uint64(31))
    return mixed


def simhash(text: str) -> int:
    """64-bit SimHash over word 3-shingles (case- and accent-folded), as a signed int64.

    Words are hashed once (blake2b, cached); a shingle's hash combines its words' hashes by
    position and is mixed with splitmix64, all vectorised. Signed so it fits a BIGINT column;
    compare fingerprints with :func:`hamming`.
    """
    words = _WORD.findall(fold_latin(text))
    if not words:
        return 0
    get = _WORD_CACHE.get
    values = [get(w) for w in words]
    if None in values:
        values = [_word_hash(w) if v is None else v for w, v in zip(words, values, strict=True)]
    hashes = np.array(values, dtype=np.uint64)
    if len(hashes) < SHINGLE:
        hashes = np.concatenate([hashes, np.zeros(SHINGLE - len(hashes), dtype=np.uint64)])
    span = len(hashes) - SHINGLE + 1
    combined = np.zeros(span, dtype=np.uint64)
    for offset in range(SHINGLE):
        combined += hashes[offset : offset + span] * _K[offset]
    shingles = _mix(combined)
    bits = np.unpackbits(shingles.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - span
    packed = np.packbits((votes > 0).astype(np.uint8))
    return int.from_bytes(packed.tobytes(), "big", signed=True)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two (signed) 64-bit fingerprints."""
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()
