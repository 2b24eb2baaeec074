"""Translation backends (nlp_worker/backends/translate/) and the line contract
(nlp_worker/translate_cli.py).

- Apertium runs for real on TICO-19 sentences (skipped where ``apertium-eng-spa`` is missing).
- The neural backends run end to end on a tiny MarianMT model built in the session (its own
  SentencePiece tokenizers, random weights): outputs are gibberish, but count, order, empty
  texts and the chunking of long texts are real. Nothing touches the network.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from covidnews.interfaces import BackendUnavailable, Translator
from nlp_worker.backends.translate import (
    ApertiumTranslator,
    CT2Translator,
    HFTranslator,
    NoTranslator,
    _deformat,
    _reformat,
    clean_text,
    get_translator,
    load_tico_glossary,
    localize_numbers,
)
from nlp_worker.translate_cli import one_line, translate_lines

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("COVIDNEWS_SHARED_DATA", ROOT.parent / "shared" / "data"))
TICO = SHARED / "tico19"

#: every character str.splitlines() breaks a line at
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

ODD = [
    "Vacuna 😷💉 contra la COVID-19 👩‍⚕️ 🇪🇸",  # emoji, ZWJ sequence, flag
    "vacunacio\u0301n e\u0301\u0301 niño",  # decomposed accents, stacked combining marks
    "antes\x00después\x00",  # NUL
    "\u200fשלום\u200f y \u202bمرحبا\u202c hola",  # RTL marks and embedding
    "\ufeffBOM, zero\u200bwidth, soft\u00adhyphen",
    "lone \ud800 surrogate",
    "\u2028\u2029\x85",  # only line breaks: blank
    "tab\there\x1bescape",
]


def has_apertium() -> bool:
    return shutil.which("apertium") is not None


needs_apertium = pytest.mark.skipif(
    not has_apertium(), reason="apertium not installed (apt-get install apertium-eng-spa)"
)


def tico_rows(n: int | None = None, start: int = 0) -> list[dict[str, str]]:
    path = TICO / "tico19_dev.tsv"
    if not path.exists():
        pytest.skip(f"TICO-19 data not found at {path}")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[start:] if n is None else rows[start : start + n]


@pytest.fixture(scope="module", params=[True, False], ids=["warm-pipeline", "process-per-batch"])
def apertium(request: pytest.FixtureRequest) -> Iterator[ApertiumTranslator]:
    """The default translator (a warm null-flush pipeline per direction) and the plain one
    (one ``apertium`` process per batch)."""
    if not has_apertium():
        pytest.skip("apertium not installed (apt-get install apertium-eng-spa)")
    translator = ApertiumTranslator(persistent=request.param)
    yield translator
    translator.close()


def count_engine_calls(
    translator: ApertiumTranslator, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Record each batch sent to Apertium (pipeline write or process start)."""
    calls: list[str] = []
    run, pipe = translator._run, translator._pipe_segments

    def spy_run(document: str, mode: str) -> str:
        calls.append("process")
        return run(document, mode)

    def spy_pipe(segments: list[str], mode: str) -> list[str] | None:
        calls.append("pipeline")
        return pipe(segments, mode)

    monkeypatch.setattr(translator, "_run", spy_run)
    monkeypatch.setattr(translator, "_pipe_segments", spy_pipe)
    return calls


def long_spanish_text(words: int) -> str:
    """Real TICO-19 sentences, in paragraphs of five, until ``words`` words."""
    sentences = [r["es_419"] for r in tico_rows()]
    out: list[str] = []
    count = 0
    for i, s in enumerate(itertools.cycle(sentences)):
        out.append(s + ("\n\n" if i % 5 == 4 else " "))
        count += len(s.split())
        if count >= words:
            break
    return "".join(out).strip()


# ------------------------------------------------------------------------------------------
# Apertium, for real
# ------------------------------------------------------------------------------------------


@needs_apertium
def test_apertium_pairs_and_model_id(apertium: ApertiumTranslator) -> None:
    assert {("es", "en"), ("en", "es")} <= apertium.pairs()
    assert re.fullmatch(r"apertium:eng-spa-\d+(\.\d+)*", apertium.model_id), apertium.model_id
    assert isinstance(apertium, Translator)


