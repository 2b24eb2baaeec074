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


@pytest.fixture(scope="module")
def backends() -> Backends:
    """The real backends, with the hashing embedder (fast; the stages are under test, not the
    model)."""
    return Backends(
        detect_language=detect_language,
        langid_model=LANGID_MODEL,
        classifier=load_classifier(),
        translator=get_translator("apertium"),
        embedder=get_embedder("hashing"),
        split_sentences=split_sentences,
    )
