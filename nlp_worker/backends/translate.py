"""Machine translation backends (es⇄en) implementing :class:`~covidnews.interfaces.Translator`.

- :class:`ApertiumTranslator` (``"apertium"``): the rule-based Apertium engine (Debian package
  ``apertium-eng-spa``), run as one subprocess per batch. Light, fast, no model download.
- :class:`HFTranslator` (``"transformers"``): Hugging Face seq2seq models (MarianMT such as
  Helsinki-NLP/opus-mt-es-en, NLLB) with PyTorch on the CPU.
- :class:`CT2Translator` (``"ctranslate2"``): the same models converted to CTranslate2 (int8).
- :class:`NoTranslator` (``"none"``): translates nothing, so the pipeline can skip the stage.

All of them keep count and order, give ``""`` for an empty or blank text, and never silently cut
a long text: the neural backends split texts into paragraphs, lines, sentences and, when a
sentence is still longer than the model accepts, word groups; they translate the pieces and join
them again. Heavy packages (torch, transformers, ctranslate2, pysbd) are imported when a model is
first needed, never at import time of this module.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from covidnews.interfaces import BackendUnavailable, Translator

__all__ = [
    "ApertiumTranslator",
    "CT2Translator",
    "Glossary",
    "HFTranslator",
    "NoTranslator",
    "clean_text",
    "get_translator",
    "load_tico_glossary",
]

Pair = tuple[str, str]
_PathArg = str | os.PathLike[str]

# --------------------------------------------------------------------------------------------
# Text hygiene shared by every backend
# --------------------------------------------------------------------------------------------

#: C0/C1 control characters other than tab and newline (NUL included), and BOM / noncharacters
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff\ufffe\uffff]")
#: line and paragraph separators other than "\n"
_LINE_BREAKS = re.compile(r"\r\n|[\r\x85\u2028]")
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"[^\S\n]+")


def clean_text(text: str) -> str:
    """The form every backend translates: valid UTF-8, NFC (decomposed accents composed, so
    ``vacunación`` typed with a combining accent is still a known word), no control characters
    (NUL included), newlines as ``\\n`` and U+2029 as a paragraph break."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates → "?"
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text.replace("\u2029", "\n\n"))
    return _CONTROL.sub(" ", text)


def _paragraphs(text: str) -> list[str]:
    """Non-blank paragraphs (split at blank lines), stripped; none contains a blank line."""
    return [p for p in (part.strip() for part in _PARAGRAPH_SPLIT.split(text)) if p]


def _check_pair(translator: Translator, source: str, target: str) -> None:
    if (source, target) not in translator.pairs():
        supported = ", ".join(f"{s}→{t}" for s, t in sorted(translator.pairs())) or "none"
        raise ValueError(
            f"{translator.model_id} cannot translate {source}→{target} (supported: {supported})"
        )


