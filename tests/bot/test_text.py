"""Post texts: each platform's counting rules, fitting without cutting words, Bluesky facets."""

from __future__ import annotations

import pytest

from bot.text import (
    PLATFORMS,
    StoryText,
    bluesky_length,
    compose,
    first_sentence,
    hashtag,
    mastodon_length,
    x_length,
)

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # one ZWJ sequence: 7 code points, 1 grapheme
URL = "https://www.eluniversal.com.mx/nacion/llega-a-mexico-cargamento-con-vacunas-de-pfizer-contra-covid-19"


def test_x_weighting() -> None:
    assert x_length("vacunación ñandú ÁÉÍÓÚ ü") == 24  # Latin-1/Latin Extended weigh 1
    assert x_length("e\u0301") == 1  # NFC first
    assert x_length(FAMILY) == 2  # an emoji sequence counts 2
    assert x_length("👍🏽") == 2 and x_length("🇲🇽") == 2 and x_length("1️⃣") == 2
    assert x_length("日本") == 4  # CJK weighs 2
    assert x_length("“citas” — …") == 12  # U+2010–U+201F weigh 1; … (U+2026) weighs 2
    assert x_length(URL) == 23 and x_length("ver " + URL + ".") == 4 + 23 + 1
    assert x_length(f"{URL} y https://b.example/x") == 23 + 3 + 23  # every URL counts 23
    assert x_length("en salud.gob.mx hoy") == 3 + 23 + 4  # X links bare domains
    assert x_length("EE.UU. y p.ej. no") == 17  # not domains (no such TLD)


def test_mastodon_and_bluesky_count_graphemes() -> None:
    assert mastodon_length(FAMILY + " ñ") == 3
    assert mastodon_length("ver " + URL) == 4 + 23
    assert mastodon_length("salud.gob.mx") == 12  # Mastodon links only URLs with a scheme
    assert bluesky_length(FAMILY + "🇲🇽 é") == 4
    assert bluesky_length("e\u0301") == 1


def test_first_sentence_and_hashtags() -> None:
    assert first_sentence("Llegan  vacunas. Se aplicarán hoy.") == "Llegan vacunas."
    assert first_sentence("¿Qué pasa? ¡Nada!") == "¿Qué pasa?"
    assert hashtag("vaccines", "es") == "Vacunas" and hashtag("cases", "es") == "Casos"
    assert hashtag("economy", "es") == "Economía" and hashtag("vaccines", "en") == "Vaccines"
    assert hashtag(None, "es") == "COVID19"


def _check_fits(story: StoryText) -> None:
    for platform in PLATFORMS.values():
        post = compose(story, platform)
        assert post.length == platform.length(post.text) <= platform.limit, platform.name
        body = post.text.split("\n\n")[0].removeprefix(story.prefix)
        original = story.summary.split()
        if body.endswith("…"):
            kept = body[:-1].split()
            assert kept[:-1] == original[: len(kept) - 1]
            assert original[len(kept) - 1].startswith(kept[-1])  # only trailing punctuation
            assert len(kept) < len(original)
        else:
            assert body.split() == original
        if platform.name == "bluesky":
            raw = post.text.encode("utf-8")
            for facet in post.facets:
                piece = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()
                feature = facet["features"][0]
                if feature["$type"].endswith("#tag"):
                    assert piece == "#" + feature["tag"]
                else:
                    assert feature["uri"] == story.url
                    assert piece.rstrip("…") in story.url
        else:
            assert story.url in post.text


def test_very_long_title_drops_whole_words() -> None:
    words = [
        "La",
        "campaña",
        "de",
        "vacunación",
        "contra",
        "la",
        "Covid-19",
        "avanza",
        "en",
        "América",
        "Latina",
        "con",
        "dosis",
    ]
    long = " ".join(words * 12) + "."
    story = StoryText(long, URL, hashtags=("Vacunas",), outlet="El Universal", others=3)
    _check_fits(story)
    x = compose(story, "x")
    assert x.text.split("\n\n")[0].endswith("…")
    assert "#Vacunas · vía El Universal (+3 medios)" in x.text
    assert x.length > 260  # filled, not over-trimmed


def test_accents_emoji_and_several_urls() -> None:
    summary = (
        f"Familias {FAMILY} celebran: vacunación en Ñuñoa 🇨🇱, más datos en "
        "https://minsal.cl/vacunacion y https://www.gob.cl/yomevacuno/ según el Minsal. " * 6
    ).strip()
    story = StoryText(summary, URL, hashtags=("Educación",), outlet="Diario Ñ", others=1)
    _check_fits(story)
    b = compose(story, "bluesky")
    tags = [f for f in b.facets if f["features"][0]["$type"].endswith("#tag")]
    raw = b.text.encode()
    assert raw[tags[0]["index"]["byteStart"] : tags[0]["index"]["byteEnd"]] == "#Educación".encode()


def test_summary_exactly_at_the_limit_is_kept_whole() -> None:
    base = StoryText("x", URL, hashtags=("Casos",), outlet="El País")
    overhead = x_length(compose(base, "x").text) - 1
    words: list[str] = []
    while len(" ".join(words)) < 280 - overhead - 12:
        words.append("ñandú")
    summary = " ".join(words)
    summary += " " + "a" * (280 - overhead - len(summary) - 1)
    exact = StoryText(summary, URL, hashtags=("Casos",), outlet="El País")
    post = compose(exact, "x")
    assert post.length == 280 and "…" not in post.text
    over = StoryText(summary + "b", URL, hashtags=("Casos",), outlet="El País")
    post = compose(over, "x")
    assert post.length <= 280 and post.text.split("\n\n")[0].endswith("ñandú…")
    _check_fits(over)


def test_footer_goes_before_the_summary_when_space_runs_out() -> None:
    outlet = " ".join(["Periódico"] * 25)
    story = StoryText(
        "Una frase corta sobre vacunas.", URL, hashtags=("Vacunas",), outlet=outlet, others=2
    )
    post = compose(story, "x")
    assert post.text.startswith("Una frase corta sobre vacunas.")
    assert post.length <= 280
    with pytest.raises(ValueError, match="empty"):
        compose(StoryText("  ", URL), "x")
