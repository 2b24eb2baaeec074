"""``covidnews demo``: the main job on the embedded default, offline, end to end.

Today: start the local demo news site, crawl it into the store, print what the store holds.
(Processing and serving join as those parts of the system land.)
"""

from __future__ import annotations

import json

import click

from covidnews.commands._common import EXIT_SETTINGS, EXIT_STORE, CommandError, load, open_store


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8800,
    show_default=True,
    help="Demo site port. Keep it the same between runs: article URLs include it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the crawl summary as JSON.")
def demo(port: int, as_json: bool) -> None:
    """Serve the demo news site on 127.0.0.1, crawl it with the real crawler, show the result."""
    from covidnews.store import StoreError
    from crawler.demo_site import DemoSite, write_registry
    from crawler.registry import load_registry
    from crawler.run import run_crawl

    settings = load()
    try:
        site = DemoSite(port=port).start()
    except OSError as exc:
        raise CommandError(
            f"cannot serve the demo site on 127.0.0.1:{port} ({exc}); choose another --port",
            EXIT_SETTINGS,
        ) from None
    store = open_store(settings)
    try:
        with site:
            registry_path = settings.data_dir / "demo-sources.yaml"
            write_registry(site.port, registry_path)
            demo_settings = settings.model_copy(
                update={"crawl_allow_private": ["127.0.0.1"], "sources_file": registry_path}
            )
            click.echo(
                f"demo news site: http://127.0.0.1:{site.port}/ "
                f"(outlets at http://NAME.localhost:{site.port}/)",
                err=True,
            )
            report = run_crawl(
                demo_settings,
                store,
                registry=load_registry(registry_path),
                # The site is local: no need to be slow with it.
                overrides={"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0},
            )
        stats = store.stats()
    except StoreError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    summary = report.summary()
    if as_json:
        click.echo(json.dumps({"crawl": summary, "store": stats}, ensure_ascii=False))
        return
    click.echo(
        f"crawled {summary['pages_fetched']} pages in {summary['elapsed_seconds']} s: "
        f"{summary['articles_stored']} new articles, {summary['syndicated_copies']} syndicated "
        f"copies grouped, {summary['robots_forbidden']} pages refused by robots.txt"
    )
    click.echo(
        f"store: {stats['articles']} articles from {stats['sources']} sources ({stats['database']})"
    )
