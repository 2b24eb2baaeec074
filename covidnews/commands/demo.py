"""``covidnews demo``: the main job on the embedded default, offline, end to end.

Start the local demo news site, crawl it into the store (the NLP stages run on what is crawled,
in-process), process anything still pending, and with ``--serve`` serve the archive and the API
on http://127.0.0.1:8000 (the demo site stays up, so "read the original" links work).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from covidnews.commands._common import (
    EXIT_SETTINGS,
    EXIT_STORE,
    CommandError,
    load,
    open_store,
    terse_logging,
)

if TYPE_CHECKING:
    from crawler.demo_site import DemoSite


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8800,
    show_default=True,
    help="Demo site port. Keep it the same between runs: article URLs include it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the crawl summary as JSON.")
@click.option(
    "--serve/--no-serve",
    default=False,
    show_default=True,
    help="Afterwards, serve the archive and API (Ctrl-C stops).",
)
@click.option(
    "--api-port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port of the archive and API with --serve.",
)
@click.pass_context
def demo(ctx: click.Context, port: int, as_json: bool, serve: bool, api_port: int) -> None:
    """Serve the demo news site on 127.0.0.1, crawl it with the real crawler, process what was
    crawled and (with --serve) serve the archive and API."""
    from covidnews.store import StoreError
    from crawler.demo_site import DemoSite, write_registry
    from crawler.registry import load_registry
    from crawler.run import run_crawl
    from nlp_worker.commands import process_after_collecting
    from nlp_worker.handoff import submit

    settings = load()
    terse_logging(settings)
    try:
        site = DemoSite(port=port).start()
    except OSError as exc:
        raise CommandError(
            f"cannot serve the demo site on 127.0.0.1:{port} ({exc}); choose another --port",
            EXIT_SETTINGS,
        ) from None
    store = open_store(settings)
    processed = None
    owner = os.getpid()
    try:
        # The site stays up while serving too: the archive links to the originals.
        with _stopped_by(site, owner):
            registry_path = settings.data_dir / "demo-sources.yaml"
            write_registry(site.port, registry_path)
            registry = load_registry(registry_path)
            demo_settings = settings.model_copy(
                update={"crawl_allow_private": ["127.0.0.1"], "sources_file": registry_path}
            )
            say = functools.partial(click.echo, err=as_json)  # stdout holds only the JSON
            say(f"demo news site (fictional outlets, real articles): http://127.0.0.1:{site.port}/")
            say(f"crawling its {len(registry)} outlets…")
            report = run_crawl(
                demo_settings,
                store,
                registry=registry,
                # The site is local: no need to be slow with it.
                overrides={"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0},
                handoff=submit,
            )
            _report_crawl(report.summary(), as_json)
            processed = process_after_collecting(store, settings)
            stats = store.stats()
            if serve:
                store.close()
                _report(stats, as_json, processed, report.summary())
                from covidnews.commands.serve import serve as serve_command

                say(
                    f"serving the archive on http://127.0.0.1:{api_port}/ (English: "
                    f"http://127.0.0.1:{api_port}/?lang=en) and the search API; Ctrl-C stops"
                )
                ctx.invoke(
                    serve_command,
                    host="127.0.0.1",
                    port=api_port,
                    workers=1,
                    threads=4,
                    access_log=False,
                )
                return
    except StoreError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    _report(stats, as_json, processed, report.summary())


@contextlib.contextmanager
def _stopped_by(site: DemoSite, owner: int) -> Iterator[None]:
    """Stop the demo site on the way out, but only in the process that started it.

    With ``--serve`` gunicorn's workers are forks of this process and leave through here too
    (``SystemExit`` from inside ``serve``): the site's thread does not exist in a fork, so
    ``stop()`` there would wait for it forever and hold every shutdown up until gunicorn's
    graceful timeout killed the worker.
    """
    try:
        yield
    finally:
        if os.getpid() == owner:
            site.stop()


def _report_crawl(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return
    click.echo(
        f"crawled {summary['pages_fetched']} pages in {summary['elapsed_seconds']} s: "
        f"{summary['articles_stored']} new articles, {summary['syndicated_copies']} syndicated "
        f"copies grouped, {summary['robots_forbidden']} pages refused by robots.txt"
    )


def _report(
    stats: dict[str, Any],
    as_json: bool,
    processed: Any,
    crawl: dict[str, Any] | None = None,
) -> None:
    if as_json:
        if crawl is not None:
            click.echo(json.dumps({"crawl": crawl, "store": stats}, ensure_ascii=False))
        return
    click.echo(
        f"store: {stats['articles']} articles from {stats['sources']} sources ({stats['database']})"
    )
    states = stats.get("states", {})
    if processed is not None or states.get("done"):
        click.echo(
            f"processed: {states.get('done', 0)} articles ready to search, "
            f"{states.get('failed', 0)} failed, {states.get('pending', 0)} pending"
        )