@needs_apertium
@pytest.mark.parametrize(
    ("source", "target", "column"), [("es", "en", "es_419"), ("en", "es", "en")]
)
def test_apertium_translates_tico_in_one_call(
    apertium: ApertiumTranslator,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    target: str,
    column: str,
) -> None:
    texts = [r[column] for r in tico_rows(40, start=600)]
    calls = count_engine_calls(apertium, monkeypatch)
    out = apertium.translate(texts, source, target)
    assert calls in (["pipeline"], ["process"])  # one engine call for the whole batch
    assert len(out) == len(texts)
    assert all(isinstance(t, str) and t.strip() for t in out)
    assert sum(o != t for o, t in zip(out, texts, strict=True)) >= 38
    # aligned: the batch gives what each text gives alone (Apertium's tagger can carry a little
    # context from one sentence to the next, so compare a few well-formed ones)
    for i in (0, 17, 39):
        assert apertium.translate([texts[i]], source, target) == [out[i]]


@needs_apertium
def test_apertium_known_translations(apertium: ApertiumTranslator) -> None:
    es_en = apertium.translate(["La casa es roja.", "El perro come."], "es", "en")
    assert es_en == ["The house is red.", "The dog eats."]
    assert apertium.translate(["The house is red."], "en", "es") == ["La casa es roja."]
    assert "*" not in apertium.translate(["El xyzzyqux fue aprobado."], "es", "en")[0]


@needs_apertium
def test_apertium_empty_texts_keep_count(apertium: ApertiumTranslator) -> None:
    texts = ["", "Hola mundo.", "   ", "\n\n\n", "", "Adiós.", "\t", ""]
    out = apertium.translate(texts, "es", "en")
    assert len(out) == len(texts)
    assert [bool(o) for o in out] == [False, True, False, False, False, True, False, False]
    assert out[1] == "Hello World." and out[5] == "Goodbye."  # (sic: Apertium)
    assert apertium.translate([], "es", "en") == []
    assert apertium.translate(["", ""], "es", "en") == ["", ""]


@needs_apertium
def test_apertium_long_text(apertium: ApertiumTranslator) -> None:
    text = long_spanish_text(5000)
    assert len(text.split()) >= 5000
    out = apertium.translate(["Primero.", text, "Último."], "es", "en")
    after = out[1]
    assert out[0] == "First." and out[2] == "Last."
    assert 0.7 < len(after.split()) / len(text.split()) < 1.5
    assert after.count("\n\n") == text.count("\n\n")  # paragraphs kept


@needs_apertium
def test_apertium_odd_unicode(apertium: ApertiumTranslator) -> None:
    texts = [*ODD, "Hola."]
    out = apertium.translate(texts, "es", "en")
    assert len(out) == len(texts)
    assert all(isinstance(o, str) for o in out)
    assert "😷💉" in out[0] and "🇪🇸" in out[0] and "👩‍⚕️" in out[0]
    assert "vaccination" in out[1].lower()  # the decomposed accent was composed first
    assert all("\x00" not in o for o in out)
    assert "שלום" in out[3]
    assert out[6] == ""  # nothing but line breaks
    assert out[-1] == "Hello."
    for o in out:
        o.encode("utf-8")  # no lone surrogates left


@needs_apertium
def test_apertium_separator_inside_texts(apertium: ApertiumTranslator) -> None:
    """Texts containing blank lines (the separator) keep their paragraphs and never bleed into
    their neighbours."""
    texts = [
        "Primer párrafo.\n\nSegundo párrafo.\n \n\t\nTercer párrafo.",
        "La casa es roja.",
        "\n\nEmpieza con líneas en blanco\ny sigue en otra línea.\n\n",
        "El perro come.",
    ]
    out = apertium.translate(texts, "es", "en")
    assert len(out) == 4
    assert out[0].split("\n\n") == ["First paragraph.", "Second paragraph.", "Third paragraph."]
    assert out[1] == "The house is red."
    assert out[2].count("\n") == 1 and not out[2].startswith("\n")
    assert out[3] == "The dog eats."


