"""Covid relevance and topic classification: :class:`CovidClassifier`, trained by :func:`train`.

**Features** (all multilingual, so Spanish and English text go through one model):

- the article's multilingual-E5 embedding (``covidnews.embed``, ``kind="passage"``) of
  :func:`~covidnews.embed.document_text` (title + first 2,000 body characters); a
  caller that already has that vector can pass it to :meth:`CovidClassifier.predict`;
- Covid keyword statistics (Spanish and English terms, accents and case folded): hits in the
  title, in the lead, in the first :data:`KEYWORD_CHARS` characters, and their density;
- for topics: the similarity of the article to each topic's **prototype** (the taxonomy's Spanish
  name and English name + "about" description, embedded as E5 queries and averaged), z-scored
  across topics, and one keyword count per topic from a small es+en lexicon per topic.

**Models**: logistic regressions (fitted with scikit-learn in :mod:`nlp_worker.classify.training`),
stored as plain weight arrays in the raw feature space (``nlp_worker/models/classifier.npz``, no
pickles, + a JSON sidecar with metadata), so prediction needs only numpy.

- Relevance: one logistic regression on [embedding, keyword statistics], trained on the labelled
  2020-21 articles plus the 2018 FakeDeS articles as extra negatives; its logit is recalibrated
  (Platt scaling on out-of-fold logits of the labelled 2020-21 rows only, so ``covid_score``
  reads as a probability on that distribution), and ``is_covid`` is ``covid_score >= threshold``.
- Topics: one-vs-rest logistic regressions on [embedding, prototype similarities, topic keyword
  counts], trained on the Covid articles. A topic with fewer than :data:`MIN_TOPIC_POSITIVES`
  training examples gets a *zero-shot* model instead: one logistic regression shared by all
  topics on that topic's own (prototype similarity, keyword count) pair.
- Topic sets: topics ranked by score; the best one always, the 2nd and 3rd when their score
  reaches ``topic_threshold``. Not Covid: no topics.

The embedding block is scaled to a total variance (its "weight" against the standardised
hand-made features). That weight, the regularisation strength C, the Platt parameters,
``threshold`` and ``topic_threshold`` are all chosen by an inner cross-validation over the
training data that :func:`train` receives, so the outer cross-validation
(:func:`cross_validate`, ``bench/eval_classifier.py``) never tunes anything on its test folds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from covidnews.interfaces import ArticleFields, Embedder
from covidnews.text import fold

__all__ = [
    "ARTEFACT_FORMAT",
    "COVID_TERMS",
    "DEFAULT_ARTEFACT",
    "MAX_TOPICS",
    "TOPIC_TERMS",
    "Artefact",
    "CovidClassifier",
    "covid_keyword_features",
    "document_text",
    "keyword_rule",
    "load_classifier",
    "select_topics",
    "topic_keyword_features",
]

log = logging.getLogger(__name__)

#: Version of the artefact layout; part of ``model_id``.
ARTEFACT_FORMAT = 1
#: The committed artefact.
DEFAULT_ARTEFACT = Path(__file__).resolve().parents[1] / "models" / "classifier.npz"
#: At most this many topics per article.
MAX_TOPICS = 3
#: Topics with fewer training examples than this get the shared zero-shot model.
MIN_TOPIC_POSITIVES = 3
#: Keyword statistics look at this many characters of the body.
KEYWORD_CHARS = 5000
#: "Lead" for the keyword statistics: the first characters of the body.
LEAD_CHARS = 600


# ------------------------------------------------------------------------------------ lexicons


def _terms(alternatives: str) -> re.Pattern[str]:
    """Whole-word alternatives separated by ``|``, on folded text; a trailing ``*`` allows any
    word ending; a space matches any whitespace."""
    words = [a.strip() for a in alternatives.split("|") if a.strip()]
    parts = [re.escape(a[:-1]) + r"\w*" if a.endswith("*") else re.escape(a) for a in words]
    pattern = "|".join(p.replace(r"\ ", r"\s+") for p in parts)
    return re.compile(rf"\b(?:{pattern})\b")


#: Covid vocabulary, Spanish and English (folded: no accents, lower case).
COVID_TERMS = _terms(
    "covid*|coronavirus*|sars-cov-2|sars-cov2|sarscov2|2019-ncov|ncov|pandemi*|"
    "epidemi*|cuarentena*|quarantin*|confinamiento*|lockdown*|vacuna*|"
    "vacunacion*|vacunad*|vaccin*|mascarilla*|cubrebocas|tapabocas|barbijo*|"
    "face mask*|distanciamiento social|distancia social|sana distancia|"
    "social distancing|contagio*|contagiad*|toque de queda|curfew*|"
    "estado de alarma|rebrote*|nueva normalidad|new normal|asintomatic*|"
    "asymptomatic|pcr|wuhan|pfizer|astrazeneca|sputnik v|sinovac|sinopharm|"
    "ivermectin*"
)

#: One small es+en lexicon per taxonomy topic (from its "about" description).
TOPIC_TERMS: dict[str, re.Pattern[str]] = {
    "cases": _terms(
        "casos|contagios|fallecid*|muertes|defunciones|hospitalizad*|"
        "ocupacion hospitalaria|curva|ola|incidencia|positivos|cifras|balance|cases|"
        "deaths|death toll|infections|hospitalisations|hospitalizations|wave|"
        "incidence|figures"
    ),
    "vaccines": _terms(
        "vacuna*|vacunacion|vacunar*|vacunad*|dosis|inmunizacion|pfizer|moderna|"
        "astrazeneca|sputnik|sinovac|janssen|vaccin*|jab*|dose*|immunisation|"
        "immunization"
    ),
    "health_care": _terms(
        "hospital*|uci|cuidados intensivos|medic*|enfermer*|sanitari*|tratamiento*|"
        "farmaco*|medicamento*|sintoma*|respirador*|oxigeno|pacientes|icu|"
        "intensive care|doctor*|nurse*|health workers|treatment*|drug*|symptom*|"
        "ventilator*|oxygen|patient*"
    ),
    "measures": _terms(
        "confinamiento*|cuarentena*|toque de queda|mascarilla*|cubrebocas|tapabocas|"
        "distanciamiento|restriccion*|estado de alarma|estado de emergencia|cierre*|"
        "aforo*|reapertura|semaforo|rastreo|lockdown*|curfew*|mask*|distancing|"
        "restriction*|state of emergency|reopening|contact tracing"
    ),
    "economy": _terms(
        "economi*|empleo*|desempleo|paro|empresa*|negocio*|ayudas|mercado*|bolsa|"
        "precio*|turismo|pib|erte*|economy|economic*|jobs|unemployment|compan*|"
        "business*|stimulus|market*|price*|tourism|gdp"
    ),
    "education": _terms(
        "escuela*|colegio*|universidad*|clases|alumn*|estudiante*|profesor*|"
        "docente*|examen*|educacion*|educativ*|escolar*|school*|universit*|classes|"
        "pupils|student*|teacher*|exam*|education*"
    ),
    "travel": _terms(
        "vuelo*|aerolinea*|aeropuerto*|frontera*|viajer*|pasajer*|turistas|"
        "migrante*|migracion*|pasaporte*|flight*|airline*|airport*|border*|"
        "traveller*|traveler*|passenger*|tourists|migrant*|passport*"
    ),
    "science": _terms(
        "estudio*|investigacion*|investigador*|cientific*|variante*|cepa*|mutacion*|"
        "transmision|laboratorio*|genoma|revista|study|studies|research*|scientist*|"
        "variant*|strain*|mutation*|transmission|laborator*|genome|journal"
    ),
    "misinformation": _terms(
        "bulo*|falso|falsa|falsas|falsos|desinformacion|verificacion|verificado*|"
        "conspiracion*|enganos*|no es cierto|mito*|fake|hoax*|conspirac*|false|"
        "debunk*|misleading|misinformation|disinformation|fact check*|fact-check*"
    ),
    "politics": _terms(
        "gobierno*|president*|ministr*|oposicion|partido*|elecciones|electoral|"
        "congreso|senado|corrupcion|diputad*|alcald*|gobernador*|government*|"
        "opposition|party|election*|congress|parliament*|senate|corruption|"
        "governor*"
    ),
    "society": _terms(
        "cultura*|deport*|futbol|religio*|iglesia*|salud mental|familia*|crimen*|"
        "delito*|policia*|fiesta*|musica|cine|culture|sport*|football|soccer|"
        "church*|mental health|family|families|crime*|police|celebrit*|music|film*"
    ),
}


def _title_body(title: str | None, text: str | None) -> tuple[str, str]:
    return fold(title or ""), fold((text or "")[:KEYWORD_CHARS])


def covid_keyword_features(title: str | None, text: str | None) -> np.ndarray:
    """4 statistics of :data:`COVID_TERMS`: log1p of hits in the title, in the lead and in the
    body, and hits per 1,000 body characters (capped at 10)."""
    t, body = _title_body(title, text)
    in_title = len(COVID_TERMS.findall(t))
    in_lead = len(COVID_TERMS.findall(body[:LEAD_CHARS]))
    in_body = len(COVID_TERMS.findall(body))
    density = min(10.0, 1000.0 * in_body / max(len(body), 200))
    return np.array(
        [np.log1p(in_title), np.log1p(in_lead), np.log1p(in_body), density], dtype=np.float64
    )


def topic_keyword_features(
    title: str | None, text: str | None, topic_ids: Sequence[str]
) -> np.ndarray:
    """Per topic: log1p(2 x hits in the title + hits in the first 2,000 body characters)."""
    t, body = _title_body(title, text)
    body = body[:2000]
    out = np.zeros(len(topic_ids), dtype=np.float64)
    for k, topic in enumerate(topic_ids):
        pattern = TOPIC_TERMS.get(topic)
        if pattern is not None:
            out[k] = np.log1p(2 * len(pattern.findall(t)) + len(pattern.findall(body)))
    return out


def keyword_rule(title: str | None, text: str | None) -> bool:
    """The keyword baseline: a Covid term in the title, or at least two in the body."""
    t, body = _title_body(title, text)
    return bool(COVID_TERMS.search(t)) or len(COVID_TERMS.findall(body)) >= 2


# ------------------------------------------------------------------------------------ artefact


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), dtype=np.float64)


@dataclass
class Artefact:
    """Everything prediction needs: weights in raw feature space, thresholds, prototypes.

    ``rel_w`` / ``rel_b``: relevance logit over [embedding, covid keyword statistics];
    ``platt``: (a, b) with covid_score = sigmoid(a * logit + b). ``topic_w`` (K x F) /
    ``topic_b`` (K): topic logits over [embedding, prototype similarities (z-scored), topic
    keyword counts]; topic score = sigmoid(logit). ``prototypes``: (K, dims) unit vectors.
    """

    embedder: str
    embedder_model_id: str
    topic_ids: list[str]
    prototypes: np.ndarray
    rel_w: np.ndarray
    rel_b: float
    platt: tuple[float, float]
    threshold: float
    topic_w: np.ndarray
    topic_b: np.ndarray
    topic_threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "prototypes": np.asarray(self.prototypes, dtype=np.float32),
            "rel_w": np.asarray(self.rel_w, dtype=np.float32),
            "rel_b": np.array([self.rel_b], dtype=np.float64),
            "platt": np.array(self.platt, dtype=np.float64),
            "threshold": np.array([self.threshold], dtype=np.float64),
            "topic_w": np.asarray(self.topic_w, dtype=np.float32),
            "topic_b": np.asarray(self.topic_b, dtype=np.float64),
            "topic_threshold": np.array([self.topic_threshold], dtype=np.float64),
            "topic_ids": np.array(self.topic_ids, dtype=np.str_),
            "embedder": np.array([self.embedder, self.embedder_model_id], dtype=np.str_),
            "format": np.array([ARTEFACT_FORMAT], dtype=np.int64),
        }

    def digest(self) -> str:
        """Short content hash of the arrays (stable across re-saves of the same weights)."""
        h = hashlib.sha256()
        for name, arr in sorted(self.arrays().items()):
            h.update(name.encode())
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:12]

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.npz, no pickles) and its ``.json`` sidecar; returns the npz path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **self.arrays())  # type: ignore[arg-type]
        tmp.replace(path)
        meta = {
            "format": ARTEFACT_FORMAT,
            "digest": self.digest(),
            "embedder": self.embedder,
            "embedder_model_id": self.embedder_model_id,
            "topic_ids": self.topic_ids,
            "threshold": self.threshold,
            "topic_threshold": self.topic_threshold,
            "platt": list(self.platt),
            **self.meta,
        }
        path.with_suffix(".json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Artefact:
        path = Path(path)
        with np.load(path, allow_pickle=False) as z:
            fmt = int(z["format"][0])
            if fmt != ARTEFACT_FORMAT:
                raise ValueError(
                    f"{path}: classifier artefact format {fmt}, this code reads {ARTEFACT_FORMAT}"
                )
            embedder, embedder_model_id = (str(s) for s in z["embedder"])
            artefact = cls(
                embedder=embedder,
                embedder_model_id=embedder_model_id,
                topic_ids=[str(t) for t in z["topic_ids"]],
                prototypes=np.asarray(z["prototypes"], dtype=np.float32),
                rel_w=np.asarray(z["rel_w"], dtype=np.float64),
                rel_b=float(z["rel_b"][0]),
                platt=(float(z["platt"][0]), float(z["platt"][1])),
                threshold=float(z["threshold"][0]),
                topic_w=np.asarray(z["topic_w"], dtype=np.float64),
                topic_b=np.asarray(z["topic_b"], dtype=np.float64),
                topic_threshold=float(z["topic_threshold"][0]),
            )
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            artefact.meta = json.loads(sidecar.read_text(encoding="utf-8"))
        return artefact


# ------------------------------------------------------------------------------------ features


def document_text(title: str | None, text: str | None) -> str:
    """What is embedded: the embedding stage's document text (title + start of the body)."""
    from covidnews.embed import document_text as _document_text

    return _document_text(title, text or "")


