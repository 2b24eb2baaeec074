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

**Models**: logistic regressions (fitted here by Newton's method: no scikit-learn), stored as
plain weight arrays in the raw feature space (``nlp_worker/models/classifier.npz``, no pickles,
+ a JSON sidecar with metadata), so training and prediction need only numpy.

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

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from covidnews.interfaces import Embedder
from covidnews.text import fold

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

log = logging.getLogger(__name__)

#: Version of the artefact layout; part of ``model_id``.
ARTEFACT_FORMAT = 1
#: The committed artefact.
DEFAULT_ARTEFACT = Path(__file__).resolve().parent / "models" / "classifier.npz"
#: At most this many topics per article.
MAX_TOPICS = 3
#: Topics with fewer training examples than this get the shared zero-shot model.
MIN_TOPIC_POSITIVES = 3
#: Keyword statistics look at this many characters of the body.
KEYWORD_CHARS = 5000
#: "Lead" for the keyword statistics: the first characters of the body.
LEAD_CHARS = 600
#: Hyperparameters tried by the inner cross-validation: (C, embedding weight). C is the inverse
#: L2 regularisation strength on standardised features; the embedding weight is the total
#: variance the embedding block is scaled to (one scale for all its dimensions, so the block
#: counts like that many standardised hand-made features).
REL_GRID = tuple((c, e) for c in (0.3, 1.0, 3.0) for e in (100.0, 300.0))
TOPIC_GRID = tuple((c, e) for c in (0.3, 1.0, 3.0, 10.0) for e in (10.0, 30.0, 100.0))
#: Candidate thresholds for the 2nd and 3rd topic (on the topic score, 0-1).
TOPIC_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))
#: Sample weight of one extra (2018) negative relative to a labelled article.
NEGATIVE_WEIGHT = 0.5


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