@needs_apertium
def test_apertium_falls_back_when_separators_are_lost(
    apertium: ApertiumTranslator, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["La casa es roja.", "", "El perro come.\n\nEl gato duerme.", "Hola."]
    expected = apertium.translate(texts, "es", "en")
    run = apertium._run
    calls: list[str] = []

    def lossy(document: str, mode: str) -> str:
        calls.append(document)
        out = run(document, mode)
        # a misbehaving engine: merges the first two segments of any multi-segment call
        return out.replace("\n\n", " ", 1) if document.count("\n\n") >= 2 else out

    monkeypatch.setattr(apertium, "_pipe_segments", lambda segments, mode: None)  # pipe lost
    monkeypatch.setattr(apertium, "_run", lossy)
    out = apertium.translate(texts, "es", "en")
    assert out[0] == expected[0] and out[1] == "" and out[3] == expected[3]
    assert out[2].split("\n\n") == expected[2].split("\n\n")
    assert len(calls) > 1  # the fallback re-translated text by text


@needs_apertium
def test_apertium_pipeline_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead or stuck pipeline costs a restart (or the one-process path), never a wrong or
    shifted translation."""
    translator = ApertiumTranslator()
    try:
        first = translator.translate(["La casa es roja.", "Hola."], "es", "en")
        pipe = translator._pipes["spa-eng"]
        assert pipe.usable()
        pipe.close()  # e.g. killed
        assert translator.translate(["La casa es roja.", "Hola."], "es", "en") == first
        assert translator._pipes["spa-eng"] is not pipe  # a new one was started
        stuck = translator._pipes["spa-eng"]
        monkeypatch.setattr(stuck, "translate", lambda segments, timeout: None)
        assert translator.translate(["La casa es roja.", "Hola."], "es", "en") == first
        assert translator._pipe_failures["spa-eng"] == 1
        assert "spa-eng" not in translator._pipes or translator._pipes["spa-eng"] is not stuck
    finally:
        translator.close()
    assert translator._pipes == {}


def test_apertium_stream_format_roundtrip() -> None:
    text = "a [x] ^y$ @z / \\ <b> {c} ~d  e\tf #g *h."
    stream = _deformat(text)
    assert stream.endswith(".[]") and "\\[x\\]" in stream and "[\t]" in stream
    assert _reformat(stream) == text
    assert _reformat("The house.[][\n]It is red..[]") == "The house\nIt is red."


@needs_apertium
def test_apertium_errors(apertium: ApertiumTranslator) -> None:
    with pytest.raises(ValueError, match="cannot translate"):
        apertium.translate(["hola"], "es", "fr")
    with pytest.raises(BackendUnavailable, match="apt-get install apertium-eng-spa"):
        ApertiumTranslator(binary="no-such-apertium-binary")


@needs_apertium
def test_apertium_glossary(apertium: ApertiumTranslator) -> None:
    files = sorted(TICO.glob("terminology_*.csv"))
    if not files:
        pytest.skip("TICO-19 terminology lists not found")
    glossary = load_tico_glossary(files)
    assert glossary.terms[("en", "es")]["face mask"] == "mascarilla"
    assert "enfermedad" not in glossary.terms[("es", "en")]  # ambiguous when reversed
    with_terms = ApertiumTranslator(glossary=glossary)
    assert re.fullmatch(r"apertium:eng-spa-[\d.]+\+tico19-[0-9a-f]{8}", with_terms.model_id)
    text = "El brote actual de COVID-19 comenzó en Wuhan."
    assert "shoot" in apertium.translate([text], "es", "en")[0]
    out = with_terms.translate([text, "Un brote."], "es", "en")
    assert "outbreak" in out[0] and "shoot" not in out[0]
    assert out[1] == "An outbreak."  # the article follows the new term


def test_localize_numbers() -> None:
    assert localize_numbers("80,000 cases, 3.5% and 1,234.5 kg", "es") == (
        "80\u00a0000 cases, 3,5% and 1234,5 kg"
    )
    assert localize_numbers("version 1.2.3, 10.0.0.1 and https://x.org/a/1.5/b", "es") == (
        "version 1.2.3, 10.0.0.1 and https://x.org/a/1.5/b"
    )
    assert localize_numbers("80 000 y 1.500 casos, 3,5 % y 0,25", "en") == (
        "80,000 y 1,500 casos, 3.5 % y 0.25"
    )
    assert localize_numbers("3,500 es ambiguo; COVID-19, N95", "en") == (
        "3,500 es ambiguo; COVID-19, N95"
    )


def test_clean_text() -> None:
    assert clean_text("a\x00b\r\nc\u2028d\u2029e") == "a b\nc\nd\n\ne"
    assert clean_text("vacunacio\u0301n") == "vacunación"
    assert clean_text("x\ud800y") == "x?y"


# ------------------------------------------------------------------------------------------
# Tiny Hugging Face model built here (no network)
# ------------------------------------------------------------------------------------------

TRAIN_ES = [
    "El coronavirus se propaga rápidamente entre las personas.",
    "La vacuna contra la COVID-19 es segura y eficaz.",
    "Lávese las manos con agua y jabón durante veinte segundos.",
    "Los hospitales están llenos de pacientes con neumonía.",
    "Use mascarilla en lugares cerrados y mantenga la distancia.",
    "La fiebre, la tos y el cansancio son síntomas comunes.",
    "El gobierno anunció nuevas medidas de confinamiento.",
    "Los casos confirmados aumentaron durante la semana.",
]
TRAIN_EN = [
    "The coronavirus spreads quickly between people.",
    "The COVID-19 vaccine is safe and effective.",
    "Wash your hands with soap and water for twenty seconds.",
    "Hospitals are full of patients with pneumonia.",
    "Wear a mask indoors and keep your distance.",
    "Fever, cough and tiredness are common symptoms.",
    "The government announced new lockdown measures.",
    "Confirmed cases rose during the week.",
]


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory, offline_env: None) -> Iterator[Path]:
    """A MarianMT model (d_model 16, one layer each side, ~100-token vocabulary) with
    SentencePiece tokenizers trained on the sentences above, saved with ``save_pretrained``."""
    spm = pytest.importorskip("sentencepiece")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("tiny-marian")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(out.parent / "hf-home"))
        for name, sentences in (("source", TRAIN_ES), ("target", TRAIN_EN)):
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences * 4),
                model_prefix=str(out / name),
                vocab_size=60,
                hard_vocab_limit=False,
                character_coverage=1.0,
                model_type="unigram",
                unk_id=0,
                eos_id=1,
                bos_id=-1,
                pad_id=-1,
                minloglevel=2,
            )
            (out / f"{name}.model").rename(out / f"{name}.spm")
        vocab = {"</s>": 0, "<unk>": 1}
        for name in ("source", "target"):
            sp = spm.SentencePieceProcessor(model_file=str(out / f"{name}.spm"))
            for i in range(sp.get_piece_size()):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
        vocab["<pad>"] = len(vocab)
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        tokenizer = transformers.MarianTokenizer(
            source_spm=str(out / "source.spm"),
            target_spm=str(out / "target.spm"),
            vocab=str(out / "vocab.json"),
            source_lang="es",
            target_lang="en",
            model_max_length=64,
        )
        config = transformers.MarianConfig(
            vocab_size=len(vocab),
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=vocab["<pad>"],
            eos_token_id=0,
            decoder_start_token_id=vocab["<pad>"],
            forced_eos_token_id=0,
        )
        torch.manual_seed(0)
        model = transformers.MarianMTModel(config)
        with torch.no_grad():  # never stop at once: every non-empty input gives some output
            model.final_logits_bias[0, 0] = -1e4
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        yield out


@pytest.fixture(scope="session")
def offline_env() -> Iterator[None]:
    """No hub access, even if huggingface_hub was imported (and read the env) earlier."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        try:
            import huggingface_hub.constants as hub_constants
        except ImportError:
            pass
        else:
            mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="session")
