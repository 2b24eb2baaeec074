from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from covidnews.fingerprint import content_hash, hamming, simhash


def _texts(shared: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in (shared / "fakedes" / "train.jsonl").open()]
    return [r["text"] for r in rows if len(r["text"].split()) > 200][:n]


def test_content_hash_ignores_formatting_only() -> None:
    a = content_hash("Vacunas  llegan", "Primer párrafo.\n\nSegundo   párrafo. ")
    assert a == content_hash("Vacunas llegan", "Primer párrafo. Segundo párrafo.")
    assert a != content_hash("Vacunas llegan", "Primer párrafo. Segundo párrafo cambiado.")
    # NFC vs NFD spelling of the same accented text is the same content.
    assert content_hash("", "vacunación") == content_hash("", "vacunacio\u0301n")


def test_simhash_groups_edited_copies_and_separates_different_stories(shared_data: Path) -> None:
    texts = _texts(shared_data, 30)
    rng = random.Random(7)
    for text in texts[:10]:
        words = text.split()
        # A wire copy reprinted with light edits: a new lead sentence, a few words changed.
        edited = ["(EFE)", "Madrid.", *words]
        for i in rng.sample(range(len(edited)), k=len(edited) // 50):
            edited[i] = edited[i].upper()  # case is folded
        for i in rng.sample(range(len(edited)), k=3):
            edited[i] = "modificado"
        assert hamming(simhash(text), simhash(" ".join(edited))) <= 12
    far = [hamming(simhash(a), simhash(b)) for a, b in itertools.pairwise(texts)]
    assert min(far) >= 18, far


def test_simhash_fits_signed_bigint() -> None:
    for text in ["", "uno", "uno dos", "Covid-19 en México " * 50]:
        value = simhash(text)
        assert -(2**63) <= value < 2**63
