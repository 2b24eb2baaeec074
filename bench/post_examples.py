"""Composed posts for real shared articles, per platform, with their lengths (docs/quality.md).

The articles: the first 10 (by corpus id) of the labelled FakeDeS Covid split that are Covid, a
true news item, have a headline and a link, and come from a news outlet (not a social network
post). Each goes through what the product does: the extractive summary (``nlp_worker.summarize``
with the pysbd splitter), the bot's text (:func:`bot.text.text_for`: headline, a summary
sentence that adds to it, hashtag, outlet, link) composed for X, Mastodon and Bluesky in Spanish,
and for X in English from the Apertium translation of the headline and summary (when Apertium is
installed). The topic is the corpus label's first topic (the classifier is measured elsewhere).

    python -m bench.post_examples                    # JSON: every post, its length and limit
    python -m bench.post_examples --markdown out.md  # the section pasted into docs/quality.md

Printed checks: every post within its platform's limit, no word cut (the headline whole or cut
between words with "…"), and how often a context sentence made it in per platform.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from bench._common import SHARED
from bot.select import Story
from bot.text import PLATFORMS, compose, text_for
from covidnews.search.results import ArticleView, SourceView, TranslationView
from covidnews.text import ELLIPSIS

N = 10
SOCIAL = {"facebook", "twitter", "instagram", "whatsapp", "youtube", "tiktok"}


def articles(n: int = N) -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for line in (SHARED / "fakedes" / "labelled_dev.jsonl").open(encoding="utf-8")
    ]
    keep = [
        r
        for r in rows
        if r.get("covid")
        and r.get("label") == "true"
        and (r.get("headline") or "").strip()
        and (r.get("link") or "").startswith("http")
        and r.get("source", "").strip().lower() not in SOCIAL
    ]
    return sorted(keep, key=lambda r: int(r["id"]))[:n]


def view_of(row: dict[str, Any], summary: str, en: tuple[str, str] | None) -> ArticleView:
    from datetime import UTC, datetime

    source = SourceView(0, "s", row["source"], None, "es", "outlet", None)
    view = ArticleView(
        id=int(row["id"]),
        url=row["link"],
        title=" ".join(row["headline"].split()),
        text=row["text"],
        summary=summary,
        language="es",
        country=None,
        published_at=datetime(2021, 1, 1, tzinfo=UTC),
        modified_at=None,
        fetched_at=datetime(2021, 1, 1, tzinfo=UTC),
        authors=[],
        section=None,
        image_url=None,
        is_covid=True,
        covid_score=None,
        story_id=int(row["id"]),
        source=source,
        topics=[(row["topics"][0], 1.0)] if row.get("topics") else [],
    )
    if en is not None:
        view.translations["en"] = TranslationView("en", en[0], en[1], None, "apertium")
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", type=Path, help="also write the docs/quality.md section")
    args = parser.parse_args()
    from nlp_worker.backends.sentences import split_sentences
    from nlp_worker.summarize import summarize

    translator = None
    if shutil.which("apertium"):
        from nlp_worker.backends.translate import get_translator

        translator = get_translator("apertium")
    out: list[dict[str, Any]] = []
    for row in articles():
        summary = summarize(
            row["text"], title=row["headline"], split=lambda t: list(split_sentences(t, "es"))
        )
        en = None
        if translator is not None:
            title_en, summary_en = translator.translate([row["headline"], summary], "es", "en")
            en = (" ".join(title_en.split()), summary_en)
        story = Story(id=int(row["id"]), article=view_of(row, summary, en), outlets=[row["source"]])
        posts = {}
        for channel in ("x", "mastodon", "bluesky", "x-en"):
            language = "en" if channel.endswith("-en") else "es"
            st = text_for(story, language)
            if st is None:
                continue
            platform = PLATFORMS[channel.split("-")[0]]
            post = compose(st, platform)
            head = post.text.split("\n\n")[0]
            whole = head == st.headline
            cut_ok = whole or (
                head.endswith(ELLIPSIS)
                and st.headline.split()[: len(head[:-1].split()) - 1] == head[:-1].split()[:-1]
            )
            posts[channel] = {
                "text": post.text,
                "length": post.length,
                "limit": platform.limit,
                "headline_whole": whole,
                "no_word_cut": cut_ok,
                "context": any(c in post.text for c in st.context),
                "context_candidates": len(st.context),
            }
        out.append(
            {"id": row["id"], "source": row["source"], "title": row["headline"], "posts": posts}
        )
    checks = {
        channel: {
            "posts": sum(1 for a in out if channel in a["posts"]),
            "within_limit": all(
                a["posts"][channel]["length"] <= a["posts"][channel]["limit"]
                for a in out
                if channel in a["posts"]
            ),
            "no_word_cut": all(
                a["posts"][channel]["no_word_cut"] for a in out if channel in a["posts"]
            ),
            "with_context_sentence": sum(
                1 for a in out if channel in a["posts"] and a["posts"][channel]["context"]
            ),
            "max_length": max(
                (a["posts"][channel]["length"] for a in out if channel in a["posts"]), default=0
            ),
        }
        for channel in ("x", "mastodon", "bluesky", "x-en")
    }
    print(json.dumps({"checks": checks, "articles": out}, ensure_ascii=False, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(out, checks), encoding="utf-8")


RULES = {
    "x": "X, weighted length (URLs 23)",
    "mastodon": "Mastodon, characters (URLs 23)",
    "bluesky": "Bluesky, graphemes as shown",
    "x-en": "X in English, weighted length (URLs 23)",
}


def markdown(out: list[dict[str, Any]], checks: dict[str, Any]) -> str:
    lines = []
    for n, a in enumerate(out, 1):
        lines.append(f"**{n}. {a['source']}** (FakeDeS id {a['id']})\n")
        for channel, p in a["posts"].items():
            lines.append(f"{RULES[channel]}: **{p['length']}/{p['limit']}**\n")
            lines.append("```text\n" + p["text"] + "\n```\n")
    summary = ", ".join(f"{c} {v['with_context_sentence']}/{v['posts']}" for c, v in checks.items())
    lines.append(f"Posts with a summary sentence besides the headline: {summary}.\n")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
