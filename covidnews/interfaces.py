"""The small interfaces every model backend implements: :class:`Translator`, :class:`Embedder`
(here, in the core, because search embeds queries too) and :class:`Classifier`.

Backends are chosen by settings (``nlp_worker.stages.Backends.from_settings``,
:func:`covidnews.embed.get_embedder`), load their model once (lazily, on first use) and are reused
for the life of the process; heavy imports (torch, transformers, onnxruntime…) happen inside
them, never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from covidnews.settings import Settings
    from covidnews.store import Store

Kind = Literal["query", "passage"]
#: An article as a JSON object (``title``, ``text``, ``language``…): a backend reads the keys it
#: needs and ignores the rest, so callers pass store rows, API bodies or JSONL lines alike.
ArticleFields = Mapping[str, Any]


class Handoff(Protocol):
    """Hands stored article ids to the NLP (``nlp_worker.handoff.submit``); returns how many it
    handed over. Given to the crawler and the sweep by the entry points, so neither depends on
    the NLP."""

    def __call__(
        self, article_ids: Sequence[int], settings: Settings | None = ..., store: Store | None = ...
    ) -> int: ...


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (package, binary or model missing); the message says which."""


@runtime_checkable
class Translator(Protocol):
    """Machine translation, one text in → one text out, order and count kept."""

    #: identifies backend + model + version; stored with every translation it makes
    model_id: str

    def pairs(self) -> set[tuple[str, str]]:
        """Language pairs (ISO 639-1 source, target) this backend can translate."""
        ...

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate each text; an empty or blank text gives an empty string."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Sentence/document embeddings, L2-normalised float32."""

    model_id: str
    dims: int

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        """(len(texts), dims) float32, each row of unit length. ``kind`` matters for models
        with asymmetric prompts (E5: "query: " / "passage: ")."""
        ...


@runtime_checkable
class Classifier(Protocol):
    """Covid relevance and topics for articles (``nlp_worker.classify.CovidClassifier``)."""

    #: identifies the artefact and the embedder it was trained on; stored with every result
    model_id: str

    @property
    def embedder(self) -> Embedder | None:
        """The embedder whose passage vectors it reads (None: it embeds nothing itself)."""
        ...

    def predict(
        self, items: Sequence[ArticleFields], embeddings: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """For each item (``title``, ``text``): ``covid_score``, ``is_covid`` and ``topics``
        (``[{"id", "score"}]``, best first). ``embeddings``: the items' document vectors from
        :attr:`embedder`, when the caller has them already."""
        ...
