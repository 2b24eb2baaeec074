"""The folding variants (covidnews.text) and the shared file helpers (covidnews.files)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from covidnews.files import atomic_write, file_lock
from covidnews.text import fold, fold_latin, fold_search, fold_words

ARROW = "a\u20d7"  # "a" + COMBINING RIGHT ARROW ABOVE (a mark outside the Latin block)


def test_fold_drops_case_and_every_mark() -> None:
    assert fold("Vacunación ÑANDÚ Pingüino") == "vacunacion nandu pinguino"
    assert fold("Straße") == "strasse"  # case folding, not lower()
    assert fold(ARROW) == "a"


def test_the_stored_variants_keep_their_own_behaviour() -> None:
    # Simhashes were computed dropping only the Latin block: other marks stay.
    assert fold_latin("Vacunación") == "vacunacion" and fold_latin(ARROW) == ARROW
    # The keyword index folds marks of every block, then case.
    assert fold_search("VACUNACIÓN") == "vacunacion" and fold_search(ARROW) == "a"
    assert fold_search("Straße") == "strasse"


def test_fold_words_for_short_strings() -> None:
    assert fold_words("  J. Pérez-López ") == "j perez lopez"
    assert fold_words("¡Última hora!") == "ultima hora"


def _hold(path: str, seconds: float, started: object) -> None:
    with file_lock(Path(path)):
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "writer.lock"
    started = multiprocessing.Event()
    other = multiprocessing.Process(target=_hold, args=(str(lock), 1.0, started))
    other.start()
    assert started.wait(30)
    begun = time.monotonic()
    with file_lock(lock):
        waited = time.monotonic() - begun
    other.join(30)
    assert waited > 0.5  # it had to wait for the other process to let go


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
