"""NLP commands: ``process``, ``reindex``, ``translate``, ``classify``, ``train-classifier``."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load, open_store

if TYPE_CHECKING:
    from covidnews.settings import Settings
    from covidnews.store import Store
    from nlp_worker.process import ProcessReport


def process_stored(
    store: Store, settings: Settings, *, limit: int | None = None, show: bool | None = None
) -> ProcessReport:
    """Run what is pending through the NLP here, telling the user what happens: which articles,
    a progress bar with an ETA on a terminal (a line every ~10 s otherwise), and one warning line
    when the translator cannot run (translations are then deferred, never failed). When the
    translator can run, translations deferred earlier are queued again first.

    Used by ``process``, and by ``demo``, ``crawl`` and ``ingest`` on the embedded default.
    Returns the :class:`~nlp_worker.process.ProcessReport`; a backend that cannot run at all is
    a :class:`CommandError` (one line, no traceback)."""
    from covidnews.interfaces import BackendUnavailable
    from nlp_worker.process import (
        ProcessReport,
        deferred_count,
        pending_count,
        pending_ids,
        process_ids,
        requeue_deferred,
    )
    from nlp_worker.stages import Backends

    if not pending_count(store) and not deferred_count(store):
        return ProcessReport()  # nothing to do: no model is loaded (a crawl that found nothing)
    try:
        backends = Backends.from_settings(settings)
    except BackendUnavailable as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None
    if backends.translator_unavailable:
        waiting = deferred_count(store)
        click.echo(
            f"warning: no translations for now: {backends.translator_unavailable}. The articles "
            "are stored and searchable; once it is installed, `covidnews process` translates "
            f"them{f' ({waiting:,} waiting)' if waiting else ''}.",
            err=True,
        )
    else:
        requeued = requeue_deferred(store)
        if requeued:
            click.echo(
                f"translating {requeued:,} articles whose translation was deferred", err=True
            )
    ids = pending_ids(store, limit)
    if not ids:
        return process_ids(store, settings, [], backends=backends)
    click.echo(
        f"processing {len(ids):,} articles here (language, Covid relevance and topics, "
        "summaries, translation, embeddings)…",
        err=True,
    )
    tty = sys.stderr.isatty() if show is None else show
    with _progress(len(ids), tty) as advance:
        return process_ids(store, settings, ids, backends=backends, on_batch=advance)


def process_after_collecting(
    store: Store, settings: Settings, *, show: bool | None = None
) -> ProcessReport | None:
    """After a crawl or an ingest: run the NLP here (the embedded default, with progress), or
    say where it happens instead. Returns the report, or None when nothing ran here."""
    from nlp_worker.process import pending_count

    if settings.broker_url and settings.process_on_ingest:
        from nlp_worker.handoff import submit
        from nlp_worker.leases import sweep

        swept = sweep(store, settings, submit)  # what an earlier run or a lost queue left behind
        again = f"; {swept:,} earlier ones nobody held handed over again" if swept else ""
        click.echo(
            f"the NLP workers process the new articles (queued on the broker){again}", err=True
        )
        return None
    if not settings.process_on_ingest:
        waiting = pending_count(store)
        if waiting:
            click.echo(
                f"NLP deferred (COVIDNEWS_PROCESS_ON_INGEST=false): {waiting:,} articles "
                "pending; `covidnews process` runs them",
                err=True,
            )
        return None
    return process_stored(store, settings, show=show)


@contextlib.contextmanager
def _progress(total: int, tty: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar with an ETA on a terminal; otherwise a line at most every 10 s."""
    if tty:
        with click.progressbar(
            length=total, label="processing", file=sys.stderr, show_eta=True
        ) as bar:
            yield bar.update
        return
    started = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if done < total and now - last < 10:
            return
        last = now
        rate = done / max(now - started, 1e-6)
        left = f", about {_duration((total - done) / rate)} left" if done < total else ""
        click.echo(f"processed {done:,}/{total:,} articles{left}", err=True)

    yield advance


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


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
    failing are marked failed with their error (see `covidnews stats`). When the translator
    (COVIDNEWS_TRANSLATOR, default Apertium) is not installed, translations are deferred with a
    warning and made by a later `covidnews process` once it is.
    """
    settings = load()
    store = open_store(settings)
    try:
        report = process_stored(store, settings, limit=limit, show=progress)
    finally:
        store.close()
    processed = report.done + report.failed + report.retry
    summary = {
        "processed": processed,
        "done": report.done,
        "failed": report.failed,
        "retry_later": report.retry,
        "indexed": report.indexed,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{processed} articles: {report.done} done, {report.failed} failed, "
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
    from covidnews.interfaces import BackendUnavailable
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
