"""Crawler commands: ``crawl``, ``sources list|check``, ``extract``, ``demo-site``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load, open_store

if TYPE_CHECKING:
    from covidnews.settings import Settings


def _registry(settings: Settings, path: str | None) -> Any:
    from crawler.registry import RegistryError, load_registry

    try:
        return load_registry(path or settings.sources_file)
    except RegistryError as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None


def _parse_overrides(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="-s")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Only this source (name, slug or domain). Repeatable.",
)
@click.option("--since", metavar="DATE", help="Skip listed items published before DATE (ISO 8601).")
@click.option("--max-pages", type=click.IntRange(1), help="Stop after this many responses.")
@click.option(
    "--sources-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Registry YAML (default: bundled, or COVIDNEWS_SOURCES_FILE).",
)
@click.option(
    "--run-id",
    help="Crawl id; processes given the same id (and COVIDNEWS_REDIS_URL) split one crawl.",
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a Scrapy setting, e.g. -s DOWNLOAD_DELAY=0. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def crawl(
    sources: tuple[str, ...],
    since: str | None,
    max_pages: int | None,
    sources_file: str | None,
    run_id: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Crawl the registry's sources: feeds, news sitemaps, and links where neither exists.

    Polite by default (robots.txt, AutoThrottle, 2 requests per domain). Incremental: feeds and
    sitemaps use conditional GET and stored articles are never fetched again; a killed crawl
    resumes where it stopped. Live statistics are shown on a terminal. Afterwards the new
    articles go through the NLP here (progress and ETA shown), or to the workers when
    COVIDNEWS_BROKER_URL is set; COVIDNEWS_PROCESS_ON_INGEST=false leaves them for
    `covidnews process`.
    """
    from covidnews.ingest import RecordError, parse_datetime
    from crawler.run import run_crawl
    from nlp_worker.commands import process_after_collecting
    from nlp_worker.handoff import submit

    settings = load()
    registry = _registry(settings, sources_file)
    if settings.metrics_port is not None:
        from covidnews.metrics import serve_metrics

        try:
            serve_metrics(settings)  # while the crawl runs (COVIDNEWS_METRICS_PORT)
        except OSError as exc:
            raise CommandError(
                f"cannot serve metrics on port {settings.metrics_port}: {exc}", EXIT_SETTINGS
            ) from None
    since_dt = None
    if since:
        try:
            since_dt = parse_datetime(since, "since")
        except RecordError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    store = open_store(settings)
    try:
        report = run_crawl(
            settings,
            store,
            registry=registry,
            only=list(sources) or None,
            since=since_dt,
            max_pages=max_pages,
            run_id=run_id,
            overrides=_parse_overrides(overrides),
            handoff=submit,
        )
    except ValueError as exc:
        store.close()
        raise CommandError(str(exc), EXIT_SETTINGS) from None
    summary = report.summary()
    if not as_json:
        for key, value in summary.items():
            click.echo(f"{key.replace('_', ' '):<22} {value}", err=True)
    try:
        process_after_collecting(store, settings)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(summary))


@click.group()
def sources() -> None:
    """The source registry: outlets and health agencies the crawler reads."""