def _prototype_sims(emb: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Cosine similarity to each topic prototype, z-scored across topics per article."""
    sims = np.asarray(emb, dtype=np.float64) @ np.asarray(prototypes, dtype=np.float64).T
    mean = sims.mean(axis=1, keepdims=True)
    std = sims.std(axis=1, keepdims=True)
    return np.asarray((sims - mean) / np.maximum(std, 1e-6), dtype=np.float64)


def _relevance_features(emb: np.ndarray, items: Sequence[ArticleFields]) -> np.ndarray:
    kw = np.stack([covid_keyword_features(i.get("title"), i.get("text")) for i in items])
    return np.hstack([np.asarray(emb, dtype=np.float64), kw])


def _topic_features(
    emb: np.ndarray,
    items: Sequence[ArticleFields],
    prototypes: np.ndarray,
    topic_ids: Sequence[str],
) -> np.ndarray:
    kw = np.stack([topic_keyword_features(i.get("title"), i.get("text"), topic_ids) for i in items])
    return np.hstack([np.asarray(emb, dtype=np.float64), _prototype_sims(emb, prototypes), kw])


def select_topics(scores: np.ndarray, threshold: float, max_topics: int = MAX_TOPICS) -> list[int]:
    """Topic indices for one article, best first: the best always, then the next ones (up to
    ``max_topics`` in all) whose score reaches ``threshold``."""
    order = np.argsort(-scores, kind="stable")
    chosen = [int(order[0])]
    for k in order[1:max_topics]:
        if scores[k] >= threshold:
            chosen.append(int(k))
    return chosen


# ---------------------------------------------------------------------------------- classifier


class CovidClassifier:
    """Covid relevance + topics for articles in any language the embedder knows (es, en …).

    Built from an :class:`Artefact`; the embedder is obtained from the registry on first use
    (shared with the embedding stage when both use the same one).
    """

    def __init__(self, artefact: Artefact, embedder: Embedder | None = None) -> None:
        self.artefact = artefact
        self._embedder = embedder
        self._lock = threading.Lock()
        #: classifier id stored with every result: artefact format + content hash + embedder
        self.model_id = (
            f"covidclf-v{ARTEFACT_FORMAT}:{artefact.digest()}+{artefact.embedder_model_id}"
        )
        self.topic_ids = list(artefact.topic_ids)
        self.threshold = artefact.threshold

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from covidnews.embed import get_embedder

                    emb = get_embedder(self.artefact.embedder)
                    if emb.model_id != self.artefact.embedder_model_id:
                        log.warning(
                            "classifier was trained on embeddings of %s but %s is installed; "
                            "retrain it (covidnews train-classifier)",
                            self.artefact.embedder_model_id,
                            emb.model_id,
                        )
                    self._embedder = emb
        return self._embedder

    def embed(self, items: Sequence[ArticleFields]) -> np.ndarray:
        """The embeddings the classifier uses for ``items`` (``kind="passage"``)."""
        texts = [document_text(i.get("title"), i.get("text")) for i in items]
        return np.asarray(self.embedder.encode(texts, kind="passage"), dtype=np.float32)

    def scores(
        self, items: Sequence[ArticleFields], embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(covid_score (N,), topic scores (N, K)) without thresholds."""
        a = self.artefact
        if not items:
            return np.zeros(0), np.zeros((0, len(a.topic_ids)))
        emb = self.embed(items) if embeddings is None else np.asarray(embeddings)
        if emb.shape != (len(items), a.prototypes.shape[1]):
            raise ValueError(
                f"embeddings of shape {emb.shape}, expected ({len(items)}, {a.prototypes.shape[1]})"
            )
        logit = _relevance_features(emb, items) @ a.rel_w + a.rel_b
        covid = _sigmoid(a.platt[0] * logit + a.platt[1])
        topic_logits = (
            _topic_features(emb, items, a.prototypes, a.topic_ids) @ a.topic_w.T + a.topic_b
        )
        return covid, _sigmoid(topic_logits)

    def predict(
        self, items: Sequence[ArticleFields], embeddings: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """For each item (``title``, ``text``; ``language`` is not needed): ``covid_score``,
        ``is_covid`` and ``topics`` ([{"id", "score"}], best first; empty when not Covid).

        ``embeddings``: the items' E5 passage embeddings of their document text, when the caller
        already has them (the classifier then embeds nothing).
        """
        covid, topics = self.scores(items, embeddings)
        out: list[dict[str, Any]] = []
        for i in range(len(items)):
            is_covid = bool(covid[i] >= self.threshold)
            chosen = select_topics(topics[i], self.artefact.topic_threshold) if is_covid else []
            out.append(
                {
                    "covid_score": round(float(covid[i]), 4),
                    "is_covid": is_covid,
                    "topics": [
                        {"id": self.topic_ids[k], "score": round(float(topics[i, k]), 4)}
                        for k in chosen
                    ],
                }
            )
        return out


_LOADED: dict[str, CovidClassifier] = {}
_LOADED_LOCK = threading.Lock()


def load_classifier(path: str | Path | None = None) -> CovidClassifier:
    """The classifier in ``path`` (default: the committed artefact), loaded once per process."""
    resolved = Path(path or DEFAULT_ARTEFACT).resolve()
    key = str(resolved)
    with _LOADED_LOCK:
        clf = _LOADED.get(key)
        if clf is None:
            if not resolved.is_file():
                raise FileNotFoundError(
                    f"no classifier artefact at {resolved} (covidnews train-classifier builds it)"
                )
            clf = _LOADED[key] = CovidClassifier(Artefact.load(resolved))
    return clf
