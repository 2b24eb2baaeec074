"""Machine translation backends (es⇄en) implementing :class:`~covidnews.interfaces.Translator`.

- :class:`ApertiumTranslator` (``"apertium"``): the rule-based Apertium engine (Debian package
  ``apertium-eng-spa``), run as one subprocess per batch. Light, fast, no model download.
- :class:`HFTranslator` (``"transformers"``): Hugging Face seq2seq models (MarianMT such as
  Helsinki-NLP/opus-mt-es-en, NLLB) with PyTorch on the CPU.
- :class:`CT2Translator` (``"ctranslate2"``): the same models converted to CTranslate2 (int8).
- :class:`NoTranslator` (``"none"``): translates nothing, so the pipeline can skip the stage.

All of them keep count and order, give ``""`` for an empty or blank text, and never silently cut
a long text: the neural backends split texts into paragraphs, lines, sentences and, when a
sentence is still longer than the model accepts, word groups; they translate the pieces and join
them again. Heavy packages (torch, transformers, ctranslate2, pysbd) are imported when a model is
first needed, never at import time of this module.

Split by job: ``text`` (clean-up), ``glossary`` (terms, numbers), ``apertium``, ``chunking``,
``hf``, ``ct2``; this package re-exports their public names and holds the factory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from covidnews.interfaces import Translator
from nlp_worker.backends.translate.apertium import ApertiumTranslator, _deformat, _reformat
from nlp_worker.backends.translate.ct2 import CT2Translator
from nlp_worker.backends.translate.glossary import Glossary, load_tico_glossary, localize_numbers
from nlp_worker.backends.translate.hf import HFTranslator
from nlp_worker.backends.translate.text import Pair, clean_text

__all__ = [
    "ApertiumTranslator",
    "CT2Translator",
    "Glossary",
    "HFTranslator",
    "NoTranslator",
    "Pair",
    "_deformat",
    "_reformat",
    "clean_text",
    "get_translator",
    "load_tico_glossary",
    "localize_numbers",
]

# --------------------------------------------------------------------------------------------
# No translation, and the factory
# --------------------------------------------------------------------------------------------


class NoTranslator:
    """Translates nothing: ``pairs()`` is empty, so the pipeline skips the translation stage;
    ``translate`` raises :class:`ValueError` for every pair."""

    model_id = "none"

    def pairs(self) -> set[Pair]:
        return set()

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        raise ValueError(f"translation is switched off (translator 'none'): {source}→{target}")


_DEFAULT_HF_MODELS: dict[Pair, str] = {
    ("es", "en"): "Helsinki-NLP/opus-mt-es-en",
    ("en", "es"): "Helsinki-NLP/opus-mt-en-es",
}


def get_translator(name: str, **options: Any) -> Translator:  # the backend's own options
    """Build a translator by name: ``apertium``, ``transformers`` (alias ``hf``),
    ``ctranslate2`` (alias ``ct2``) or ``none``; ``options`` go to its constructor (the neural
    ones default to ``models`` = the Helsinki-NLP opus-mt es⇄en models)."""
    key = name.strip().lower()
    if key == "apertium":
        return ApertiumTranslator(**options)
    if key in {"transformers", "hf"}:
        options.setdefault("models", _DEFAULT_HF_MODELS)
        return HFTranslator(**options)
    if key in {"ctranslate2", "ct2"}:
        options.setdefault("models", _DEFAULT_HF_MODELS)
        return CT2Translator(**options)
    if key in {"none", "off", ""}:
        if options:
            raise ValueError(f"translator 'none' takes no options, got {sorted(options)}")
        return NoTranslator()
    raise ValueError(
        f"unknown translator {name!r}: choose apertium, transformers, ctranslate2 or none"
    )
