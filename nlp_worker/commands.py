"""NLP commands: ``process``, ``reindex``, ``translate``, ``classify``, ``train-classifier``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load, open_store


@click.command()
@click.option("--limit", type=click.IntRange(1), help="Process at most N pending articles.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def process(limit: int | None, progress: bool | None, as_json: bool) -> None:
    """Run pending articles through the NLP stages, here and now.

    language id → Covid relevance + topics → summary → translation (Covid articles) → embedding
    → index. Stages already done with the same input and model are skipped. Articles that keep
    failing are marked failed with their error (see `covidnews stats`).
    """
    from nlp_worker.backends.base import BackendUnavailable
    from nlp_worker.process import pending_ids, process_ids

    settings = load()
    store = open_store(settings)
    try:
        ids = pending_ids(store, limit)
        show = sys.stderr.isatty() if progress is None else progress
        try:
            if show and ids:
                with click.progressbar(length=len(ids), label="processing", file=sys.stderr) as bar:
                    report = process_ids(store, settings, ids, on_batch=bar.update)
            else:
                report = process_ids(store, settings, ids)
        except BackendUnavailable as exc:
            raise CommandError(str(exc), EXIT_SETTINGS) from None
    finally:
        store.close()
    summary = {
        "processed": len(ids),
        "done": report.done,
        "failed": report.failed,
        "retry_later": report.retry,
        "indexed": report.indexed,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{len(ids)} articles: {report.done} done, {report.failed} failed, "
            f"{report.retry} to retry; {report.indexed} vectors indexed",
            err=True,
        )


@click.command()
@click.option("--model", help="Embedding model id (default: the configured embedder's).")
def reindex(model: str | None) -> None:
    """Rebuild this machine's vector and keyword indexes from the store (the source of truth),
    then follow the store's changes from there. Searches keep the old indexes until the new
    ones are complete."""
    from covidnews.follow import Follower

    settings = load()
    store = open_store(settings)
    try:
        follower = Follower.from_settings(settings, store, model)
        report = follower.reset()
        m = follower.vectors.manifest()
    finally:
        store.close()
    kind = m.kind if m is not None else "empty"
    click.echo(f"vector index: {report.vectors} vectors ({kind}), model {follower.model}")
    click.echo(f"keyword index: {report.written} articles")


def _open_text(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc}", EXIT_INPUT) from None


@click.command()
@click.option(
    "--source", "source", required=True, metavar="LANG", help="Source language (ISO 639-1)."
)
@click.option(
    "--target", "target", required=True, metavar="LANG", help="Target language (ISO 639-1)."
)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.argument("file", default="-", type=click.Path(allow_dash=True, dir_okay=False))
def translate(source: str, target: str, batch_size: int, file: str) -> None:
    """Translate FILE (or stdin): one sentence or paragraph per line in, one translation per
    line out — same number of lines, same order; an empty line stays empty.

    The backend is COVIDNEWS_TRANSLATOR (default: apertium, offline).
    """
    from nlp_worker.backends.base import BackendUnavailable
    from nlp_worker.backends.translate import get_translator
    from nlp_worker.translate_cli import translate_lines

    settings = load()
    options: dict[str, Any] = {}
    if settings.translator in {"transformers", "ctranslate2"}:
        options["models"] = {
            tuple(k.split("-", 1)): v for k, v in settings.translation_models.items()
        }
    try:
        translator = get_translator(settings.translator, **options)
        if (source, target) not in translator.pairs():
            raise CommandError(
                f"{settings.translator} cannot translate {source}→{target} "
                f"(pairs: {sorted(translator.pairs())})",
                EXIT_SETTINGS,
            )
        stream = _open_text(file)
        lines = (line.rstrip("\r\n") for line in stream)
        for out in translate_lines(lines, translator, source, target, batch_size=batch_size):
            click.echo(out)
    except BackendUnavailable as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None


@click.command()
@click.argument("file", default="-", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--batch-size", type=click.IntRange(1, 1024), default=32, show_default=True)
def classify(file: str, batch_size: int) -> None:
    """Classify JSONL articles (``title``, ``text``, optional ``language``) from FILE or stdin.

    Prints each object back with ``language``, ``covid_score`` (0-1), ``is_covid`` and
    ``topics`` (list of {"id", "score"}, best first, empty when not Covid). Bad lines are reported
    on stderr with their line numbers (exit status 1); the good ones are still classified.
    """
    from nlp_worker.classify import load_classifier
    from nlp_worker.classify_cli import classify_stream

    settings = load()
    classifier = load_classifier(settings.classifier_path)
    bad: list[int] = []

    def on_bad(line: int, reason: str) -> None:
        bad.append(line)
        click.echo(f"{file}:{line}: {reason}", err=True)

    stream = sys.stdin.buffer if file == "-" else None
    try:
        source: Any = stream if stream is not None else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise CommandError(f"cannot read {file}: {exc}", EXIT_INPUT) from None
    try:
        for obj in classify_stream(source, classifier, on_bad=on_bad, batch_size=batch_size):
            click.echo(json.dumps(obj, ensure_ascii=False))
    finally:
        if stream is None:
            source.close()
    if bad:
        sys.exit(EXIT_INPUT)


@click.command(name="train-classifier")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Artefact path (default: the bundled one).",
)
def train_classifier(out: Path | None) -> None:
    """Rebuild the Covid-relevance and topic classifier from the labelled data in ../shared/data
    (or COVIDNEWS_SHARED_DATA), print its cross-validated figures and write the artefact."""
    from nlp_worker.classify_cli import train_classifier_main

    load()
    sys.exit(train_classifier_main(out))
