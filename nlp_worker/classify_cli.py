"""The pure functions behind ``covidnews classify`` and ``covidnews train-classifier``.

``classify_stream``: JSON Lines in (``title``, ``text``, optional ``language``), the same objects
out with ``language`` (detected when absent), ``covid_score``, ``is_covid`` and ``topics``. Bad
lines (not UTF-8, not JSON, not an object, no text) go to ``on_bad(line_number, reason)``; the
good ones are still classified, in batches, and come out in input order.

``train_classifier_main``: rebuilds the artefact from the shared data, with cross-validated
figures printed and stored in its sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from covidnews.interfaces import Classifier, Embedder, Kind
    from nlp_worker.classify.training import TrainingData

__all__ = [
    "cached_encode",
    "classify_stream",
    "default_cache_dir",
    "default_shared_data",
    "format_cv",
    "parse_article_line",
    "train_classifier_main",
]

ROOT = Path(__file__).resolve().parents[1]
#: Lines longer than this are rejected without being parsed.
MAX_LINE_CHARS = 10_000_000


class BadLine(ValueError):
    """A line that cannot be classified; the message says why."""


def _language_detector() -> Callable[[str], tuple[str | None, float]] | None:
    try:
        from nlp_worker.backends.langid import detect_language
    except ImportError:
        return None
    return detect_language


def parse_article_line(raw: bytes | str) -> dict[str, Any] | None:
    """One JSONL line → the article object; None for a blank line; :class:`BadLine` otherwise."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(f"not valid UTF-8 at byte {exc.start}") from None
    raw = raw.removeprefix("\ufeff").strip()
    if not raw:
        return None
    if len(raw) > MAX_LINE_CHARS:
        raise BadLine(f"line longer than {MAX_LINE_CHARS} characters")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadLine(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise BadLine("invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise BadLine(f"not a JSON object but {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadLine(
            'missing or empty "text"'
            if text is None or isinstance(text, str)
            else '"text" is not a string'
        )
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise BadLine('"title" is not a string')
    language = obj.get("language")
    if language is not None and not isinstance(language, str):
        raise BadLine('"language" is not a string')
    return obj


def classify_stream(
    lines: Iterable[bytes | str],
    classifier: Classifier,
    on_bad: Callable[[int, str], None],
    batch_size: int = 32,
    detect_language: Callable[[str], tuple[str | None, float]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Classify JSONL ``lines`` (numbered from 1; blank lines skipped) in batches.

    Each good object comes back with ``language`` (kept when given; otherwise detected with
    ``nlp_worker.backends.langid`` if available, else None), ``covid_score``, ``is_covid`` and
    ``topics``. ``detect_language`` overrides the detector.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    detect = detect_language or _language_detector()
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        results = classifier.predict(
            [
                {"title": o.get("title") or "", "text": o["text"], "language": o.get("language")}
                for o in batch
            ]
        )
        for obj, res in zip(batch, results, strict=True):
            obj["covid_score"] = res["covid_score"]
            obj["is_covid"] = res["is_covid"]
            obj["topics"] = res["topics"]
            yield obj
        batch.clear()

    for number, raw in enumerate(lines, start=1):
        try:
            obj = parse_article_line(raw)
        except BadLine as exc:
            on_bad(number, str(exc))
            continue
        if obj is None:
            continue
        if not obj.get("language"):
            language: str | None = None
            if detect is not None:
                language, _ = detect(f"{obj.get('title') or ''}\n{obj['text']}")
            obj["language"] = language
        batch.append(obj)
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()


# ------------------------------------------------------------------------------------ training


def default_shared_data() -> Path:
    """``COVIDNEWS_SHARED_DATA``, else ``../shared/data`` next to the project."""
    return Path(os.environ.get("COVIDNEWS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def cached_encode(
    embedder: Embedder, texts: Sequence[str], kind: Kind, cache_dir: Path | None
) -> np.ndarray:
    """``embedder.encode(texts, kind=kind)``, kept in ``cache_dir`` (one .npy per model, kind
    and exact list of texts) when a directory is given."""
    if cache_dir is None:
        return np.asarray(embedder.encode(list(texts), kind=kind), dtype=np.float32)
    h = hashlib.sha256(f"{embedder.model_id}\0{kind}\0".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\0")
    path = cache_dir / f"emb-{h.hexdigest()[:24]}.npy"
    if path.is_file():
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    out = np.asarray(embedder.encode(list(texts), kind=kind), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def embed_data(
    data: TrainingData, embedder: Embedder, cache_dir: Path | None, echo: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelled, negatives, prototypes) embeddings of a TrainingData, cached in ``cache_dir``."""
    from nlp_worker.classify import embed_training_data

    def encode(texts: Sequence[str], kind: Kind) -> np.ndarray:
        return cached_encode(embedder, texts, kind, cache_dir)

    return embed_training_data(data, embedder, echo, encode)


def format_cv(cv: Mapping[str, Any]) -> str:  # the JSON report of evaluation.cross_validate
    """The cross-validated figures as a few lines of text."""
    rel, top = cv["relevance"], cv["topics"]

    def ms(d: Mapping[str, float]) -> str:
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    lines = [
        cv["protocol"],
        f"relevance  precision {ms(rel['precision'])}  recall {ms(rel['recall'])}  "
        f"F1 {ms(rel['f1'])}",
        f"topics     macro-F1 {ms(top['macro_f1'])}  micro-F1 {ms(top['micro_f1'])}  "
        f"(macro-F1 over topics with >= 5 articles: "
        f"{ms(top['macro_f1_topics_with_5_or_more'])})",
        "per topic  "
        + "  ".join(
            f"{t} {'-' if f is None else f'{f:.2f}'} (n={top['support'][t]})"
            for t, f in top["per_topic_f1"].items()
        ),
    ]
    return "\n".join(lines)


def default_cache_dir() -> Path | None:
    try:
        from covidnews.settings import get_settings

        return Path(get_settings().models_dir) / "cache" / "classifier-embeddings"
    except Exception:  # settings unusable: train without a cache
        return None


def train_classifier_main(
    out: Path | None = None,
    *,
    shared: Path | None = None,
    embedder: str = "e5",
    repeats: int = 5,
    folds: int = 5,
    cache_dir: Path | bool | None = True,
    echo: Callable[[str], None] | None = None,
) -> int:
    """Retrain from the shared data, print the cross-validated figures, write the artefact
    (``out`` or the bundled path) and its sidecar. Returns the exit status (0, or 2 when the
    data is missing). ``cache_dir``: True = the data dir's models/cache, None/False = none."""
    from covidnews.embed import get_embedder
    from nlp_worker.classify import (
        DEFAULT_ARTEFACT,
        CovidClassifier,
        cross_validate,
        fit_prepared,
        load_training_data,
    )

    say = echo or (lambda s: print(s, flush=True))
    shared = Path(shared) if shared else default_shared_data()
    if not (shared / "fakedes" / "labelled_dev.jsonl").is_file():
        print(f"training data not found in {shared} (set COVIDNEWS_SHARED_DATA)", file=sys.stderr)
        return 2
    cache = default_cache_dir() if cache_dir is True else (cache_dir or None)
    data = load_training_data(shared)
    emb = get_embedder(embedder)
    say(f"training data: {data.description}")
    lab, neg, proto = embed_data(data, emb, cache, say)
    cv: dict[str, Any] | None = None
    if repeats > 0:
        start = time.perf_counter()
        cv = cross_validate(
            data,
            lab,
            neg,
            proto,
            embedder=embedder,
            embedder_model_id=emb.model_id,
            folds=folds,
            repeats=repeats,
        )
        say(format_cv(cv))
        say(f"(cross-validation: {time.perf_counter() - start:.0f} s)")
    artefact = fit_prepared(
        data, lab, neg, proto, embedder=embedder, embedder_model_id=emb.model_id, folds=folds
    )
    if cv is not None:
        artefact.meta["cv"] = cv
    path = artefact.save(out or DEFAULT_ARTEFACT)
    clf = CovidClassifier(artefact, embedder=emb)
    say(
        f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) and {path.with_suffix('.json').name}; "
        f"model_id {clf.model_id}; threshold {artefact.threshold:.2f}, "
        f"topic threshold {artefact.topic_threshold:.2f}"
    )
    return 0