def _import(module: str, install: str) -> Any:
    """Import an optional heavy dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"the Python package {module!r} is needed for this translator: pip install {install}"
        ) from exc


# --------------------------------------------------------------------------------------------
# Terminology glossary and number conventions (used by the Apertium backend)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Glossary:
    """Term pairs per direction: ``{(source, target): {source term: target term}}``.

    Apertium does not let us inject terms, so a glossary is applied as post-editing: for every
    term found in the source text, the translation Apertium gives to the term on its own is
    replaced in the output by the glossary's term (``brote`` → ``shoot`` becomes ``outbreak``).
    """

    terms: Mapping[Pair, Mapping[str, str]]
    name: str = "glossary"

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for pair in sorted(self.terms):
            for src, tgt in sorted(self.terms[pair].items()):
                h.update(f"{pair[0]}\t{pair[1]}\t{src}\t{tgt}\n".encode())
        return h.hexdigest()[:8]


def _lang(code: str) -> str:
    return code.strip().lower().split("-")[0].split("_")[0]


def load_tico_glossary(paths: Iterable[str | os.PathLike[str]]) -> Glossary:
    """Read TICO-19 terminology CSVs (CC0; columns ``sourceLang, targetLang, sourceString,
    targetString``) into a :class:`Glossary` for both directions.

    Entries are used as published, with general rules only: each list gives its own direction
    and, reversed, the other one; for a term with several translations the first listed wins, a
    list for the direction wins over a reversed one, and a reversed entry is used only when that
    translation has a single source term (``illness``, ``disease`` and ``sickness`` are all
    ``enfermedad``, so ``enfermedad`` is not reversed to any of them); terms shorter than three
    characters and entries starting with an article (``an epidemic``: ``una epidemia``) are
    dropped.
    """
    direct: dict[Pair, dict[str, str]] = {}
    reverse: dict[Pair, dict[str, set[str]]] = {}
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                s, t = _lang(row.get("sourceLang") or ""), _lang(row.get("targetLang") or "")
                src = " ".join((row.get("sourceString") or "").split())
                tgt = " ".join((row.get("targetString") or "").split())
                if not (s and t and src and tgt) or len(src) < 3 or len(tgt) < 3:
                    continue
                if _ARTICLE_START.match(src) or _ARTICLE_START.match(tgt):
                    continue
                direct.setdefault((s, t), {}).setdefault(src.lower(), tgt)
                reverse.setdefault((t, s), {}).setdefault(tgt.lower(), set()).add(src)
    terms: dict[Pair, dict[str, str]] = {}
    for pair in set(direct) | set(reverse):
        # a reversed entry only when it is unambiguous (one source term for that translation)
        merged = {k: next(iter(v)) for k, v in reverse.get(pair, {}).items() if len(v) == 1}
        merged.update(direct.get(pair, {}))
        terms[pair] = merged
    return Glossary(terms, name="tico19")


_ARTICLE_START = re.compile(r"(?i)^(?:the|a|an|el|la|los|las|un|una|unos|unas|lo)\s", re.UNICODE)

#: a number's surroundings that make it something other than a quantity (versions, dates, ids)
_NUM_LEFT = r"(?<![\w.,/:\-])"
_NUM_RIGHT = r"(?![\w]|[.,]\d)"
_EN_NUMBER = re.compile(_NUM_LEFT + r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?" + _NUM_RIGHT)
_ES_SPACE_GROUPS = re.compile(_NUM_LEFT + r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+" + _NUM_RIGHT)
_ES_DOT_GROUPS = re.compile(_NUM_LEFT + r"\d{1,3}(?:\.\d{3})+(?:,\d+)?" + _NUM_RIGHT)
_ES_DECIMAL = re.compile(_NUM_LEFT + r"(\d+),(\d{1,2}|\d{4,})" + _NUM_RIGHT)
_URLISH = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\S+@\S+\.\w+")


def _outside_urls(text: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    """``pattern.sub(repl, text)`` except inside URLs and e-mail addresses."""
    out: list[str] = []
    last = 0
    for m in _URLISH.finditer(text):
        out.append(pattern.sub(repl, text[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(pattern.sub(repl, text[last:]))
    return "".join(out)


def _group_es(digits: str) -> str:
    """Spanish grouping (RAE): no separator up to four digits, else a non-breaking space."""
    if len(digits) <= 4:
        return digits
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return "\u00a0".join(groups)


def _en_to_es_number(m: re.Match[str]) -> str:
    integer, decimals = m.group(1), m.group(2)
    if "," not in integer and decimals is None:
        return m.group()
    grouped = _group_es(integer.replace(",", ""))
    return grouped if decimals is None else f"{grouped},{decimals}"


def localize_numbers(text: str, target: str) -> str:
    """Write quantities with the target language's separators: English ``80,000`` and ``3.5``
    become Spanish ``80 000`` and ``3,5`` (RAE); Spanish ``80 000``/``80.000`` and ``3,5``
    become English ``80,000`` and ``3.5``. Ambiguous forms (``3,500`` in Spanish text, which is
    3500 in Mexico and 3.5 in Spain) and anything inside a URL are left alone."""
    if target == "es":
        return _outside_urls(text, _EN_NUMBER, _en_to_es_number)
    if target == "en":

        def groups(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group())
            return f"{int(digits):,}"

        def dots(m: re.Match[str]) -> str:
            integer, _, decimals = m.group().partition(",")
            return integer.replace(".", ",") + (f".{decimals}" if decimals else "")

        text = _outside_urls(text, _ES_SPACE_GROUPS, groups)
        text = _outside_urls(text, _ES_DOT_GROUPS, dots)
        return _outside_urls(text, _ES_DECIMAL, lambda m: f"{m.group(1)}.{m.group(2)}")
    return text


# --------------------------------------------------------------------------------------------
# Apertium
# --------------------------------------------------------------------------------------------

#: ISO 639-1 → the ISO 639-3 codes Apertium names its modes with
_APERTIUM_CODES = {"es": "spa", "en": "eng", "ca": "cat", "pt": "por", "fr": "fra", "gl": "glg"}
_APERTIUM_LANGS = {v: k for k, v in _APERTIUM_CODES.items()}
_SEPARATOR = "\n\n"  # a blank line: Apertium's txt format keeps it as is, and ends a sentence
_NO_BREAK_SPACES = re.compile(r"[\u00a0\u202f\u2007]")
_TIDY_SPACES = re.compile(r"[^\S\n]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=[\w.)]) *[ \u00a0\u202f](?=[.,;:!?](?:\s|$))")


class ApertiumTranslator:
    """Apertium (rule-based MT), English⇄Spanish (Debian package ``apertium-eng-spa``).

    Every text is split into paragraphs (at blank lines); the paragraphs of a whole batch go to
    Apertium in **one** call, and each text is put together again from its paragraphs, so count
    and order are kept and a text containing the separator is no problem.

    - Default (``persistent=True``): one warm Apertium pipeline per direction, started on first
      use and kept running in null-flush mode (``-z``): each paragraph is written followed by
      NUL and comes back followed by NUL, checked by a sentinel at the end of every batch. A
      batch then costs no process start (~0.3 s for this pair), and each paragraph is
      translated on its own. A pipeline that dies, stalls or loses count is stopped and the
      batch goes the plain way; after three failures the plain way is used for good.
    - Plain (``persistent=False``, and the fallback): one ``apertium -u MODE`` process per batch,
      paragraphs separated by blank lines (which Apertium keeps and treats as sentence ends). If
      the output does not split into as many paragraphs, the batch is translated again text by
      text (and paragraph by paragraph), so texts can never be shifted. A batch larger than
      ``max_chars_per_call`` is sent in several calls to bound memory.

    Post-processing (on by default): spaces left by deleted words are tidied, Apertium's ``#``
    marks dropped, quantities take the target language's separators (``localize_numbers``),
    and an optional terminology :class:`Glossary` (or TICO-19 CSV paths) post-edits Covid
    terms. ``close()`` stops the pipelines (they also stop with the object or the process).
    """

    def __init__(
        self,
        *,
        binary: str = "apertium",
        datadir: str | os.PathLike[str] | None = None,
        modes: Mapping[Pair, str] | None = None,
        mark_unknown: bool = False,
        localize_numbers: bool = True,
        glossary: Glossary
        | str
        | os.PathLike[str]
        | Sequence[str | os.PathLike[str]]
        | None = None,
        max_chars_per_call: int = 2_000_000,
        timeout: float | None = None,
        persistent: bool = True,
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise BackendUnavailable(
                f"the {binary!r} command was not found: install Apertium and the English–Spanish "
                "pair (Debian/Ubuntu: apt-get install apertium-eng-spa)"
            )
        self._binary = found
        self._datadir = str(datadir) if datadir is not None else None
        self._mark_unknown = mark_unknown
        self._localize_numbers = localize_numbers
        self._max_chars = max(1, max_chars_per_call)
        self._timeout = timeout
        self._env = _utf8_env()
        self._modes = dict(modes) if modes is not None else self._discover_modes()
        if not self._modes:
            raise BackendUnavailable(
                "Apertium is installed but has no English–Spanish mode "
                "(apt-get install apertium-eng-spa)"
            )
        if isinstance(glossary, str | os.PathLike):
            glossary = [glossary]
        self._glossary = (
            glossary
            if isinstance(glossary, Glossary) or glossary is None
            else load_tico_glossary(glossary)
        )
        # glossary term → Apertium's own translation of it, computed once per direction
        self._term_edits: dict[Pair, list[_TermEdit]] = {}
        self._lock = threading.Lock()
        self._persistent = persistent
        self._pipes: dict[str, _ApertiumPipe] = {}
        self._pipe_failures: dict[str, int] = {}
        self._pipe_lock = threading.Lock()
        self.model_id = self._make_model_id()

    # -- discovery -----------------------------------------------------------------------------

    def _base_command(self) -> list[str]:
        cmd = [self._binary]
        if self._datadir:
            cmd += ["-d", self._datadir]
        return cmd

    def _discover_modes(self) -> dict[Pair, str]:
        try:
            proc = subprocess.run(
                [*self._base_command(), "-l"],
                capture_output=True,
                text=True,
                env=self._env,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendUnavailable(f"cannot run {self._binary} -l: {exc}") from exc
        modes: dict[Pair, str] = {}
        for line in proc.stdout.split():
            parts = line.strip().split("-")
            if len(parts) == 2 and all(p in _APERTIUM_LANGS for p in parts):
                modes[(_APERTIUM_LANGS[parts[0]], _APERTIUM_LANGS[parts[1]])] = line.strip()
        return {p: m for p, m in modes.items() if p in {("es", "en"), ("en", "es")}} or modes

    def _make_model_id(self) -> str:
        packages = sorted({"-".join(sorted(m.split("-"))) for m in self._modes.values()})
        parts = []
        for name in packages:
            version = _dpkg_version(f"apertium-{name}")
            parts.append(f"{name}-{version}" if version else name)
        model_id = "apertium:" + "+".join(parts)
        if self._glossary is not None:
            model_id += f"+{self._glossary.name}-{self._glossary.digest}"
        return model_id

    def pairs(self) -> set[Pair]:
        return set(self._modes)

    # -- translation ---------------------------------------------------------------------------

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        _check_pair(self, source, target)
        mode = self._modes[(source, target)]
        cleaned = [clean_text(t) for t in texts]
        # no-break spaces as plain spaces: Apertium then sees "Estados Unidos" as one unit
        paragraphs = [_paragraphs(_NO_BREAK_SPACES.sub(" ", t)) for t in cleaned]
        translated = self._translate_texts(paragraphs, mode)
        return [
            self._postprocess(src, out, source, target)
            for src, out in zip(cleaned, translated, strict=True)
        ]

    def _translate_texts(self, paragraphs: list[list[str]], mode: str) -> list[str]:
        """Each text's translation (paragraphs joined by blank lines), in as few calls as the
        size limit allows."""
        results: list[str] = [""] * len(paragraphs)
        start = 0
        while start < len(paragraphs):
            end, size = start, 0
            while end < len(paragraphs) and (
                end == start or size + sum(len(p) + 2 for p in paragraphs[end]) <= self._max_chars
            ):
                size += sum(len(p) + 2 for p in paragraphs[end])
                end += 1
            flat = [p for paras in paragraphs[start:end] for p in paras]
            out = self._pipe_segments(flat, mode) if self._persistent else None
            if out is None:
                out = self._run_segments(flat, mode)
            if out is None:  # the separators did not come back as sent: one text at a time
                chunk = [self._translate_one(paras, mode) for paras in paragraphs[start:end]]
            else:
                chunk, pos = [], 0
                for paras in paragraphs[start:end]:
                    chunk.append(_SEPARATOR.join(out[pos : pos + len(paras)]))
                    pos += len(paras)
            results[start:end] = chunk
            start = end
        return results

    def _pipe_segments(self, segments: list[str], mode: str) -> list[str] | None:
        """Translate segments through the warm pipeline of ``mode``; ``None`` when there is none
        (or it failed, in which case it is shut down and the one-call path is used)."""
        if not segments:
            return []
        with self._pipe_lock:
            pipe = self._pipes.get(mode)
            if pipe is None or not pipe.usable():
                if self._pipe_failures.get(mode, 0) >= 3:
                    return None  # this pipeline keeps failing: one process per batch it is
                pipe = self._start_pipe(mode)
                if pipe is None:
                    self._pipe_failures[mode] = 3
                    return None
                self._pipes[mode] = pipe
            size = sum(map(len, segments))
            timeout = self._timeout if self._timeout is not None else 60 + size / 2000
            out = pipe.translate([_deformat(s) for s in segments], timeout)
            if out is None:
                pipe.close()
                del self._pipes[mode]
                self._pipe_failures[mode] = self._pipe_failures.get(mode, 0) + 1
                return None
            return [_reformat(o).strip() for o in out]

    def _start_pipe(self, mode: str) -> _ApertiumPipe | None:
        datadir = Path(self._datadir) if self._datadir else Path(self._binary).parents[1] / "share"
        candidates = [datadir / "modes", datadir / "apertium" / "modes"]
        mode_file = next(
            (d / f"{mode}.mode" for d in candidates if (d / f"{mode}.mode").is_file()), None
        )
        helper = shutil.which("apertium-wblank-mode")
        bash = shutil.which("bash")
        if mode_file is None or helper is None or bash is None:
            return None
        try:
            script = subprocess.run(
                [helper, "-z", str(mode_file)],
                capture_output=True,
                text=True,
                env=self._env,
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        generator_flag = "-g" if self._mark_unknown else "-n"
        return _ApertiumPipe([bash, "-c", script, "apertium", generator_flag, ""], self._env)

    def close(self) -> None:
        """Stop the warm Apertium pipelines (they also stop when the translator is collected)."""
        with self._pipe_lock:
            for pipe in self._pipes.values():
                pipe.close()
            self._pipes.clear()

    def _translate_one(self, paras: list[str], mode: str) -> str:
        out = self._run_segments(paras, mode)
        if out is None:
            out = []
            for p in paras:
                single = self._run_segments([p], mode)
                out.append(single[0] if single else self._run(p, mode).strip())
        return _SEPARATOR.join(out)

    def _run_segments(self, segments: list[str], mode: str) -> list[str] | None:
        """Translate blank-line-free segments in one call; ``None`` if the count differs."""
        if not segments:
            return []
        output = self._run(_SEPARATOR.join(segments) + "\n", mode)
        parts = _PARAGRAPH_SPLIT.split(output.strip("\n"))
        if len(parts) != len(segments):
            return None
        return [p.strip() for p in parts]

    def _run(self, document: str, mode: str) -> str:
        cmd = [*self._base_command(), *([] if self._mark_unknown else ["-u"]), mode]
        timeout = self._timeout if self._timeout is not None else 60 + len(document) / 2000
        try:
            proc = subprocess.run(
                cmd,
                input=document.encode("utf-8"),
                capture_output=True,
                env=self._env,
                timeout=timeout,
                check=False,
            )
        except OSError as exc:
            raise BackendUnavailable(f"cannot run {self._binary}: {exc}") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            if "mode" in err.lower() and ("exist" in err.lower() or "not" in err.lower()):
                raise BackendUnavailable(f"Apertium mode {mode!r} is not installed: {err}")
            raise RuntimeError(f"apertium {mode} failed (exit {proc.returncode}): {err[:500]}")
        return proc.stdout.decode("utf-8", "replace")

    # -- post-processing -----------------------------------------------------------------------

    def _postprocess(self, source_text: str, text: str, source: str, target: str) -> str:
        if not text:
            return ""
        if not self._mark_unknown:
            text = _strip_generation_marks(source_text, text)
        text = _TIDY_SPACES.sub(" ", text)
        text = _SPACE_BEFORE_PUNCT.sub("", text)
        if self._glossary is not None:
            text = self._apply_glossary(source_text, text, source, target)
        if self._localize_numbers:
            text = localize_numbers(text, target)
        return text.strip()

    def _apply_glossary(self, source_text: str, text: str, source: str, target: str) -> str:
        words = set(_WORD.findall(source_text.lower()))
        for first_word, source_pattern, output_pattern, replacement in self._glossary_edits(
            source, target
        ):
            if first_word in words and source_pattern.search(source_text):
                text = output_pattern.sub(partial(_replace_term, replacement=replacement), text)
        return text

    def _glossary_edits(self, source: str, target: str) -> list[_TermEdit]:
        pair = (source, target)
        with self._lock:
            if pair in self._term_edits:
                return self._term_edits[pair]
            terms = dict(self._glossary.terms.get(pair, {})) if self._glossary else {}
            edits: list[_TermEdit] = []
            if terms:
                srcs = list(terms)
                mode = self._modes[pair]
                plain = self._run_segments(srcs, mode)
                if plain is None:
                    plain = [self._run(s, mode).strip() for s in srcs]
                for src, apertium_version in zip(srcs, plain, strict=True):
                    wanted = terms[src]
                    apertium_version = _TIDY_SPACES.sub(" ", apertium_version).strip()
                    if not apertium_version or apertium_version.lower() == wanted.lower():
                        continue  # Apertium already gets it right (or gives nothing to replace)
                    first_word = _WORD.findall(src)[:1]
                    if not first_word:
                        continue
                    edits.append(
                        (
                            first_word[0],
                            _term_pattern(src),
                            _term_pattern(apertium_version, with_article=target == "en"),
                            wanted,
                        )
                    )
                # longest first, so "acute respiratory disease" wins over "disease"
                edits.sort(key=lambda e: -len(e[2].pattern))
            self._term_edits[pair] = edits
            return edits


_WORD = re.compile(r"\w+")

#: first word of the source term, the source term, Apertium's translation of it, the wanted one
_TermEdit = tuple[str, re.Pattern[str], re.Pattern[str], str]


def _term_pattern(term: str, *, with_article: bool = False) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in term.split())
    article = r"(?:(?P<article>\b[Aa]n?)\s+)?" if with_article else ""
    return re.compile(r"(?<!\w)" + article + "(?P<term>" + words + r")(?!\w)", re.IGNORECASE)


def _replace_term(m: re.Match[str], replacement: str) -> str:
    found = m.group("term")
    if found[:1].isupper() and replacement[:1].islower():
        replacement = replacement[:1].upper() + replacement[1:]
    article = m.groupdict().get("article")
    if not article:
        return replacement
    # English "a"/"an" agreeing with the new term's first sound (a rough rule: its letter)
    an = replacement[:1].lower() in "aeio" or replacement[:2].lower() == "un"
    wanted = ("An" if article[0] == "A" else "an") if an else article[0]
    return f"{wanted} {replacement}"


def _strip_generation_marks(source_text: str, text: str) -> str:
    """Remove Apertium's ``#`` generation-error marks (``move#``), unless the source has ``#``
    itself (hashtags, "series # 1860s"), where they cannot be told apart."""
    return text if "#" in source_text else text.replace("#", "")


_ESCAPED = re.compile(r"([\\\[\]^$@/<>{}])")
_FORMAT_BLANKS = re.compile(r"~|[^\S ]\s*| {2,}")


def _deformat(text: str) -> str:
    """Plain text → Apertium stream format, as ``apertium-destxt`` does it: special characters
    escaped, formatting whitespace (and ``~``) in superblanks, and the ``.[]`` that marks the end
    of a paragraph (a sentence end Apertium needs; removed again by :func:`_reformat`)."""
    escaped = _ESCAPED.sub(r"\\\1", text)
    return _FORMAT_BLANKS.sub(lambda m: "[" + m.group() + "]", escaped) + ".[]"


def _reformat(stream: str) -> str:
    """Apertium stream format → plain text (``apertium-retxt``): superblanks become their
    content, escapes are undone and the paragraph-end ``.[]`` is dropped."""
    out: list[str] = []
    i, n = 0, len(stream)
    while i < n:
        c = stream[i]
        if c == "\\" and i + 1 < n:
            out.append(stream[i + 1])
            i += 2
        elif c == "." and stream.startswith("[]", i + 1):
            i += 3
        elif c == "[":
            j = i + 1
            while j < n and stream[j] != "]":
                if stream[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(stream[j])
                j += 1
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _ApertiumPipe:
    """One Apertium mode pipeline kept running in null-flush mode (``-z``): each segment is
    written followed by NUL and its translation comes back followed by NUL, so a batch costs no
    process start (~0.3 s for the eng-spa pair, mostly the transfer rules being compiled).

    A sentinel segment ends every batch; if it does not come back last (a tool that swallowed or
    added a NUL), the pipe is discarded rather than trusted.
    """

    def __init__(self, command: list[str], env: Mapping[str, str]) -> None:
        self._pid = os.getpid()
        self._count = 0
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,  # its own process group: stopped as a whole
        )
        self._finalizer = weakref.finalize(self, _ApertiumPipe._stop, self._proc)

    def usable(self) -> bool:
        # a forked worker must not share its parent's pipe
        return self._proc is not None and self._proc.poll() is None and os.getpid() == self._pid

    def translate(self, segments: list[str], timeout: float) -> list[str] | None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None or not self.usable():
            return None
        self._count += 1
        sentinel = f"zzqx{self._count}xqzz"
        payload = b"".join(s.replace("\0", " ").encode("utf-8") + b"\0" for s in segments)
        payload += _deformat(sentinel).encode("ascii") + b"\0"  # ends a sentence, or it waits
        errors: list[BaseException] = []

        def write() -> None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(payload)
                proc.stdin.flush()
            except (OSError, ValueError) as exc:
                errors.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        outputs: list[bytes] = []
        buffer = b""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(outputs) < len(segments) + 1:
                left = deadline - time.monotonic()
                if left <= 0 or errors or not selector.select(left):
                    return None
                data = os.read(fd, 1 << 16)
                if not data:  # the pipeline died
                    return None
                *done, buffer = (buffer + data).split(b"\0")
                outputs.extend(done)
        writer.join(timeout=max(0.0, deadline - time.monotonic()))
        if buffer or len(outputs) != len(segments) + 1 or sentinel.encode() not in outputs[-1]:
            return None
        return [o.decode("utf-8", "replace") for o in outputs[:-1]]

    def close(self) -> None:
        self._finalizer()
        self._proc = None

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def _utf8_env() -> dict[str, str]:
    env = dict(os.environ)
    locale = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if "utf-8" not in locale.lower() and "utf8" not in locale.lower():
        env["LC_ALL"] = "C.UTF-8"
    return env


def _dpkg_version(package: str) -> str | None:
    """Upstream version of an installed Debian package (``0.8.1-2`` → ``0.8.1``), or None."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return None
    try:
        proc = subprocess.run(
            [dpkg, "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version:
        return None
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


# --------------------------------------------------------------------------------------------
# Chunking for the neural backends
# --------------------------------------------------------------------------------------------

_REGEX_SENTENCE_END = re.compile(r"(?<=[.!?…:;])[\"'”»)\]]*\s+(?=[¿¡\"'“«(\[\w])")


class _SentenceSplitter:
    """pysbd when installed (``language`` es/en), else a punctuation regex."""

    def __init__(self, language: str) -> None:
        self._segmenter: Any = None
        try:
            pysbd = importlib.import_module("pysbd")
            self._segmenter = pysbd.Segmenter(language=language, clean=False)
        except (ImportError, ValueError, KeyError):
            self._segmenter = None

    def split(self, text: str) -> list[str]:
        pieces: list[str] = []
        if self._segmenter is not None and len(text) < 100_000:
            try:
                pieces = [str(s) for s in self._segmenter.segment(text)]
            except Exception:  # pysbd has regex edge cases; the fallback is always safe
                pieces = []
        if not pieces or "".join(pieces).split() != text.split():
            pieces = _REGEX_SENTENCE_END.split(text)
        return [p.strip() for p in pieces if p.strip()]


@dataclass
class _Plan:
    """Where each chunk's translation goes: text → paragraphs → lines → chunk indices."""

    chunks: list[str] = field(default_factory=list)
    layout: list[list[list[list[int]]]] = field(default_factory=list)

    def assemble(self, translated: Sequence[str]) -> list[str]:
        out = []
        for paragraphs in self.layout:
            out.append(
                "\n\n".join(
                    "\n".join(
                        " ".join(t for i in line if (t := translated[i].strip())) for line in para
                    ).strip()
                    for para in paragraphs
                ).strip()
            )
        return out


def _plan_chunks(
    texts: Sequence[str],
    splitter: _SentenceSplitter,
    count_tokens: Callable[[list[str]], list[int]],
    budget: int,
) -> _Plan:
    """Split texts into chunks of at most ``budget`` tokens (sentences, or word groups of a
    longer sentence, or character slices of a longer "word"); identical chunks are translated
    once."""
    plan = _Plan()
    index: dict[str, int] = {}

    def add(chunk: str) -> int:
        if chunk not in index:
            index[chunk] = len(plan.chunks)
            plan.chunks.append(chunk)
        return index[chunk]

    sentences_per_line: list[list[str]] = []
    layout_lines: list[list[list[int]]] = []  # per text: per paragraph: line numbers
    for text in texts:
        text_layout: list[list[int]] = []
        for para in _paragraphs(clean_text(text)):
            line_numbers = []
            for line in para.split("\n"):
                line = _SPACES.sub(" ", line).strip()
                if line:
                    line_numbers.append(len(sentences_per_line))
                    sentences_per_line.append(splitter.split(line))
            text_layout.append(line_numbers)
        layout_lines.append(text_layout)

    all_sentences = [s for line in sentences_per_line for s in line]
    counts = count_tokens(all_sentences) if all_sentences else []
    pos = 0
    line_chunks: list[list[int]] = []
    for sentences in sentences_per_line:
        ids: list[int] = []
        for sentence in sentences:
            if counts[pos] <= budget:
                ids.append(add(sentence))
            else:
                ids.extend(add(piece) for piece in _split_long(sentence, count_tokens, budget))
            pos += 1
        line_chunks.append(ids)
    plan.layout = [
        [[line_chunks[n] for n in para] for para in text_layout] for text_layout in layout_lines
    ]
    return plan


def _split_long(
    sentence: str, count_tokens: Callable[[list[str]], list[int]], budget: int
) -> list[str]:
    """Word groups of at most ``budget`` tokens (a word longer than that is cut in slices)."""
    words = sentence.split(" ")
    counts = count_tokens(words)
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for word, n in zip(words, counts, strict=True):
        if n > budget:
            if current:
                pieces.append(" ".join(current))
                current, size = [], 0
            slices = math.ceil(n / budget) * 2
            step = max(1, math.ceil(len(word) / slices))
            pieces.extend(word[i : i + step] for i in range(0, len(word), step))
            continue
        if current and size + n > budget:
            pieces.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += n
    if current:
        pieces.append(" ".join(current))
    return pieces


def _parse_models(models: Mapping[Pair, str | os.PathLike[str]] | str) -> dict[Pair, str]:
    """``{("es", "en"): "Helsinki-NLP/opus-mt-es-en"}`` or ``"es-en=path,en-es=path"``."""
    if isinstance(models, str):
        parsed: dict[Pair, str] = {}
        for item in filter(None, (x.strip() for x in models.split(","))):
            pair, sep, where = item.partition("=")
            src, dash, tgt = pair.strip().partition("-")
            if not (sep and dash and src and tgt and where.strip()):
                raise ValueError(f"bad model mapping {item!r}; expected like es-en=PATH_OR_ID")
            parsed[(src, tgt)] = where.strip()
        return parsed
    return {(s, t): os.fspath(m) for (s, t), m in models.items()}


def _short_name(model: str) -> str:
    path = Path(model)
    return path.name if path.exists() else model


#: NLLB-style language codes for the pairs we use
NLLB_CODES = {"es": "spa_Latn", "en": "eng_Latn"}


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
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.max_position_embeddings = values.get("max_position_embeddings")


# --------------------------------------------------------------------------------------------
# No translation, and the factory
# --------------------------------------------------------------------------------------------


class NoTranslator:
    """Translates nothing: ``pairs()`` is empty, so the pipeline skips the translation stage;
    ``translate`` raises :class:`ValueError` for every pair."""

    model_id = "none"

    def pairs(self) -> set[Pair]:
        return set()

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        raise ValueError(f"translation is switched off (translator 'none'): {source}→{target}")


_DEFAULT_HF_MODELS: dict[Pair, str] = {
    ("es", "en"): "Helsinki-NLP/opus-mt-es-en",
    ("en", "es"): "Helsinki-NLP/opus-mt-en-es",
}


def get_translator(name: str, **options: Any) -> Translator:
    """Build a translator by name: ``apertium``, ``transformers`` (alias ``hf``),
    ``ctranslate2`` (alias ``ct2``) or ``none``; ``options`` go to its constructor (the neural
    ones default to ``models`` = the Helsinki-NLP opus-mt es⇄en models)."""
    key = name.strip().lower()
    if key == "apertium":
        return ApertiumTranslator(**options)
    if key in {"transformers", "hf"}:
        options.setdefault("models", _DEFAULT_HF_MODELS)
        return HFTranslator(**options)
    if key in {"ctranslate2", "ct2"}:
        options.setdefault("models", _DEFAULT_HF_MODELS)
        return CT2Translator(**options)
    if key in {"none", "off", ""}:
        if options:
            raise ValueError(f"translator 'none' takes no options, got {sorted(options)}")
        return NoTranslator()
    raise ValueError(
        f"unknown translator {name!r}: choose apertium, transformers, ctranslate2 or none"
    )