def hf(tiny_marian: Path, offline_env: None) -> HFTranslator:
    return HFTranslator(
        {("es", "en"): tiny_marian, ("en", "es"): tiny_marian}, batch_size=8, num_threads=1
    )


@pytest.fixture(scope="session")
def ct2(
    tiny_marian: Path, offline_env: None, tmp_path_factory: pytest.TempPathFactory
) -> CT2Translator:
    pytest.importorskip("ctranslate2")
    return CT2Translator(
        {("es", "en"): tiny_marian},
        cache_dir=tmp_path_factory.mktemp("ct2-cache"),
        batch_size=8,
        inter_threads=1,
        intra_threads=1,
    )


@pytest.fixture(params=["transformers", "ctranslate2"])
def neural(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("hf" if request.param == "transformers" else "ct2")


def test_neural_batch_count_order_and_empties(neural: Any) -> None:
    texts = ["La vacuna es segura.", "", "Los hospitales están llenos.", "   ", "Hola"]
    out = neural.translate(texts, "es", "en")
    assert len(out) == len(texts)
    assert all(isinstance(o, str) for o in out)
    assert out[1] == "" and out[3] == ""
    assert out[0] and out[2] and out[4]
    # order: the reversed batch gives the reversed outputs
    assert neural.translate(texts[::-1], "es", "en") == out[::-1]
    assert neural.translate([], "es", "en") == []
    assert neural.translate(["", " \n "], "es", "en") == ["", ""]


def test_neural_long_text_is_chunked_not_cut(neural: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sentences = [f"El coronavirus número {i} se propaga entre las personas." for i in range(40)]
    no_punctuation = " ".join(f"palabra{i}" for i in range(300))  # one far too long "sentence"
    letters = "aeiouslmnrtc"
    long_word = "".join(letters[i % 12] + letters[(i // 12) % 12] for i in range(1500))
    text = "\n\n".join([" ".join(sentences), no_punctuation, long_word])
    seen: list[str] = []
    generate = neural._generate

    def spy(loaded: Any, chunks: list[str], source: str, target: str) -> list[str]:
        seen.extend(chunks)
        return list(generate(loaded, chunks, source, target))

    monkeypatch.setattr(neural, "_generate", spy)
    out = neural.translate(["Corto.", text], "es", "en")
    assert len(out) == 2 and out[0] and out[1]
    assert out[1].count("\n\n") == 2  # its three paragraphs come back as three
    loaded = neural._load("es", "en")
    budget = neural._budget(loaded)
    assert max(neural._count(loaded, seen)) <= budget  # nothing needed truncating
    assert len(seen) > 40  # the long parts were split
    # everything was sent: every sentence, every word, every letter of the long word
    assert all(s in seen for s in sentences)
    sent_words = {w for chunk in seen for w in chunk.split()}
    assert all(f"palabra{i}" in sent_words for i in range(300))
    slices = [c for c in seen if " " not in c and set(c) <= set(letters)]
    assert sum(map(len, slices)) == len(long_word) and len(slices) > 1


def test_neural_odd_unicode(neural: Any) -> None:
    out = neural.translate(ODD, "es", "en")
    assert len(out) == len(ODD) and all(isinstance(o, str) for o in out)
    assert out[6] == ""


def test_neural_model_ids_and_errors(
    hf: HFTranslator, ct2: CT2Translator, tiny_marian: Path
) -> None:
    assert hf.model_id == f"transformers:en-es={tiny_marian.name},es-en={tiny_marian.name}"
    assert ct2.model_id == f"ctranslate2-int8:es-en={tiny_marian.name}"
    assert ct2.pairs() == {("es", "en")}
    with pytest.raises(ValueError, match="cannot translate"):
        ct2.translate(["hola"], "en", "es")
    assert isinstance(hf, Translator) and isinstance(ct2, Translator)
    # the conversion is kept and reused
    converted = ct2.converted_path(str(tiny_marian))
    assert (converted / "model.bin").is_file() and (converted / "source.spm").is_file()
    again = CT2Translator({("es", "en"): converted})  # a CTranslate2 folder directly
    assert again.translate(["Hola"], "es", "en") == ct2.translate(["Hola"], "es", "en")


def test_hf_missing_model_is_backend_unavailable(offline_env: None, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    missing = HFTranslator({("es", "en"): tmp_path / "nothing-here"})
    with pytest.raises(BackendUnavailable):
        missing.translate(["hola"], "es", "en")
    offline = HFTranslator({("es", "en"): "no-such-org/no-such-model"})
    with pytest.raises(BackendUnavailable):
        offline.translate(["hola"], "es", "en")


# ------------------------------------------------------------------------------------------
# "none" and the factory
# ------------------------------------------------------------------------------------------


def test_no_translator_and_factory(tmp_path: Path) -> None:
    none = get_translator("none")
    assert isinstance(none, NoTranslator) and isinstance(none, Translator)
    assert none.pairs() == set() and none.model_id == "none"
    with pytest.raises(ValueError, match="switched off"):
        none.translate(["hola"], "es", "en")
    with pytest.raises(ValueError, match="unknown translator"):
        get_translator("babelfish")
    hf = get_translator("transformers", models=f"es-en={tmp_path},en-es={tmp_path}")
    assert isinstance(hf, HFTranslator) and hf.pairs() == {("es", "en"), ("en", "es")}
    ct2 = get_translator("ctranslate2", models={("es", "en"): str(tmp_path)})
    assert isinstance(ct2, CT2Translator)
    with pytest.raises(ValueError, match="bad model mapping"):
        get_translator("transformers", models="es-en")
    if has_apertium():
        assert isinstance(get_translator("apertium"), ApertiumTranslator)


# ------------------------------------------------------------------------------------------
# translate_lines: the CLI contract
# ------------------------------------------------------------------------------------------


class Upper:
    """Uppercases; optionally adds line breaks of every kind to each translation."""

    model_id = "fake:upper"

    def __init__(self, breaks: bool = False) -> None:
        self.breaks = breaks
        self.calls: list[int] = []

    def pairs(self) -> set[tuple[str, str]]:
        return {("es", "en")}

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.calls.append(len(texts))
        assert all(t.strip() for t in texts)  # blank lines are never sent
        out = [t.upper() for t in texts]
        return [f"{o}\n{LINE_BREAKS}x\r\n" if self.breaks else o for o in out]


class Shifty(Upper):
    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        return super().translate(texts, source, target)[1:]


def contract_lines() -> list[str]:
    return [
        "hola\n",
        "\n",
        "",
        "   \t",
        "línea\r\n",
        "palabra " * 20_000 + "\n",  # a very long line
        *ODD,
        "a\u2028b\u2029c\x85d",
        "último",
    ]


@pytest.mark.parametrize("breaks", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_translate_lines_contract(breaks: bool, batch_size: int) -> None:
    lines = contract_lines()
    fake = Upper(breaks)
    out = list(translate_lines(lines, fake, "es", "en", batch_size=batch_size))
    assert len(out) == len(lines)
    for line, o in zip(lines, out, strict=True):
        assert not any(c in o for c in LINE_BREAKS), repr(o)
        assert (o == "") == (not line.strip() or not clean_text(line).strip())
    assert out[0].startswith("HOLA") and out[4].startswith("LÍNEA") and out[-1].startswith("ÚLTIMO")
    assert out[1] == out[2] == out[3] == ""
    assert out[-2].startswith("A B C D")
    assert out[5].startswith("PALABRA " * 19_999 + "PALABRA")
    # what a reader of the written output gets back: the same number of lines
    written = "".join(o + "\n" for o in out)
    assert len(written.splitlines()) == len(lines)
    assert max(fake.calls) <= batch_size


def test_translate_lines_streams_in_batches() -> None:
    fake = Upper()
    source = (f"línea {i}" for i in itertools.count())  # endless input
    out = list(itertools.islice(translate_lines(source, fake, "es", "en", batch_size=10), 25))
    assert out[0] == "LÍNEA 0" and out[24] == "LÍNEA 24"
    assert fake.calls == [10, 10, 10]  # read only as far as needed


def test_translate_lines_errors() -> None:
    with pytest.raises(RuntimeError, match="returned 1 translations for 2 lines"):
        list(translate_lines(["a", "b"], Shifty(), "es", "en"))
    with pytest.raises(ValueError, match="batch_size"):
        list(translate_lines(["a"], Upper(), "es", "en", batch_size=0))
    assert one_line(" a\r\nb\u2028 c ") == "a b c"


@needs_apertium
def test_translate_lines_with_apertium(apertium: ApertiumTranslator) -> None:
    rows = tico_rows(30)
    lines: list[str] = []
    for i, row in enumerate(rows):
        lines.append(row["es_419"] + "\n")
        if i % 7 == 0:
            lines.append("\n")
    lines += [long_spanish_text(3000).replace("\n\n", " ") + "\n", *ODD, "Fin."]
    out = list(translate_lines(lines, apertium, "es", "en", batch_size=16))
    assert len(out) == len(lines)
    for line, o in zip(lines, out, strict=True):
        assert (o == "") == (not clean_text(line).strip())
        assert not any(c in o for c in LINE_BREAKS)
    assert out[-1] == "End."
    assert out[0] == apertium.translate([rows[0]["es_419"]], "es", "en")[0]
