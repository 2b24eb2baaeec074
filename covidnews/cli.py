"""The ``covidnews`` command.

Subcommands are imported only when run (``covidnews --help`` loads no database or model code).
Each entry of :data:`COMMANDS` names the module and function that implements a subcommand.

Exit status: 0 success; 1 the command ran but some input was rejected (e.g. bad JSONL lines);
2 usage or settings error; 3 the store cannot be used.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from covidnews import __version__

# name -> ("module:function", one-line help shown by `covidnews --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("covidnews.commands.store:init", "Create or upgrade the database schema."),
    "ingest": ("covidnews.commands.ingest:ingest", "Store articles from a JSONL file (or -)."),
    "stats": ("covidnews.commands.store:stats", "Show what the store holds."),
    "backup": ("covidnews.commands.store:backup", "Write a consistent backup of the store."),
    "restore": ("covidnews.commands.store:restore", "Replace the store with a backup."),
    "crawl": ("crawler.commands:crawl", "Crawl the registry's outlets (feeds, sitemaps, links)."),
    "sources": ("crawler.commands:sources", "List or check the source registry."),
    "extract": ("crawler.commands:extract", "Extract the article of one HTML page as JSON."),
    "demo-site": ("crawler.commands:demo_site", "Serve the local demo news site."),
    "demo": (
        "covidnews.commands.demo:demo",
        "Run the demo end to end: demo site → crawl → NLP → archive.",
    ),
    "process": ("nlp_worker.commands:process", "Run pending articles through the NLP stages."),
    "reindex": ("nlp_worker.commands:reindex", "Rebuild this node's indexes from the store."),
    "follow": (
        "covidnews.commands.index:follow",
        "Keep this node's indexes in step with the store.",
    ),
    "index": ("covidnews.commands.index:index", "This node's indexes: status, snapshot, restore."),
    "translate": ("nlp_worker.commands:translate", "Translate lines (es⇄en), one out per line in."),
    "classify": ("nlp_worker.commands:classify", "Covid relevance and topics for JSONL articles."),
    "serve": ("covidnews.commands.serve:serve", "Serve the search API (gunicorn)."),
    "apikey": ("covidnews.commands.apikey:apikey", "Create, list or revoke API keys."),
    "models": (
        "covidnews.commands.models:models",
        "Pull Hugging Face models (ml backends) or list the models dir.",
    ),
    "bot": ("bot.commands:bot", "Post stories to X, Mastodon, Bluesky (run-once, digest, outbox)."),
    "train-classifier": (
        "nlp_worker.commands:train_classifier",
        "Rebuild the classifier artefact.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            target = COMMANDS[cmd_name][0]
            module_name, attr = target.split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command), target
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help for the listing comes from COMMANDS, so `--help` imports nothing.
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="covidnews")
def main() -> None:
    """covidnews: Spanish-language Covid-19 news, aggregated, translated and searchable.

    Settings come from COVIDNEWS_* environment variables or a .env file
    (COVIDNEWS_DATA_DIR, COVIDNEWS_DATABASE_URL, COVIDNEWS_BROKER_URL, ...).
    """


def run(*args: Any) -> None:  # pragma: no cover - convenience for `python -m covidnews`
    main(*args)
