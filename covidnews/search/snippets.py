"""Snippets from the engine: tantivy's snippet generator per language field.

For each hit, the stored title and body of every language field (original and translations)
are candidates; a generator made for one field highlights only the query terms of that field —
the query as that field's analyzer saw it — so an English query word never marks a Spanish word
that merely shares a stem. The snippet comes from the field where the most distinct query words
matched (bodies before titles, the article's own language first on a tie).
"""

from __future__ import annotations

import html

import tantivy

from covidnews.search.keyword import SCHEMA, TEXT_LANGS, decode, text_lang

SNIPPET_CHARS = 240
#: Candidate fields in order of preference on a tie.
FIELDS = [f"body_{lang}" for lang in TEXT_LANGS] + [f"title_{lang}" for lang in TEXT_LANGS]


def render(text: str, snippet: tantivy.Snippet) -> tuple[str, int]:
    """(HTML-escaped fragment with ``<mark>`` around highlights, distinct words marked).

    Tantivy's ranges are UTF-8 byte offsets."""
    fragment = snippet.fragment()
    if not fragment:
        return "", 0
    raw = fragment.encode("utf-8")
    rng = snippet.fragment_range()
    total = len(text.encode("utf-8"))
    parts = ["…" if rng.start > 0 else ""]
    cursor = 0
    words = set()
    for h in snippet.highlighted():
        if h.start < cursor:
            continue
        parts.append(html.escape(raw[cursor : h.start].decode("utf-8", "replace")))
        word = raw[h.start : h.end].decode("utf-8", "replace")
        parts += ["<mark>", html.escape(word), "</mark>"]
        words.add(word.casefold())
        cursor = h.end
    parts.append(html.escape(raw[cursor:].decode("utf-8", "replace")))
    rest = text.encode("utf-8")[rng.end :].decode("utf-8", "replace")
    if rest and not any(c.isalnum() for c in rest):
        parts.append(html.escape(rest.rstrip()))  # closing punctuation, not a cut
    else:
        parts.append("…" if rng.end < total else "")
    return "".join(parts), len(words)


def snippets(
    searcher: tantivy.Searcher, query: tantivy.Query, addrs: dict[int, tantivy.DocAddress | None]
) -> dict[int, tuple[str, str | None]]:
    """Article id -> (snippet HTML, language of the text it came from) for these documents; an
    article none of whose fields matched is left out."""
    generators: dict[str, tantivy.SnippetGenerator] = {}
    out: dict[int, tuple[str, str | None]] = {}
    wanted = [(a, addr) for a, addr in addrs.items() if addr is not None]
    if not wanted:
        return out
    languages = searcher.fast_field_values("language", [addr for _, addr in wanted])
    for (article_id, addr), language in zip(wanted, languages, strict=True):
        doc = searcher.doc(addr)
        original = decode(int(language or 0))
        own = text_lang(original)
        fields = sorted(FIELDS, key=lambda f: (f.startswith("title"), not f.endswith(own)))
        best: tuple[int, str, str] | None = None
        for name in fields:
            if best is not None and name.startswith("title"):
                break  # a body matched: bodies come first, a title adds nothing to show
            text = doc.get_first(name)
            if not text:
                continue
            gen = generators.get(name)
            if gen is None:
                gen = tantivy.SnippetGenerator.create(searcher, query, SCHEMA, name)
                gen.set_max_num_chars(SNIPPET_CHARS)
                generators[name] = gen
            rendered, n = render(text, gen.snippet_from_doc(doc))
            if n and (best is None or n > best[0]):
                best = (n, rendered, name)
        if best is not None:
            lang = best[2].rsplit("_", 1)[1]
            out[article_id] = (best[1], original if lang == "xx" else lang)
    return out