def _relevance_features(emb: np.ndarray, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
    kw = np.stack([covid_keyword_features(i.get("title"), i.get("text")) for i in items])
    return np.hstack([np.asarray(emb, dtype=np.float64), kw])


def _topic_features(
    emb: np.ndarray,
    items: Sequence[Mapping[str, Any]],
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

    def embed(self, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The embeddings the classifier uses for ``items`` (``kind="passage"``)."""
        texts = [document_text(i.get("title"), i.get("text")) for i in items]
        return np.asarray(self.embedder.encode(texts, kind="passage"), dtype=np.float32)

    def scores(
        self, items: Sequence[Mapping[str, Any]], embeddings: np.ndarray | None = None
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
        self, items: Sequence[Mapping[str, Any]], embeddings: np.ndarray | None = None
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


# ------------------------------------------------------------------------------------ training


@dataclass
class TrainingData:
    """Labelled articles (``title``, ``text``, ``covid``, ``topics``), extra negatives
    (``title``, ``text``) and the taxonomy's topics (``id``, ``es``, ``en``, ``about``)."""

    labelled: list[dict[str, Any]]
    negatives: list[dict[str, Any]]
    taxonomy: list[dict[str, str]]
    description: str = ""


def _article(row: Mapping[str, Any]) -> dict[str, Any]:
    title = row.get("title", row.get("headline"))
    return {**row, "title": title or "", "text": row.get("text") or ""}


def load_training_data(shared: str | Path) -> TrainingData:
    """The shared data: ``fakedes/labelled_dev.jsonl`` (labelled), ``fakedes/train.jsonl`` and
    ``development.jsonl`` (2018, all non-Covid: extra negatives), ``taxonomy.yaml``."""
    import yaml

    shared = Path(shared)

    def rows(name: str) -> list[dict[str, Any]]:
        with (shared / "fakedes" / name).open(encoding="utf-8") as f:
            return [_article(json.loads(line)) for line in f if line.strip()]

    labelled = rows("labelled_dev.jsonl")
    negatives = rows("train.jsonl") + rows("development.jsonl")
    doc = yaml.safe_load((shared / "taxonomy.yaml").read_text(encoding="utf-8"))
    taxonomy = [{k: str(t.get(k, "")) for k in ("id", "es", "en", "about")} for t in doc["topics"]]
    n_covid = sum(bool(r.get("covid")) for r in labelled)
    description = (
        f"FakeDeS labelled_dev.jsonl: {len(labelled)} Spanish articles Nov 2020 - Mar 2021 "
        f"({n_covid} Covid, topics labelled); FakeDeS train+development: {len(negatives)} "
        f"Spanish articles from 2018 as extra non-Covid examples (weight {NEGATIVE_WEIGHT}); "
        f"taxonomy.yaml version {doc.get('version')}"
    )
    return TrainingData(labelled, negatives, taxonomy, description)


def prototype_texts(taxonomy: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """Per topic, the two texts its prototype averages: the Spanish name, and the English name
    with the "about" description."""
    return [(t["es"], f"{t['en']}: {t['about']}" if t.get("about") else t["en"]) for t in taxonomy]


#: ``encode(texts, kind)`` → (len(texts), dims) unit rows: an embedder's encode, maybe cached.
Encoder = Callable[[Sequence[str], str], np.ndarray]


def _encoder(embedder: Any) -> Encoder:
    def encode(texts: Sequence[str], kind: str) -> np.ndarray:
        return np.asarray(embedder.encode(list(texts), kind=kind), dtype=np.float32)

    return encode


def embed_prototypes(
    embedder: Any, taxonomy: Sequence[Mapping[str, str]], encode: Encoder | None = None
) -> np.ndarray:
    """(K, dims) topic prototypes: the normalised sum of the E5 *query* embeddings of the
    topic's Spanish name and of its English name + description."""
    enc = encode or _encoder(embedder)
    pairs = prototype_texts(taxonomy)
    es = enc([p[0] for p in pairs], "query")
    en = enc([p[1] for p in pairs], "query")
    proto = np.asarray(es, dtype=np.float64) + np.asarray(en, dtype=np.float64)
    proto /= np.maximum(np.linalg.norm(proto, axis=1, keepdims=True), 1e-12)
    return proto.astype(np.float32)


def _newton_logistic(
    x: np.ndarray, y: np.ndarray, sw: np.ndarray, c: float, max_iter: int = 50
) -> tuple[np.ndarray, float]:
    """Minimise c * sum(sw * logloss) + ||w||^2 / 2 (intercept not penalised) by Newton's method
    with step halving; ``x`` standardised. Same objective as scikit-learn's L2 ``C``."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.ones(d + 1)
    reg[-1] = 1e-8

    def objective(t: np.ndarray) -> float:
        z = xb @ t
        loss = np.logaddexp(0.0, z) - y * z
        return float(c * (sw * loss).sum() + 0.5 * (reg * t * t).sum())

    current = objective(theta)
    for _ in range(max_iter):
        prob = _sigmoid(xb @ theta)
        grad = c * (xb.T @ (sw * (prob - y))) + reg * theta
        hess = c * (xb.T * (sw * prob * (1.0 - prob))) @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-6:
            candidate = theta - size * step
            value = objective(candidate)
            if value <= current:
                break
            size /= 2.0
        else:
            break
        theta, previous, current = candidate, current, value
        if previous - current < 1e-9 * max(1.0, abs(previous)):
            break
    return theta[:-1], float(theta[-1])


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    c: float,
    weights: np.ndarray | None = None,
    *,
    balanced: bool = True,
    n_emb: int = 0,
    emb_weight: float = 30.0,
) -> tuple[np.ndarray, float]:
    """L2 logistic regression, optionally class-balanced; returns (w, b) in the raw feature
    space: logit = x @ w + b. Features are centred; the first ``n_emb`` columns (an embedding)
    share one scale that gives the block a total variance of ``emb_weight``, every other column
    is standardised."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    if n_emb:
        block_var = float(((x[:, :n_emb] - mean[:n_emb]) ** 2).mean(axis=0).sum())
        scale[:n_emb] = max(np.sqrt(block_var / emb_weight), 1e-9)
    sw = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if balanced:
        pos = sw[y == 1].sum()
        neg = sw[y == 0].sum()
        sw = sw * np.where(y == 1, (pos + neg) / (2 * max(pos, 1e-9)), (pos + neg) / (2 * neg))
    xs = (x - mean) / scale
    if len(xs) < xs.shape[1]:
        # The optimal weights lie in the row space of xs: solve in its basis (n x n, not d x d).
        _, sv, vt = np.linalg.svd(xs, full_matrices=False)
        basis = vt[sv > 1e-9 * sv[0]].T
        beta, intercept = _newton_logistic(xs @ basis, y, sw, c)
        coef = basis @ beta
    else:
        coef, intercept = _newton_logistic(xs, y, sw, c)
    w = coef / scale
    return w, float(intercept - (mean * w).sum())


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Many small matrix products: BLAS threads only fight each other (10x slower on a busy
    2-core machine). Limited with threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _f1(tp: float, n_pred: float, n_true: float) -> float:
    return 0.0 if n_pred + n_true == 0 else 2.0 * tp / (n_pred + n_true)


def _best_threshold(prob: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(threshold maximising F1, that F1); ties go to the threshold closest to 0.5."""
    best_key = (-1.0, 0.0)
    best_t = 0.5
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        pred = prob >= t
        f1 = _f1(float((pred & (y == 1)).sum()), float(pred.sum()), float((y == 1).sum()))
        key = (round(f1, 6), -abs(float(t) - 0.5))
        if key > best_key:
            best_key, best_t = key, float(t)
    return best_t, best_key[0]


def topic_set_f1(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, list[float | None]]:
    """(macro-F1, micro-F1, per-topic F1) of 0/1 matrices (articles x topics). The macro average
    runs over the topics that occur in ``truth`` or in ``pred``; a topic in neither is None."""
    per: list[float | None] = []
    for k in range(truth.shape[1]):
        n_true, n_pred = float(truth[:, k].sum()), float(pred[:, k].sum())
        if n_true + n_pred == 0:
            per.append(None)
        else:
            per.append(_f1(float((truth[:, k] * pred[:, k]).sum()), n_pred, n_true))
    present = [f for f in per if f is not None]
    macro = float(np.mean(present)) if present else 0.0
    micro = _f1(float((truth * pred).sum()), float(pred.sum()), float(truth.sum()))
    return macro, micro, per


def _select_matrix(scores: np.ndarray, threshold: float) -> np.ndarray:
    pred = np.zeros(scores.shape, dtype=np.int64)
    for i in range(len(scores)):
        pred[i, select_topics(scores[i], threshold)] = 1
    return pred


def _kfold(n: int, folds: int, seed: int, strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Test-index arrays of a (stratified) shuffled k-fold split of range(n)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == v) for v in (0, 1)]
    out: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for g in groups:
        g = rng.permutation(g)
        for j, idx in enumerate(g):
            out[(j + offset) % folds].append(int(idx))
        offset += len(g)
    return [np.array(sorted(f), dtype=np.int64) for f in out]


def _topic_models(
    x: np.ndarray, y: np.ndarray, hyper: tuple[float, float], n_emb: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest topic logits (K x F weights, K biases); the zero-shot shared model for topics
    with fewer than MIN_TOPIC_POSITIVES positives."""
    n_topics = y.shape[1]
    w = np.zeros((n_topics, x.shape[1]))
    b = np.zeros(n_topics)
    rare = [k for k in range(n_topics) if y[:, k].sum() < MIN_TOPIC_POSITIVES]
    if rare:
        # zero-shot: logit = a * sim_k + c * keywords_k + d, one (a, c, d) for all topics
        sims = x[:, n_emb : n_emb + n_topics]
        kws = x[:, n_emb + n_topics :]
        pooled_x = np.stack([sims.ravel(), kws.ravel()], axis=1)
        pooled_w, pooled_b = fit_logistic(pooled_x, y.ravel(), 1.0, balanced=False)
        for k in rare:
            w[k, n_emb + k] = pooled_w[0]
            w[k, n_emb + n_topics + k] = pooled_w[1]
            b[k] = pooled_b
    for k in range(n_topics):
        if k not in rare:
            w[k], b[k] = fit_logistic(x, y[:, k], hyper[0], n_emb=n_emb, emb_weight=hyper[1])
    return w, b


@dataclass
class _Prepared:
    """Features of the training data, computed once (embedding is the slow part)."""

    rel_x: np.ndarray  # labelled rows then negatives
    rel_y: np.ndarray
    n_labelled: int
    topic_x: np.ndarray  # labelled Covid rows
    topic_y: np.ndarray  # (n_covid, K)


def _prepare(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
) -> _Prepared:
    topic_ids = [t["id"] for t in data.taxonomy]
    rel_x = _relevance_features(
        np.vstack([emb_labelled, emb_negatives]), data.labelled + data.negatives
    )
    rel_y = np.array([int(bool(r.get("covid"))) for r in data.labelled] + [0] * len(data.negatives))
    covid_rows = [i for i, r in enumerate(data.labelled) if r.get("covid")]
    items = [data.labelled[i] for i in covid_rows]
    topic_x = (
        _topic_features(emb_labelled[covid_rows], items, prototypes, topic_ids)
        if covid_rows
        else np.zeros((0, emb_labelled.shape[1] + 2 * len(topic_ids)))
    )
    topic_y = np.zeros((len(items), len(topic_ids)), dtype=np.int64)
    for j, r in enumerate(items):
        for t in r.get("topics") or []:
            if t in topic_ids:
                topic_y[j, topic_ids.index(t)] = 1
            else:
                raise ValueError(f"unknown topic {t!r} in training data")
    return _Prepared(rel_x, rel_y, len(data.labelled), topic_x, topic_y)


def _fit_relevance(
    p: _Prepared, n_emb: int, grid: Sequence[tuple[float, float]], folds: int, seed: int
) -> tuple[np.ndarray, float, tuple[float, float], float, dict[str, Any]]:
    n = p.n_labelled
    y_lab = p.rel_y[:n]
    weights = np.where(np.arange(len(p.rel_y)) < n, 1.0, NEGATIVE_WEIGHT)
    splits = _kfold(n, folds, seed, y_lab)

    def fit(mask: np.ndarray, hyper: tuple[float, float]) -> tuple[np.ndarray, float]:
        return fit_logistic(
            p.rel_x[mask],
            p.rel_y[mask],
            hyper[0],
            weights[mask],
            n_emb=n_emb,
            emb_weight=hyper[1],
        )

    best: tuple[tuple[float, float], float, np.ndarray] | None = None
    for hyper in grid:
        oof = np.zeros(n)
        for test in splits:
            train_mask = np.ones(len(p.rel_y), dtype=bool)
            train_mask[test] = False
            w, b = fit(train_mask, hyper)
            oof[test] = p.rel_x[test] @ w + b
        _, f1 = _best_threshold(_sigmoid(oof), y_lab)
        if best is None or f1 > best[1] + 1e-9:
            best = (hyper, f1, oof)
    assert best is not None
    hyper, inner_f1, oof = best
    # Platt scaling on the out-of-fold logits of the labelled rows
    a, b0 = fit_logistic(oof[:, None], y_lab, 1e4, balanced=False)
    platt = (float(a[0]), float(b0))
    threshold, _ = _best_threshold(_sigmoid(platt[0] * oof + platt[1]), y_lab)
    w, b = fit(np.ones(len(p.rel_y), dtype=bool), hyper)
    info = {"C": hyper[0], "embedding_weight": hyper[1], "inner_cv_f1": round(inner_f1, 4)}
    return w, b, platt, threshold, info


def _fit_topics(
    p: _Prepared, n_emb: int, grid: Sequence[tuple[float, float]], folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    n = len(p.topic_y)
    splits = _kfold(n, min(folds, n), seed)
    best: tuple[tuple[float, float], float, float] | None = None
    for hyper in grid:
        oof = np.zeros(p.topic_y.shape)
        for test in splits:
            train_mask = np.ones(n, dtype=bool)
            train_mask[test] = False
            w, b = _topic_models(p.topic_x[train_mask], p.topic_y[train_mask], hyper, n_emb)
            oof[test] = _sigmoid(p.topic_x[test] @ w.T + b)
        for t in TOPIC_THRESHOLDS:
            macro = topic_set_f1(p.topic_y, _select_matrix(oof, t))[0]
            if best is None or macro > best[1] + 1e-9:
                best = (hyper, macro, t)
    assert best is not None
    hyper, inner_macro, threshold = best
    w, b = _topic_models(p.topic_x, p.topic_y, hyper, n_emb)
    info = {
        "C": hyper[0],
        "embedding_weight": hyper[1],
        "inner_cv_macro_f1": round(inner_macro, 4),
    }
    return w, b, threshold, info


def fit_prepared(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    folds: int = 5,
    seed: int = 0,
) -> Artefact:
    """:func:`train` on embeddings computed beforehand (the cross-validation uses this)."""
    if len(data.labelled) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} labelled articles, got {len(data.labelled)}")
    with _single_threaded_blas():
        return _fit_prepared(
            data,
            emb_labelled,
            emb_negatives,
            prototypes,
            embedder=embedder,
            embedder_model_id=embedder_model_id,
            rel_grid=rel_grid,
            topic_grid=topic_grid,
            folds=folds,
            seed=seed,
        )


def _fit_prepared(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    rel_grid: Sequence[tuple[float, float]],
    topic_grid: Sequence[tuple[float, float]],
    folds: int,
    seed: int,
) -> Artefact:
    p = _prepare(data, emb_labelled, emb_negatives, prototypes)
    if p.rel_y[: p.n_labelled].sum() < folds or len(p.topic_y) < folds:
        raise ValueError(f"need at least {folds} Covid articles among the labelled ones")
    n_emb = emb_labelled.shape[1]
    rel_w, rel_b, platt, threshold, rel_info = _fit_relevance(p, n_emb, rel_grid, folds, seed)
    topic_w, topic_b, topic_threshold, topic_info = _fit_topics(p, n_emb, topic_grid, folds, seed)
    topic_ids = [t["id"] for t in data.taxonomy]
    counts = p.topic_y.sum(axis=0)
    meta: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": {
            "relevance": [
                f"{embedder_model_id} passage embedding of title + first 2000 body chars "
                f"({n_emb} dims)",
                "covid keyword stats, es+en (log1p title/lead/body hits, hits per 1000 chars)",
            ],
            "topics": [
                f"{embedder_model_id} passage embedding ({n_emb} dims)",
                "cosine to topic prototypes (taxonomy es name + en name: about, E5 query), "
                "z-scored across topics",
                "per-topic es+en keyword counts (log1p)",
            ],
        },
        "model": {
            "relevance": "L2 logistic regression, class-balanced, Platt-recalibrated on "
            "inner out-of-fold logits of the labelled rows; is_covid = covid_score >= threshold",
            "topics": "one-vs-rest L2 logistic regressions, class-balanced; topics with fewer "
            f"than {MIN_TOPIC_POSITIVES} examples use a zero-shot model shared by all topics "
            "(prototype similarity + keyword count); set = best topic + next ones (max "
            f"{MAX_TOPICS}) with score >= topic_threshold",
            "tuning": "(C, embedding weight) from a grid, the Platt parameters and both "
            f"thresholds by {folds}-fold inner CV "
            f"on the training data only (seed {seed})",
            "relevance_tuning": rel_info,
            "topic_tuning": topic_info,
        },
        "training_data": {
            "description": data.description,
            "labelled": len(data.labelled),
            "labelled_covid": int(p.rel_y[: p.n_labelled].sum()),
            "extra_negatives": len(data.negatives),
            "topic_counts": {t: int(c) for t, c in zip(topic_ids, counts, strict=True)},
            "zero_shot_topics": [
                t for t, c in zip(topic_ids, counts, strict=True) if c < MIN_TOPIC_POSITIVES
            ],
        },
    }
    return Artefact(
        embedder=embedder,
        embedder_model_id=embedder_model_id,
        topic_ids=topic_ids,
        prototypes=prototypes,
        rel_w=rel_w,
        rel_b=rel_b,
        platt=platt,
        threshold=threshold,
        topic_w=topic_w,
        topic_b=topic_b,
        topic_threshold=topic_threshold,
        meta=meta,
    )


def embed_training_data(
    data: TrainingData,
    embedder: Any,
    progress: Callable[[str], None] | None = None,
    encode: Encoder | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelled, negatives, prototypes) embeddings with ``embedder`` (through ``encode`` when
    given, e.g. a cache)."""
    enc = encode or _encoder(embedder)

    def docs(rows: Sequence[Mapping[str, Any]], what: str) -> np.ndarray:
        if not rows:
            return np.zeros((0, int(embedder.dims)), dtype=np.float32)
        start = time.perf_counter()
        out = enc([document_text(r.get("title"), r.get("text")) for r in rows], "passage")
        if progress:
            progress(
                f"embedded {len(rows)} {what} with {embedder.model_id} "
                f"({time.perf_counter() - start:.0f} s)"
            )
        return out

    return (
        docs(data.labelled, "labelled articles"),
        docs(data.negatives, "extra negatives"),
        embed_prototypes(embedder, data.taxonomy, enc),
    )


def train(
    data: TrainingData,
    *,
    embedder: str = "e5",
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Artefact:
    """Build an artefact from ``data`` (see :func:`load_training_data`) with the embedder
    registered as ``embedder``; save it with :meth:`Artefact.save`."""
    from covidnews.embed import get_embedder

    emb = get_embedder(embedder)
    lab, neg, proto = embed_training_data(data, emb, progress)
    return fit_prepared(
        data,
        lab,
        neg,
        proto,
        embedder=embedder,
        embedder_model_id=emb.model_id,
        rel_grid=rel_grid,
        topic_grid=topic_grid,
        folds=folds,
        seed=seed,
    )


# ---------------------------------------------------------------------------- cross-validation


def _subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    return TrainingData(
        [data.labelled[i] for i in rows], data.negatives, data.taxonomy, data.description
    )


def outer_folds(y: np.ndarray, folds: int, repeat: int, seed: int = 0) -> list[np.ndarray]:
    """Test folds of repeat number ``repeat`` of the outer CV (stratified by ``y``)."""
    return _kfold(len(y), folds, seed + 1000 * (repeat + 1), np.asarray(y))


def cross_validate(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Repeated stratified k-fold CV of the whole training procedure on the labelled articles.

    Each outer fold trains with :func:`fit_prepared` on the other folds' labelled articles plus
    all extra negatives (never in a test fold) and predicts its own fold. Relevance is scored on
    every test article; topics on the test fold's (gold) Covid articles, with the predicted set
    chosen by the trained rule (best topic + next ones up to 3 above the inner-CV threshold).
    Predictions are pooled over the folds of a repeat; figures are the mean over repeats (±
    standard deviation).
    """
    n = len(data.labelled)
    y = np.array([int(bool(r.get("covid"))) for r in data.labelled])
    topic_ids = [t["id"] for t in data.taxonomy]
    truth = np.zeros((n, len(topic_ids)), dtype=np.int64)
    for i, r in enumerate(data.labelled):
        for t in r.get("topics") or []:
            truth[i, topic_ids.index(t)] = 1
    covid_rows = np.flatnonzero(y == 1)
    support = [int(v) for v in truth[covid_rows].sum(axis=0)]
    per_repeat: list[dict[str, Any]] = []
    for rep in range(repeats):
        score = np.zeros(n)
        pred = np.zeros(n, dtype=bool)
        topics = np.zeros(truth.shape, dtype=np.int64)
        for f, test in enumerate(outer_folds(y, folds, rep, seed)):
            if progress:
                progress(f"repeat {rep + 1}/{repeats}, fold {f + 1}/{folds}")
            train_rows = np.setdiff1d(np.arange(n), test)
            artefact = fit_prepared(
                _subset(data, train_rows),
                emb_labelled[train_rows],
                emb_negatives,
                prototypes,
                embedder=embedder,
                embedder_model_id=embedder_model_id,
                rel_grid=rel_grid,
                topic_grid=topic_grid,
                folds=folds,
                seed=seed,
            )
            clf = CovidClassifier(artefact)
            items = [data.labelled[i] for i in test]
            covid, topic_scores = clf.scores(items, emb_labelled[test])
            score[test] = covid
            pred[test] = covid >= artefact.threshold
            for j, i in enumerate(test):
                topics[i, select_topics(topic_scores[j], artefact.topic_threshold)] = 1
        tp = float((pred & (y == 1)).sum())
        precision = tp / max(float(pred.sum()), 1.0)
        recall = tp / max(float(y.sum()), 1.0)
        macro, micro, per = topic_set_f1(truth[covid_rows], topics[covid_rows])
        frequent = [f for f, n in zip(per, support, strict=True) if n >= 5 and f is not None]
        per_repeat.append(
            {
                "precision": precision,
                "recall": recall,
                "f1": _f1(tp, float(pred.sum()), float(y.sum())),
                "macro": macro,
                "macro5": float(np.mean(frequent)) if frequent else 0.0,
                "micro": micro,
                "per": per,
            }
        )

    def stat(key: str) -> dict[str, float]:
        values = np.array([r[key] for r in per_repeat], dtype=np.float64)
        return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}

    per_topic: dict[str, float | None] = {}
    for k, t in enumerate(topic_ids):
        values = [r["per"][k] for r in per_repeat if r["per"][k] is not None]
        per_topic[t] = round(float(np.mean(values)), 4) if values else None
    return {
        "protocol": (
            f"{repeats}x repeated stratified {folds}-fold CV on the {n} labelled 2020-21 "
            f"articles; the {len(data.negatives)} extra 2018 negatives only in training folds; "
            "all tuning (C, embedding weight, Platt scaling, thresholds) by inner CV inside each "
            "training fold; topics scored on "
            f"the {len(covid_rows)} gold Covid articles, macro-F1 over topics occurring in the "
            "gold labels or the predictions"
        ),
        "relevance": {"precision": stat("precision"), "recall": stat("recall"), "f1": stat("f1")},
        "topics": {
            "macro_f1": stat("macro"),
            "micro_f1": stat("micro"),
            "macro_f1_topics_with_5_or_more": stat("macro5"),
            "per_topic_f1": per_topic,
            "support": dict(zip(topic_ids, support, strict=True)),
        },
    }
