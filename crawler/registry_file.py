"""Writing discovered feeds and sitemaps back into a registry file, comments and order kept.

``covidnews sources discover --write`` adds what discovery found to each source's ``feeds`` and
``sitemaps`` (after the ones already listed; a missing list is added after ``homepage``), drops
the ``no_feed`` reason of a source that now has one, and leaves every other byte of the file as
it was: ruamel.yaml's round-trip mode keeps comments, key order, quoting and flow lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: where a new list goes: after the first of these keys the entry has
_AFTER = ("sitemaps", "feeds", "homepage", "scope", "kind", "language", "country", "domains")


def _yaml() -> Any:  # ruamel's YAML object (untyped)
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def add_endpoints(path: str | Path, additions: Mapping[str, Mapping[str, Sequence[str]]]) -> int:
    """Add ``{source name: {"feeds": [...], "sitemaps": [...]}}`` to the registry at ``path``;
    returns how many URLs were added (URLs already listed are skipped)."""
    from ruamel.yaml.comments import CommentedSeq

    path = Path(path)
    yaml = _yaml()
    doc = yaml.load(path.read_text(encoding="utf-8"))
    added = 0
    for entry in doc.get("sources") or []:
        wanted = additions.get(str(entry.get("name")))
        if not wanted:
            continue
        for key in ("feeds", "sitemaps"):
            new = [u for u in wanted.get(key, ()) if u not in (entry.get(key) or [])]
            if not new:
                continue
            if key not in entry or entry[key] is None:
                after = next((k for k in _AFTER if k in entry), None)
                position = list(entry).index(after) + 1 if after else len(entry)
                entry.insert(position, key, CommentedSeq())
            entry[key].extend(new)
            added += len(new)
        if (entry.get("feeds") or entry.get("sitemaps")) and "no_feed" in entry:
            del entry["no_feed"]
    if added:
        with path.open("w", encoding="utf-8") as out:
            yaml.dump(doc, out)
    return added
