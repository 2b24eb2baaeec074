"""``covidnews ingest FILE.jsonl|-``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_STORE, CommandError, load, open_store


def _parse_map(values: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in values:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise click.BadParameter(f"expected SRC=DST, got {item!r}", param_hint="--map")
        mapping[src.strip()] = dst.strip()
    return mapping


@contextlib.contextmanager
def _progress(path: str, enabled: bool) -> Iterator[Any]:
    """A progress bar over input bytes on a terminal; a no-op callback otherwise."""
    if not enabled:
        yield None
        return
    length = None
    if path != "-" and not path.endswith(".gz"):
        with contextlib.suppress(OSError):
            length = os.path.getsize(path)
    with click.progressbar(
        length=length or 0, label="ingesting", file=sys.stderr, show_pos=False
    ) as bar:
        yield bar


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="SRC=DST",
    help="Rename an input field, e.g. --map headline=title --map link=url. Repeatable.",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write every rejected line (number, reason, original text) to this JSONL file.",
)
@click.option("--batch-size", type=click.IntRange(1, 50_000), help="Rows per transaction.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: on when stderr is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def ingest(
    file: str,
    maps: tuple[str, ...],
    errors_path: str | None,
    batch_size: int | None,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Store articles from FILE (JSON Lines, optionally .gz; - reads standard input).

    One JSON object per line. Required: "url" and a non-empty "text". Optional: "title", "id"
    (kept as the external id), "language" (ISO 639-1; detected later if absent), "published_at"
    (ISO 8601; no zone means UTC), "source" (outlet name), "country" (ISO 3166-1 alpha-2),
    "authors" (list of names). Other fields are kept with the article.

    Ingesting the same URL again updates that article, never duplicates it; re-running a file
    (even after the command was killed) completes it without duplicates.

    Valid lines are stored even when others are bad. Each bad line is reported on stderr with
    its line number and reason, and the exit status is then 1.

    Then the NLP runs on what was stored (language, Covid relevance, topics, summaries,
    translation, embeddings): here, with progress and an ETA — on 2 cores about a second per
    article, so a large file takes a while — or on the workers when COVIDNEWS_BROKER_URL is set.
    COVIDNEWS_PROCESS_ON_INGEST=false only stores; `covidnews process` runs the NLP later.
    """
    from covidnews.ingest import BadLine, ingest_path, write_bad_lines
    from covidnews.store import StoreError
    from nlp_worker.commands import process_after_collecting
    from nlp_worker.handoff import submit

    settings = load()
    field_map = _parse_map(maps)
    if file != "-" and not os.path.isfile(file):
        raise click.BadParameter(f"no such file: {file}", param_hint="FILE")
    store = open_store(settings)
    errors_file: IO[str] | None = None
    if errors_path:
        errors_file = open(errors_path, "w", encoding="utf-8")  # noqa: SIM115

    def on_bad(bad: BadLine) -> None:
        click.echo(f"{file}:{bad.line}: {bad.reason}", err=True)
        if errors_file is not None:
            write_bad_lines(bad, errors_file)

    show = sys.stderr.isatty() if progress is None else progress
    try:
        with _progress(file, show) as bar:
            report = ingest_path(
                store,
                file,
                batch_size=batch_size or settings.ingest_batch_size,
                field_map=field_map,
                on_bad=on_bad,
                on_progress=bar.update if bar is not None else None,
                # With a broker, batches are queued for the workers as the file is read.
                on_batch=(lambda ids: submit(ids, settings, store))
                if settings.broker_url
                else None,
            )
    except StoreError as exc:
        store.close()
        raise CommandError(str(exc), EXIT_STORE) from None
    except OSError as exc:
        store.close()
        raise CommandError(f"cannot read {file}: {exc}", EXIT_INPUT) from None
    finally:
        if errors_file is not None:
            errors_file.close()
    summary = report.as_dict()
    if not as_json:
        click.echo(
            f"{summary['lines']:,} lines: {report.inserted:,} new, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged, {len(report.bad):,} rejected",
            err=True,
        )
    try:
        process_after_collecting(store, settings, show=progress)
    except StoreError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    if report.bad:
        sys.exit(EXIT_INPUT)
