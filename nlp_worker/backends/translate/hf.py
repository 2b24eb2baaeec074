"""Hugging Face seq2seq translators (MarianMT, NLLB) with PyTorch on the CPU."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covidnews.interfaces import BackendUnavailable
from nlp_worker.backends.translate.chunking import (
    _parse_models,
    _plan_chunks,
    _SentenceSplitter,
    _short_name,
)
from nlp_worker.backends.translate.text import Pair, _check_pair, _import

# --------------------------------------------------------------------------------------------
# Hugging Face transformers
# --------------------------------------------------------------------------------------------


class _Seq2SeqBase:
    """What the two neural backends share: the model mapping, chunking, batching."""

    backend = "neural"

    def __init__(
        self,
        models: Mapping[Pair, str | os.PathLike[str]] | str,
        *,
        batch_size: int = 16,
        num_beams: int = 1,
        max_chunk_tokens: int = 200,
        lang_codes: Mapping[str, str] | None = None,
    ) -> None:
        self._models = _parse_models(models)
        if not self._models:
            raise ValueError("no models given: map (source, target) to a model id or path")
        if batch_size < 1 or num_beams < 1 or max_chunk_tokens < 8:
            raise ValueError("batch_size and num_beams must be ≥ 1, max_chunk_tokens ≥ 8")
        self._batch_size = batch_size
        self._num_beams = num_beams
        self._max_chunk_tokens = max_chunk_tokens
        self._lang_codes = dict(lang_codes) if lang_codes else None
        self._splitters: dict[str, _SentenceSplitter] = {}
        self._lock = threading.Lock()
        names = ",".join(f"{s}-{t}={_short_name(m)}" for (s, t), m in sorted(self._models.items()))
        self.model_id = f"{self.backend}:{names}"

    def pairs(self) -> set[Pair]:
        return set(self._models)

    def _splitter(self, language: str) -> _SentenceSplitter:
        if language not in self._splitters:
            self._splitters[language] = _SentenceSplitter(language)
        return self._splitters[language]

    def _is_local(self, model: str) -> bool:
        """A local folder (loaded with ``local_files_only``), else a hub id; a path that does
        not exist is an error here rather than a slow, failing hub lookup."""
        if Path(model).exists():
            return True
        if os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") > 1:
            raise BackendUnavailable(f"the model folder {model} does not exist")
        return False

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        _check_pair(self, source, target)
        if not any(t.strip() for t in texts):
            return ["" for _ in texts]
        with self._lock:  # one model call at a time per translator (threads share the model)
            loaded = self._load(source, target)
            budget = self._budget(loaded)
            plan = _plan_chunks(
                texts, self._splitter(source), lambda xs: self._count(loaded, xs), budget
            )
            order = sorted(range(len(plan.chunks)), key=lambda i: -len(plan.chunks[i]))
            translated = [""] * len(plan.chunks)
            for start in range(0, len(order), self._batch_size):
                ids = order[start : start + self._batch_size]
                outs = self._generate(loaded, [plan.chunks[i] for i in ids], source, target)
                for i, out in zip(ids, outs, strict=True):
                    translated[i] = " ".join(out.split())
            return plan.assemble(translated)

    # implemented by the backends
    def _load(self, source: str, target: str) -> Any:
        raise NotImplementedError

    def _budget(self, loaded: Any) -> int:
        raise NotImplementedError

    def _count(self, loaded: Any, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def _generate(self, loaded: Any, chunks: list[str], source: str, target: str) -> list[str]:
        raise NotImplementedError

    def _src_code(self, language: str) -> str | None:
        return self._lang_codes.get(language) if self._lang_codes else None


def _model_max_tokens(tokenizer: Any, config: Any) -> int:
    limits = [512]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    pos_max = getattr(config, "max_position_embeddings", None)
    if isinstance(pos_max, int) and pos_max > 0:
        limits.append(pos_max)
    return min(limits)


def _load_tokenizer(model: str, local: bool, tokenizer_path: str | None = None) -> Any:
    transformers = _import("transformers", "transformers sentencepiece")
    where = tokenizer_path or model
    try:
        return transformers.AutoTokenizer.from_pretrained(
            where, local_files_only=local or Path(where).exists()
        )
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"cannot load the tokenizer of {where}: {exc}") from exc


def _set_tokenizer_lang(tokenizer: Any, code: str | None) -> None:
    if code is not None and hasattr(tokenizer, "src_lang"):
        tokenizer.src_lang = code


def _count_tokens(tokenizer: Any, texts: list[str]) -> list[int]:
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(x) for x in ids]


@dataclass
class _HFModel:
    tokenizer: Any
    model: Any
    max_tokens: int


class HFTranslator(_Seq2SeqBase):
    """Hugging Face seq2seq translation (MarianMT, NLLB, …) with PyTorch on the CPU.

    ``models`` maps (source, target) to a hub id or a local folder (``save_pretrained`` output;
    loaded with ``local_files_only``). Each model is loaded once, on first use; one multilingual
    model listed for several pairs is loaded once. For NLLB-style models give ``lang_codes``
    (e.g. :data:`NLLB_CODES`): the source code is set on the tokenizer and the target code is
    forced as the first generated token.
    """

    backend = "transformers"

    def __init__(
        self,
        models: Mapping[Pair, str | os.PathLike[str]] | str,
        *,
        batch_size: int = 16,
        num_beams: int = 1,
        num_threads: int = 1,
        max_chunk_tokens: int = 200,
        lang_codes: Mapping[str, str] | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            models,
            batch_size=batch_size,
            num_beams=num_beams,
            max_chunk_tokens=max_chunk_tokens,
            lang_codes=lang_codes,
        )
        self._num_threads = max(1, num_threads)
        self._device = device
        self._loaded: dict[str, _HFModel] = {}

    def _load(self, source: str, target: str) -> _HFModel:
        model_name = self._models[(source, target)]
        if model_name in self._loaded:
            return self._loaded[model_name]
        torch = _import("torch", "torch")
        transformers = _import("transformers", "transformers sentencepiece")
        torch.set_num_threads(self._num_threads)
        local = self._is_local(model_name)
        tokenizer = _load_tokenizer(model_name, local)
        try:
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
                model_name, local_files_only=local
            )
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot load the model {model_name}: {exc}") from exc
        model.to(self._device)
        model.eval()
        loaded = _HFModel(tokenizer, model, _model_max_tokens(tokenizer, model.config))
        self._loaded[model_name] = loaded
        return loaded

    def _budget(self, loaded: _HFModel) -> int:
        return max(4, min(self._max_chunk_tokens, loaded.max_tokens - 4))

    def _count(self, loaded: _HFModel, texts: list[str]) -> list[int]:
        return _count_tokens(loaded.tokenizer, texts)

    def _generate(self, loaded: _HFModel, chunks: list[str], source: str, target: str) -> list[str]:
        torch = _import("torch", "torch")
        tokenizer = loaded.tokenizer
        _set_tokenizer_lang(tokenizer, self._src_code(source))
        batch = tokenizer(
            chunks,
            return_tensors="pt",
            padding=True,
            truncation=True,  # never reached: chunks are below the budget; a last safety net
            max_length=loaded.max_tokens,
        ).to(self._device)
        longest = int(batch["input_ids"].shape[1])
        kwargs: dict[str, Any] = {
            "num_beams": self._num_beams,
            "do_sample": False,
            "max_length": min(loaded.max_tokens, 2 * longest + 16),
        }
        code = self._lang_codes.get(target) if self._lang_codes else None
        if code is not None:
            kwargs["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(code)
        with torch.inference_mode():
            generated = loaded.model.generate(**batch, **kwargs)
        return [str(s) for s in tokenizer.batch_decode(generated, skip_special_tokens=True)]
