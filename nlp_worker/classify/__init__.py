"""Covid relevance and topic classification, split by job:

- :mod:`~nlp_worker.classify.model` — what workers run: keyword features, the artefact,
  :class:`CovidClassifier`, :func:`load_classifier` (numpy only);
- :mod:`~nlp_worker.classify.training` — fitting it (``covidnews train-classifier``);
- :mod:`~nlp_worker.classify.evaluation` — outer cross-validation (``bench/eval_classifier.py``).

Everything is importable from here as before; the training and evaluation names load their
module on first use (PEP 562), so a worker importing this package never imports training code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nlp_worker.classify.model import (
    ARTEFACT_FORMAT,
    COVID_TERMS,
    DEFAULT_ARTEFACT,
    MAX_TOPICS,
    TOPIC_TERMS,
    Artefact,
    CovidClassifier,
    covid_keyword_features,
    document_text,
    keyword_rule,
    load_classifier,
    select_topics,
    topic_keyword_features,
)

if TYPE_CHECKING:  # the lazy names, for type checkers
    from nlp_worker.classify.evaluation import cross_validate, outer_folds
    from nlp_worker.classify.training import (
        TrainingData,
        embed_training_data,
        fit_logistic,
        fit_prepared,
        load_training_data,
        topic_set_f1,
        train,
    )

_LAZY = {
    "TrainingData": "training",
    "embed_training_data": "training",
    "fit_logistic": "training",
    "fit_prepared": "training",
    "load_training_data": "training",
    "topic_set_f1": "training",
    "train": "training",
    "cross_validate": "evaluation",
    "outer_folds": "evaluation",
}

__all__ = [
    "ARTEFACT_FORMAT",
    "COVID_TERMS",
    "DEFAULT_ARTEFACT",
    "MAX_TOPICS",
    "TOPIC_TERMS",
    "Artefact",
    "CovidClassifier",
    "TrainingData",
    "covid_keyword_features",
    "cross_validate",
    "document_text",
    "embed_training_data",
    "fit_logistic",
    "fit_prepared",
    "keyword_rule",
    "load_classifier",
    "load_training_data",
    "outer_folds",
    "select_topics",
    "topic_keyword_features",
    "topic_set_f1",
    "train",
]


def __getattr__(name: str) -> Any:  # a training/evaluation name, imported when first used
    if name in _LAZY:
        module = importlib.import_module(f"nlp_worker.classify.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
