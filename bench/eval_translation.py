"""Translation quality (BLEU, chrF) and speed on the TICO-19 dev set, es→en and en→es.

Systems, all on the same 1,471 sentence pairs (``tico19_dev.tsv``: columns ``en``, ``es_419``):

- ``apertium_cli``: bare Apertium as a researcher would run it: ``apertium spa-eng FILE`` on the
  whole file, one sentence per line, default options (unknown words marked with ``*``);
- ``apertium_cli_u``: the same with ``-u`` (no unknown-word marks);
- ``ours``: our default :class:`ApertiumTranslator` through ``translate_lines`` (the
  ``covidnews translate`` path), ``--batch-size`` lines per call;
- ``ours_one_process_per_batch``: the same without the warm pipeline (``persistent=False``):
  one ``apertium`` process per batch;
- ``ours_glossary``: ours plus the TICO-19 Covid terminology lists (CC0) as a post-editing
  glossary (``--no-glossary`` to skip).

Times include everything a fresh ``covidnews translate`` run pays (building the translator,
starting Apertium); best of ``--repeat`` runs. Scores: sacreBLEU corpus BLEU (13a) and chrF2,
signatures in the output. Prints one JSON object.

Usage: python bench/eval_translation.py [--batch-size 32] [--limit N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED, Timer
from nlp_worker.backends.translate import ApertiumTranslator, load_tico_glossary
from nlp_worker.translate_cli import translate_lines

TICO = SHARED / "tico19"
DIRECTIONS = (("es", "en", "spa-eng"), ("en", "es", "eng-spa"))
COLUMNS = {"en": "en", "es": "es_419"}


def load_tico(limit: int | None) -> dict[str, list[str]]:
    with (TICO / "tico19_dev.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = rows[:limit] if limit else rows
    return {lang: [" ".join(r[col].split()) for r in rows] for lang, col in COLUMNS.items()}


def score(hyps: list[str], refs: list[str]) -> dict[str, Any]:
    sacrebleu: Any = importlib.import_module("sacrebleu")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    return {
        "bleu": round(float(bleu.corpus_score(hyps, [refs]).score), 2),
        "chrf": round(float(chrf.corpus_score(hyps, [refs]).score), 2),
        "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
    }


def bare_cli(mode: str, source_file: Path, flags: list[str]) -> Callable[[], list[str]]:
    def run() -> list[str]:
        proc = subprocess.run(
            ["apertium", *flags, mode, str(source_file)],
            capture_output=True,
            check=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
        return proc.stdout.decode("utf-8").splitlines()

    return run


def ours(
    lines: list[str], source: str, target: str, batch_size: int, **options: Any
) -> Callable[[], list[str]]:
    def run() -> list[str]:
        translator = ApertiumTranslator(**options)
        try:
            return list(translate_lines(lines, translator, source, target, batch_size=batch_size))
        finally:
            translator.close()

    return run


def measure(run: Callable[[], list[str]], refs: list[str], repeat: int) -> dict[str, Any]:
    """Scores of the translations, and the fastest of ``repeat`` runs (the machine is shared;
    each run starts from scratch, so every run gives the same lines)."""
    seconds: list[float] = []
    hyps: list[str] = []
    for _ in range(repeat):
        with Timer() as t:
            hyps = run()
        seconds.append(t.seconds)
        if len(hyps) != len(refs):
            raise SystemExit(f"line count changed: {len(hyps)} translations for {len(refs)} lines")
    result = score(hyps, refs)
    result["seconds"] = round(min(seconds), 2)
    result["sentences_per_s"] = round(len(refs) / min(seconds), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32, help="lines per translate() call")
    parser.add_argument("--limit", type=int, default=None, help="first N sentence pairs only")
    parser.add_argument("--no-glossary", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="time each system N times (best)")
    args = parser.parse_args()
    if shutil.which("apertium") is None:
        raise SystemExit("apertium not installed (apt-get install apertium-eng-spa)")

    data = load_tico(args.limit)
    glossary_files = sorted(TICO.glob("terminology_*.csv"))
    use_glossary = glossary_files and not args.no_glossary
    glossary = load_tico_glossary(glossary_files) if use_glossary else None
    systems: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source, target, mode in DIRECTIONS:
            src_file = Path(tmp) / f"source.{source}"
            src_file.write_text("".join(s + "\n" for s in data[source]), encoding="utf-8")
            refs, lines = data[target], data[source]
            runs: dict[str, Callable[[], list[str]]] = {
                "apertium_cli": bare_cli(mode, src_file, []),
                "apertium_cli_u": bare_cli(mode, src_file, ["-u"]),
                "ours": ours(lines, source, target, args.batch_size),
                "ours_one_process_per_batch": ours(
                    lines, source, target, args.batch_size, persistent=False
                ),
            }
            if glossary is not None:
                runs["ours_glossary"] = ours(
                    lines, source, target, args.batch_size, glossary=glossary
                )
            for name, run in runs.items():
                result = measure(run, refs, max(1, args.repeat))
                systems.setdefault(name, {})[f"{source}-{target}"] = result

    signatures = next(iter(systems["ours"].values()))["signatures"]
    for per_direction in systems.values():
        for result in per_direction.values():
            del result["signatures"]
    out = {
        "benchmark": "translation",
        "data": "TICO-19 dev (tico19_dev.tsv)",
        "sentences": len(data["en"]),
        "batch_size": args.batch_size,
        "timing": f"best of {max(1, args.repeat)} runs, each from a fresh translator",
        "model_id": ApertiumTranslator().model_id,
        "glossary": None if glossary is None else f"{glossary.name}-{glossary.digest}",
        "cpus": os.cpu_count(),
        "signatures": signatures,
        "systems": systems,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
