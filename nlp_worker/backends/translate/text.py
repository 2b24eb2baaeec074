"""Text clean-up shared by every translator (control characters, line breaks, paragraphs,
spaces), language-pair checks and lazy imports of optional packages."""

from __future__ import annotations

import importlib
import os
import re
import unicodedata
from typing import Any

from covidnews.interfaces import BackendUnavailable, Translator

Pair = tuple[str, str]
_PathArg = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Text hygiene shared by every backend
# --------------------------------------------------------------------------------------------

#: C0/C1 control characters other than tab and newline (NUL included), and BOM / noncharacters
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff\ufffe\uffff]")
#: line and paragraph separators other than "\n"
_LINE_BREAKS = re.compile(r"\r\n|[\r\x85\u2028]")
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"[^\S\n]+")


def clean_text(text: str) -> str:
    """The form every backend translates: valid UTF-8, NFC (decomposed accents composed, so
    ``vacunación`` typed with a combining accent is still a known word), no control characters
    (NUL included), newlines as ``\\n`` and U+2029 as a paragraph break."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates → "?"
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text.replace("\u2029", "\n\n"))
    return _CONTROL.sub(" ", text)


def _paragraphs(text: str) -> list[str]:
    """Non-blank paragraphs (split at blank lines), stripped; none contains a blank line."""
    return [p for p in (part.strip() for part in _PARAGRAPH_SPLIT.split(text)) if p]


def _check_pair(translator: Translator, source: str, target: str) -> None:
    if (source, target) not in translator.pairs():
        supported = ", ".join(f"{s}→{t}" for s, t in sorted(translator.pairs())) or "none"
        raise ValueError(
            f"{translator.model_id} cannot translate {source}→{target} (supported: {supported})"
        )


def _import(module: str, install: str) -> Any:
    """Import an optional heavy dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"the Python package {module!r} is needed for this translator: pip install {install}"
        ) from exc
