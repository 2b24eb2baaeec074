"""The Apertium translator: the rule-based engine (Debian ``apertium-eng-spa``) behind
persistent pipes, with glossary terms and format markers kept through it."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from covidnews.interfaces import BackendUnavailable
from nlp_worker.backends.translate.glossary import Glossary, load_tico_glossary, localize_numbers
from nlp_worker.backends.translate.text import (
    _PARAGRAPH_SPLIT,
    Pair,
    _check_pair,
    _paragraphs,
    clean_text,
)

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
