"""Post texts: each platform's counting rules, fitting without cutting words, Bluesky facets."""

from __future__ import annotations

import pytest

from bot.text import (
    PLATFORMS,
    StoryText,
    adds_to,
    bluesky_length,
    compose,
    context_for,
    first_sentence,
    hashtag,
    mastodon_length,
    sentences,
    x_length,
)
from covidnews.text import shorten

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
        head = post.text.split("\n\n")[0].removeprefix(story.prefix)
        original = story.headline.split()
        if head.endswith("…"):
            kept = head[:-1].split()
            assert kept[:-1] == original[: len(kept) - 1]
            assert original[len(kept) - 1].startswith(kept[-1])  # only trailing punctuation
            assert len(kept) < len(original)
        else:
            assert head.split() == original
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


WORDS = [
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


def test_a_headline_too_long_alone_is_cut_at_a_word_with_an_ellipsis() -> None:
    long = " ".join(WORDS * 12) + "."
    story = StoryText(
        long,
        URL,
        context=("Una frase de contexto que no cabe.",),
        hashtags=("Vacunas",),
        outlet="El Universal",
        others=3,
    )
    _check_fits(story)
    x = compose(story, "x")
    head, footer = x.text.split("\n\n")
    assert head.endswith("…") and head[:-1].split() == long.split()[: len(head[:-1].split())]
    assert footer == f"vía El Universal\n{URL}"  # hashtag and "+3 medios" went first
    assert "contexto" not in x.text
    assert x.length > 260  # filled, not over-trimmed


def test_headline_first_then_a_sentence_that_adds_to_it_then_the_footer() -> None:
    story = StoryText(
        "Llega a México un cargamento de vacunas",
        URL,
        context=("Las 219,375 dosis de Pfizer se repartirán entre hospitales de nueve estados.",),
        hashtags=("Vacunas",),
        outlet="El Universal",
        others=2,
    )
    for platform in ("x", "mastodon", "bluesky"):
        post = compose(story, platform)
        head, context, footer = post.text.split("\n\n")
        assert head == "Llega a México un cargamento de vacunas"
        assert context.startswith("Las 219,375 dosis de Pfizer")
        assert footer.startswith("#Vacunas · vía El Universal (+2 medios)\n")


def test_the_optional_parts_go_first_sentence_then_hashtag_then_others() -> None:
    headline = " ".join(WORDS[:9])  # 56 characters
    long_context = " ".join(["Datos"] * 40) + "."  # 240 characters: never fits on X with all
    story = StoryText(
        headline, URL, context=(long_context,), hashtags=("Vacunas",), outlet="El País", others=4
    )
    x = compose(story, "x")
    assert x.text == f"{headline}\n\n#Vacunas · vía El País (+4 medios)\n{URL}"
    mastodon = compose(story, "mastodon")  # 500: everything fits
    assert long_context in mastodon.text and "#Vacunas" in mastodon.text
    # The context sentence is kept in preference to the hashtag when only one of them fits.
    fits_without_tag = " ".join(["Datos"] * 30) + "."
    x2 = compose(
        StoryText(
            headline,
            URL,
            context=(fits_without_tag,),
            hashtags=("Vacunas",),
            outlet="El País",
            others=4,
        ),
        "x",
    )
    assert fits_without_tag in x2.text
    assert x2.length <= 280
    # A second candidate sentence that fits is used when the first does not.
    x3 = compose(
        StoryText(
            headline,
            URL,
            context=(long_context, "Se vacunó a 40.000 personas."),
            hashtags=("Vacunas",),
        ),
        "x",
    )
    assert "Se vacunó a 40.000 personas." in x3.text and "#Vacunas" in x3.text


def test_a_context_sentence_must_add_to_the_headline() -> None:
    headline = "El Gobierno aprueba la vacuna de Pfizer contra la covid-19"
    assert not adds_to(headline, "El Gobierno aprobó la vacuna de Pfizer contra la covid.")
    assert not adds_to(headline, "La vacuna de Pfizer, aprobada.")
    assert adds_to(
        headline, "Las primeras dosis llegarán a los hospitales de Madrid y Barcelona en enero."
    )
    summary = (
        "El Gobierno aprueba la vacuna de Pfizer contra la covid-19. "
        "Las primeras dosis llegarán a los hospitales de Madrid y Barcelona en enero. "
        "Sanidad prevé vacunar a dos millones de personas antes de marzo. "
        "El resto, después"
    )
    assert context_for(headline, summary) == (
        "Las primeras dosis llegarán a los hospitales de Madrid y Barcelona en enero.",
        "Sanidad prevé vacunar a dos millones de personas antes de marzo.",
    )
    assert context_for(headline, None) == ()
    # Sentences glued together in scraped text are two sentences; abbreviations and domains
    # are not sentence ends.
    assert sentences("el joven de 26 años.Mientras tanto, en Singapur. Los EE.UU. y gob.mx.") == [
        "el joven de 26 años.",
        "Mientras tanto, en Singapur.",
        "Los EE.UU. y gob.mx.",
    ]


def test_accents_emoji_and_several_urls() -> None:
    context = (
        f"Familias {FAMILY} celebran: vacunación en Ñuñoa 🇨🇱, más datos en "
        "https://minsal.cl/vacunacion y https://www.gob.cl/yomevacuno/ según el Minsal."
    )
    story = StoryText(
        f"Vacunación escolar en Ñuñoa {FAMILY} 🇨🇱 " * 8,
        URL,
        context=(context,),
        hashtags=("Educación",),
        outlet="Diario Ñ",
        others=1,
    )
    _check_fits(story)
    short = StoryText(
        "Vacunación escolar en Ñuñoa",
        URL,
        context=(context,),
        hashtags=("Educación",),
        outlet="Diario Ñ",
    )
    b = compose(short, "bluesky")
    tags = [f for f in b.facets if f["features"][0]["$type"].endswith("#tag")]
    raw = b.text.encode()
    assert raw[tags[0]["index"]["byteStart"] : tags[0]["index"]["byteEnd"]] == "#Educación".encode()
    assert context in b.text


def test_headline_exactly_at_the_limit_is_kept_whole() -> None:
    base = StoryText("x", URL, hashtags=("Casos",), outlet="El País")
    overhead = x_length(compose(base, "x").text) - 1
    words: list[str] = []
    while len(" ".join(words)) < 280 - overhead - 12:
        words.append("ñandú")
    headline = " ".join(words)
    headline += " " + "a" * (280 - overhead - len(headline) - 1)
    exact = StoryText(headline, URL, hashtags=("Casos",), outlet="El País")
    post = compose(exact, "x")
    assert post.length == 280 and "…" not in post.text and "#Casos" in post.text
    over = StoryText(headline + "b", URL, hashtags=("Casos",), outlet="El País")
    post = compose(over, "x")  # the whole headline still fits once the hashtag goes
    assert post.length <= 280 and "…" not in post.text and "#Casos" not in post.text
    _check_fits(over)


def test_outlet_goes_before_the_headline_is_cut_short() -> None:
    outlet = " ".join(["Periódico"] * 25)
    story = StoryText(
        "Una frase corta sobre vacunas.", URL, hashtags=("Vacunas",), outlet=outlet, others=2
    )
    post = compose(story, "x")
    assert post.text == f"Una frase corta sobre vacunas.\n\n{URL}"
    with pytest.raises(ValueError, match="empty"):
        compose(StoryText("  ", URL), "x")


def test_card_descriptions_are_cut_between_words() -> None:
    text = " ".join(["vacunación"] * 40)
    short = shorten(text, 300)
    assert len(short) <= 300 and short.endswith("vacunación…")
    assert shorten("  Una   frase. ", 300) == "Una frase."