@sources.command("list")
@click.option("--sources-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@click.option("--country", help="Only sources of this country (ISO code).")
def sources_list(sources_file: str | None, as_json: bool, country: str | None) -> None:
    """Print the registry."""
    settings = load()
    registry = _registry(settings, sources_file)
    entries = [e for e in registry if not country or e.country == country.upper()]
    for e in entries:
        if as_json:
            click.echo(json.dumps(e.model_dump(mode="json"), ensure_ascii=False))
        else:
            how = ", ".join(
                f"{n} {k}"
                for k, n in (
                    ("feeds", len(e.feeds)),
                    ("sitemaps", len(e.sitemaps)),
                    ("start pages", len(e.start_urls)),
                )
                if n
            )
            click.echo(
                f"{e.country}  {e.language}  {e.kind:<6}  {e.name:<34} {e.domains[0]:<28} {how}"
            )
    if not as_json:
        click.echo(
            f"{len(entries)} sources, {len({e.country for e in entries})} countries", err=True
        )


@sources.command("check")
@click.option("--sources-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "only", multiple=True, help="Only this source. Repeatable.")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per URL.")
def sources_check(
    sources_file: str | None, only: tuple[str, ...], timeout: float, as_json: bool
) -> None:
    """Fetch every feed and sitemap once and report the dead ones (exit 1 if any).

    Needs internet; without it every URL is reported unreachable, quickly and cleanly.
    """
    from crawler.check import check_urls

    settings = load()
    registry = _registry(settings, sources_file)
    targets = [
        (e.name, kind, url)
        for e in registry
        if not only or e.name in only or e.slug in only
        for kind, urls in (("feed", e.feeds), ("sitemap", e.sitemaps), ("start", e.start_urls))
        for url in urls
    ]
    results = check_urls(targets, timeout=timeout, user_agent=settings.user_agent)
    dead = 0
    for r in results:
        dead += not r["ok"]
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        elif not r["ok"]:
            click.echo(f"DEAD  {r['source']:<30} {r['kind']:<8} {r['url']}  ({r['error']})")
    click.echo(f"{len(results) - dead} of {len(results)} URLs answered", err=True)
    if dead:
        sys.exit(EXIT_INPUT)


@sources.command("discover")
@click.option("--sources-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "only", multiple=True, help="Only this source (name, slug or domain).")
@click.option(
    "--write",
    is_flag=True,
    help="Add what was found to the registry file (its comments and order kept).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per endpoint found.")
def sources_discover(
    sources_file: str | None, only: tuple[str, ...], write: bool, as_json: bool
) -> None:
    """Find the sources' feeds and news sitemaps as the sites announce them.

    Reads each source's robots.txt (Sitemap: lines), the sitemap indexes they name, and the
    feed links (<link rel="alternate">) of its homepage and start pages, through the crawler
    (same guard, robots.txt and throttling); prints what it found, NEW when the registry does
    not list it yet, and records it in the store (the crawler uses it when the configured ones
    are missing or failing). --write adds the new ones to the registry file.
    """
    from crawler.registry_file import add_endpoints
    from crawler.run import run_crawl

    settings = load()
    registry = _registry(settings, sources_file)
    store = open_store(settings)
    try:
        report = run_crawl(
            settings, store, registry=registry, only=list(only) or None, discover_only=True
        )
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_SETTINGS) from None
    finally:
        store.close()
    additions: dict[str, dict[str, list[str]]] = {}
    total = 0
    for slug, found in sorted(report.found.items()):
        entry = registry.get(slug)
        if entry is None:
            continue
        listed = set(entry.feeds) | set(entry.sitemaps)
        for url, (kind, origin, via, news) in sorted(found.items()):
            total += 1
            new = url not in listed
            if new:
                additions.setdefault(entry.name, {}).setdefault(f"{kind}s", []).append(url)
            if as_json:
                record = {
                    "source": entry.name, "slug": slug, "url": url, "kind": kind,
                    "news": news, "origin": origin, "found_via": via, "new": new,
                }  # fmt: skip
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                label = "news sitemap" if news else kind
                mark = "NEW " if new else "    "
                click.echo(f"{mark}{entry.name:<28} {label:<12} {url}  ({origin}: {via})")
    searched = len(report.found)
    click.echo(f"{total} feeds and sitemaps found for {searched} sources", err=True)
    if write:
        from crawler.registry import DEFAULT_REGISTRY

        path = sources_file or settings.sources_file or DEFAULT_REGISTRY
        added = add_endpoints(path, additions)
        click.echo(f"{added} added to {path}", err=True)


@sources.command("health")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@click.option("--source", "only", multiple=True, help="Only this source (name or slug).")
def sources_health(as_json: bool, only: tuple[str, ...]) -> None:
    """How each source is doing, from the store: last article and last good read, articles per
    day over 7 and 30 days, walled articles, the endpoints in use (and demoted ones), the error
    streak, and a status: ok, failing, silent (published before, nothing for 3 days), idle or
    no-endpoints. Exit 1 when a source is silent or failing.
    """
    from covidnews.schema import utcnow
    from covidnews.source_health import source_health

    settings = load()
    store = open_store(settings)
    try:
        rows = source_health(store)
    finally:
        store.close()
    now = utcnow()
    rows = [r for r in rows if not only or r.name in only or r.slug in only]
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.as_json(now), ensure_ascii=False))
    else:
        click.echo(
            f"{'source':<28} {'status':<12} {'last article':<17} {'/day 7d':>7} {'/day 30d':>8} "
            f"{'walled':>6} {'errors':>6}  endpoints in use"
        )
        for r in rows:
            last = r.last_article_at.strftime("%Y-%m-%d %H:%M") if r.last_article_at else "never"
            used = (
                ", ".join(f"{'news-sitemap' if e.news else e.kind}:{e.origin}" for e in r.in_use)
                or "links only"
            )
            if r.demoted:
                used += f"; demoted: {len(r.demoted)}"
            click.echo(
                f"{r.name[:28]:<28} {r.status(now):<12} {last:<17} {r.per_day_7d:>7} "
                f"{r.per_day_30d:>8} {r.walled_30d:>6} {r.error_streak:>6}  {used}"
            )
            for e in r.endpoints:
                if e.state == "demoted" or e.failures:
                    click.echo(f"    {e.state:<8} {e.url}  ({e.reason})")
    bad = [r.name for r in rows if r.status(now) in ("silent", "failing")]
    if bad:
        click.echo(f"{len(bad)} sources need a look: {', '.join(bad)}", err=True)
        sys.exit(EXIT_INPUT)


