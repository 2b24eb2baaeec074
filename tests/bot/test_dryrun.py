"""Dry-run over the processed test corpus and the `covidnews bot` command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bot.text import PLATFORMS
from covidnews.store import Store
from tests.bot.conftest import add_story
from tests.conftest import Corpus, run_cli


def _copy(corpus: Corpus, tmp_path: Path) -> str:
    src = sqlite3.connect(corpus.url.removeprefix("sqlite:///"))
    dst_path = tmp_path / "covidnews.db"
    dst = sqlite3.connect(dst_path)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{dst_path}"


def test_dry_run_over_the_processed_corpus_writes_a_sensible_outbox(
    corpus: Corpus, tmp_path: Path
) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_DATABASE_URL=_copy(corpus, tmp_path),
        COVIDNEWS_BOT_CHANNELS="x,mastodon,bluesky,x-en",
    )
    out = run_cli("bot", "run-once", env=env)
    assert out.returncode == 0, out.stderr
    assert "x (dry-run): 3 posted" in out.stdout
    assert "bluesky (dry-run): 3 posted" in out.stdout
    again = run_cli("bot", "run-once", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert all(len(c["posted"]) == 3 for c in json.loads(again.stdout).values())
    digest = run_cli("bot", "digest", "--date", "2021-01-30", env=env)
    assert digest.returncode == 0, digest.stderr

    lines = (tmp_path / "var/bot/outbox.jsonl").read_text("utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert {e["status"] for e in entries} == {"dry_run"}
    for e in entries:
        platform = PLATFORMS[e["channel"].split("-")[0]]
        assert platform.length(e["text"]) <= platform.limit
        assert e["kind"] == "digest" or e["link"] in e["text"] or platform.name == "bluesky"
    stories = [e for e in entries if e["kind"] == "story"]
    per_channel = {
        c: [e for e in stories if e["channel"] == c] for c in ("x", "mastodon", "bluesky", "x-en")
    }
    assert all(len(v) == 6 for v in per_channel.values())
    for channel, posts in per_channel.items():
        keys = [e["dedup_key"] for e in posts]
        assert len(set(keys)) == 6, channel
    first = per_channel["x"][0]["text"]
    assert "#" in first and "vía " in first and "\nhttps://" in first
    assert per_channel["x-en"][0]["language"] == "en" and "via " in per_channel["x-en"][0]["text"]
    # The digest of the day of the story carried by three outlets leads with it.
    thread = [e for e in entries if e["kind"] != "story" and e["channel"] == "mastodon"]
    assert thread[0]["text"].startswith("Covid-19, 30 de enero de 2021: la")
    assert "\nTemas: " in thread[0]["text"]
    assert [t["reply_to_id"] for t in thread[1:]] == [t["id"] for t in thread[:-1]]
    assert "(+2 medios)" in thread[1]["text"] and thread[1]["text"].startswith("1/")
    en_thread = [e for e in entries if e["kind"] != "story" and e["channel"] == "x-en"]
    assert "(+2 outlets)" in en_thread[1]["text"]
    listing = run_cli("bot", "outbox", "--channel", "x", "--limit", "2", env=env)
    assert listing.returncode == 0 and listing.stdout.startswith("#")
    if os.environ.get("COVIDNEWS_BOT_EXCERPT"):  # for the README
        Path(os.environ["COVIDNEWS_BOT_EXCERPT"]).write_text("\n".join(lines), "utf-8")


def test_cli_run_once_and_outbox(cli_env: dict[str, str], db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    add_story(
        store,
        title="Bajan los contagios en Lima",
        summary="Bajan los contagios en Lima. El Minsa reporta 1.200 casos nuevos y cierra dos "
        "hospitales temporales.",
        topic="cases",
    )
    store.close()
    env = dict(cli_env, COVIDNEWS_BOT_CHANNELS="mastodon")
    out = run_cli("bot", "run-once", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "mastodon (dry-run): 1 posted, 0 duplicate, 0 to retry, 0 failed, 0 unknown"
    )
    listed = run_cli("bot", "outbox", "--json", env=env)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["status"] == "dry_run"
    assert row["text"].startswith("Bajan los contagios en Lima\n\nEl Minsa reporta 1.200 casos")
    assert "#Casos" in row["text"]
    bad = run_cli("bot", "run-once", env=dict(env, COVIDNEWS_BOT_CHANNELS="myspace"))
    assert bad.returncode == 2 and "COVIDNEWS_BOT_CHANNELS" in bad.stderr
