"""The same models converted to CTranslate2 (int8)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covidnews.interfaces import BackendUnavailable
from nlp_worker.backends.translate.chunking import _short_name
from nlp_worker.backends.translate.hf import (
    _count_tokens,
    _load_tokenizer,
    _model_max_tokens,
    _Seq2SeqBase,
    _set_tokenizer_lang,
)
from nlp_worker.backends.translate.text import Pair, _import

# --------------------------------------------------------------------------------------------
# CTranslate2
# --------------------------------------------------------------------------------------------


@dataclass
class _CT2Model:
    tokenizer: Any
    translator: Any
    max_tokens: int


def _is_ct2_dir(path: str) -> bool:
    return (Path(path) / "model.bin").is_file()


class CT2Translator(_Seq2SeqBase):
    """The same seq2seq models run by CTranslate2 (int8 by default) on the CPU.

    ``models`` maps (source, target) to either a CTranslate2 model folder (``model.bin``; its
    tokenizer files copied in, or given in ``tokenizers``) or a Hugging Face model folder/id,
    which is converted once into ``cache_dir`` (default: ``COVIDNEWS_DATA_DIR/models/ct2`` or
    ``./var/models/ct2``) and reused from there. ``inter_threads`` translations run in parallel,
    each with ``intra_threads`` threads.
    """

    backend = "ctranslate2"

    def __init__(
        self,
        models: Mapping[Pair, str | os.PathLike[str]] | str,
        *,
        tokenizers: Mapping[Pair, str | os.PathLike[str]] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        quantization: str = "int8",
        batch_size: int = 16,
        num_beams: int = 1,
        inter_threads: int = 1,
        intra_threads: int = 1,
        max_chunk_tokens: int = 200,
        lang_codes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            models,
            batch_size=batch_size,
            num_beams=num_beams,
            max_chunk_tokens=max_chunk_tokens,
            lang_codes=lang_codes,
        )
        self._tokenizers = {k: os.fspath(v) for k, v in (tokenizers or {}).items()}
        data_dir = os.environ.get("COVIDNEWS_DATA_DIR", "var")
        self._cache_dir = Path(cache_dir) if cache_dir else Path(data_dir) / "models" / "ct2"
        self._quantization = quantization
        self._inter_threads = max(1, inter_threads)
        self._intra_threads = max(1, intra_threads)
        self._loaded: dict[str, _CT2Model] = {}
        self.model_id = self.model_id.replace("ctranslate2:", f"ctranslate2-{quantization}:", 1)

    def converted_path(self, model: str) -> Path:
        """Where the CTranslate2 conversion of a Hugging Face model is (or will be) kept."""
        where = os.path.abspath(model) if self._is_local(model) else model
        key = hashlib.sha256(where.encode()).hexdigest()[:8]
        name = _short_name(model).replace("/", "--")
        return self._cache_dir / f"{name}-{self._quantization}-{key}"

    def _convert(self, model: str) -> str:
        out = self.converted_path(model)
        if _is_ct2_dir(str(out)):
            return str(out)
        ct2 = _import("ctranslate2", "ctranslate2 transformers")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
        try:
            local = self._is_local(model)
            copy = (
                [
                    f.name
                    for f in Path(model).iterdir()
                    if local and f.is_file() and _is_tokenizer_file(f.name)
                ]
                if local
                else []
            )
            converter = ct2.converters.TransformersConverter(
                model, copy_files=copy or None, load_as_float16=False
            )
            converter.convert(str(tmp / "model"), quantization=self._quantization, force=True)
            try:
                os.replace(tmp / "model", out)  # atomic: a concurrent converter loses the race
            except OSError:
                if not _is_ct2_dir(str(out)):
                    raise
        except BackendUnavailable:
            raise
        except Exception as exc:
            raise BackendUnavailable(f"cannot convert {model} to CTranslate2: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return str(out)

    def _load(self, source: str, target: str) -> _CT2Model:
        model_name = self._models[(source, target)]
        if model_name in self._loaded:
            return self._loaded[model_name]
        ct2 = _import("ctranslate2", "ctranslate2 transformers")
        if _is_ct2_dir(model_name):
            ct2_dir, tokenizer_path = model_name, self._tokenizers.get((source, target))
        else:
            ct2_dir, tokenizer_path = self._convert(model_name), None
            if not self._is_local(model_name):
                tokenizer_path = self._tokenizers.get((source, target), model_name)
        tokenizer = _load_tokenizer(ct2_dir, True, tokenizer_path)
        try:
            translator = ct2.Translator(
                ct2_dir,
                device="cpu",
                compute_type=self._quantization,
                inter_threads=self._inter_threads,
                intra_threads=self._intra_threads,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendUnavailable(f"cannot load the CTranslate2 model {ct2_dir}: {exc}") from exc
        config = _read_json(Path(ct2_dir) / "config.json")
        max_tokens = _model_max_tokens(tokenizer, _Namespace(config))
        loaded = _CT2Model(tokenizer, translator, max_tokens)
        self._loaded[model_name] = loaded
        return loaded

    def _budget(self, loaded: _CT2Model) -> int:
        return max(4, min(self._max_chunk_tokens, loaded.max_tokens - 4))

    def _count(self, loaded: _CT2Model, texts: list[str]) -> list[int]:
        return _count_tokens(loaded.tokenizer, texts)

    def _generate(
        self, loaded: _CT2Model, chunks: list[str], source: str, target: str
    ) -> list[str]:
        tokenizer = loaded.tokenizer
        _set_tokenizer_lang(tokenizer, self._src_code(source))
        ids = tokenizer(chunks, truncation=True, max_length=loaded.max_tokens)["input_ids"]
        tokens = [tokenizer.convert_ids_to_tokens(x) for x in ids]
        code = self._lang_codes.get(target) if self._lang_codes else None
        prefix = [[code] for _ in chunks] if code else None
        longest = max(len(t) for t in tokens)
        results = loaded.translator.translate_batch(
            tokens,
            target_prefix=prefix,
            beam_size=self._num_beams,
            max_batch_size=self._batch_size,
            max_input_length=loaded.max_tokens,
            max_decoding_length=min(loaded.max_tokens, 2 * longest + 16),
        )
        out = []
        for result in results:
            hyp = list(result.hypotheses[0])
            if code and hyp and hyp[0] == code:
                hyp = hyp[1:]
            ids_out = tokenizer.convert_tokens_to_ids(hyp)
            out.append(str(tokenizer.decode(ids_out, skip_special_tokens=True)))
        return out


_TOKENIZER_FILES = re.compile(
    r"^(?:tokenizer.*\.json|special_tokens_map\.json|vocab\.json|.*\.spm|sentencepiece.*\.model"
    r"|spiece\.model|source\.spm|target\.spm|merges\.txt|vocab\.txt|.*\.vocab)$"
)


def _is_tokenizer_file(name: str) -> bool:
    return bool(_TOKENIZER_FILES.match(name))


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _Namespace:
    def __init__(self, values: Mapping[str, Any]) -> None:  # a model's config.json
        self.max_position_embeddings = values.get("max_position_embeddings")