@click.command()
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--url", required=True, help="The URL the page was fetched from.")
@click.option(
    "--fetched-at", help="When it was fetched (ISO 8601), for relative dates; default now."
)
@click.option("--country", help="Country (ISO code) whose time zone applies to dates without one.")
@click.option("--content-type", help="The HTTP Content-Type header, if known (for the charset).")
def extract(
    file: str, url: str, fetched_at: str | None, country: str | None, content_type: str | None
) -> None:
    """Extract the article in an HTML FILE (.gz allowed; - reads stdin) and print it as JSON.

    Prints one object with at least url, title, text, authors (list), published_at (ISO 8601
    or null) and language; also modified_at, section, image, description, site_name, is_article.
    """
    import gzip

    from covidnews.ingest import RecordError, parse_datetime
    from crawler.dates import zone_for
    from crawler.extract import ExtractionError
    from crawler.extract import extract as run_extract

    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {file}: {exc}", EXIT_INPUT) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError as exc:
            raise CommandError(f"{file}: bad gzip data: {exc}", EXIT_INPUT) from None
    try:
        when = parse_datetime(fetched_at, "fetched_at") if fetched_at else datetime.now(UTC)
    except RecordError as exc:
        raise click.BadParameter(str(exc), param_hint="--fetched-at") from None
    try:
        page = run_extract(
            raw, url, content_type=content_type, fetched_at=when, tz=zone_for(country)
        )
    except ExtractionError as exc:
        raise CommandError(f"{file}: {exc}", EXIT_INPUT) from None
    click.echo(json.dumps(page.as_json(), ensure_ascii=False))


@click.command(name="demo-site")
@click.option("--port", type=click.IntRange(0, 65535), default=8800, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(["slow", "errors", "redirect-loop", "oversized", "real-web"]),
    help="Enable a fault mode. Repeatable.",
)
@click.option(
    "--registry-out",
    type=click.Path(dir_okay=False),
    help="Write the demo outlets' registry YAML here.",
)
def demo_site(port: int, faults: tuple[str, ...], registry_out: str | None) -> None:
    """Serve the fictional demo news site on 127.0.0.1 (outlets at http://NAME.localhost:PORT/)."""
    from crawler.demo_site import main

    argv = ["--port", str(port)]
    for fault in faults:
        argv += ["--fault", fault]
    if registry_out:
        argv += ["--registry-out", registry_out]
    sys.exit(main(argv))
