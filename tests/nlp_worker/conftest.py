"""Fixtures shared by the NLP stage tests."""

from __future__ import annotations

import pytest

from covidnews.embed import get_embedder
from nlp_worker.backends.langid import MODEL_ID as LANGID_MODEL
from nlp_worker.backends.langid import detect_language
from nlp_worker.backends.sentences import split_sentences
from nlp_worker.backends.translate import get_translator
from nlp_worker.classify import load_classifier
from nlp_worker.stages import Backends


def real_backends(embedder: str = "hashing") -> Backends:
    """The real backends (language id, classifier, Apertium), with the ``hashing`` embedder by
    default (fast; for tests of the stages, not of the model) or E5 (``"e5"``)."""
    return Backends(
        detect_language=detect_language,
        langid_model=LANGID_MODEL,
        classifier=load_classifier(),
        translator=get_translator("apertium"),
        embedder=get_embedder(embedder),
        split_sentences=split_sentences,
    )


@pytest.fixture(scope="module")
def backends() -> Backends:
    return real_backends()
