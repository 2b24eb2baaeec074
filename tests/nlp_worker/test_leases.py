"""Leases on NLP work and the sweep (nlp_worker.leases), on both backends: a claim takes only
what nobody live holds, a heartbeat keeps a lease alive, a worker that lost its lease writes
nothing, and the sweep picks exactly the articles nobody will otherwise process. The same
machinery with real worker, beat and Redis processes is in test_celery.py."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from covidnews.ingest import parse_record
from covidnews.schema import Article, StageRun, utcnow
from covidnews.settings import load_settings
from covidnews.store import Store
from nlp_worker import leases
from nlp_worker.process import pending_ids, process_ids
from nlp_worker.stages import Backends, process_leased, run_batch


def stored(store: Store, n: int) -> list[int]:
    records = [
        parse_record(
            {
                "url": f"https://leases.example/{i}",
                "title": f"Vacunación contra la covid-19 en la región {i}",
                "text": f"Las autoridades sanitarias de la región {i} ampliaron la vacunación "
                "contra la covid-19 a los mayores de 60 años, informó el ministerio de Salud.",
            }
        )
        for i in range(n)
    ]
    return store.upsert_articles(records).inserted


def row(store: Store, article_id: int) -> Any:
    with store.session() as s:
        return s.execute(
            select(Article.state, Article.lease_owner, Article.lease_until).where(
                Article.id == article_id
            )
        ).one()


def expire(store: Store, ids: list[int]) -> None:
    """What the clock does to a killed worker's lease."""
    with store.session() as s:
        s.execute(
            update(Article)
            .where(Article.id.in_(ids))
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def test_a_claim_takes_pending_and_expired_work_never_a_live_lease(store: Store) -> None:
    a, b, c = stored(store, 3)
    assert leases.claim(store, [a, b], "worker-A", 60) == [a, b]
    assert row(store, a)[:2] == ("processing", "worker-A")
    # B asks for all three: the two A holds stay A's.
    assert leases.claim(store, [a, b, c], "worker-B", 60) == [c]
    # A's task retried after an error takes back what it holds.
    assert leases.claim(store, [a], "worker-A", 60) == [a]
    # A dies: once its lease expires, its work can be taken over.
    expire(store, [a, b])
    assert sorted(leases.claim(store, [a, b], "worker-B", 60)) == [a, b]
    assert row(store, a)[1] == "worker-B"


def test_the_heartbeat_keeps_a_lease_alive_while_the_work_runs(store: Store) -> None:
    ids = stored(store, 2)
    assert leases.claim(store, ids, "worker-A", 2) == ids
    with leases.Heartbeat(store, ids, "worker-A", 2):
        time.sleep(3.5)  # longer than the lease: only renewals keep it
        assert leases.claim(store, ids, "worker-B", 2) == []
        assert row(store, ids[0])[2] > utcnow()
    time.sleep(2.5)  # the heartbeat stopped with the block: the lease runs out
    assert leases.claim(store, ids, "worker-B", 2) == ids


def test_a_worker_that_lost_its_lease_writes_nothing(
    store: Store, backends: Backends, tmp_path: Path
) -> None:
    ids = stored(store, 3)
    assert leases.claim(store, ids, "worker-A", 60) == ids
    expire(store, ids[:1])  # A is slow (its heartbeat could not reach the database)
    assert leases.claim(store, ids[:1], "worker-B", 60) == ids[:1]
    with pytest.raises(leases.LeaseLost) as lost:
        run_batch(store, ids, backends, owner="worker-A")
    assert lost.value.lost == ids[:1]
    with store.session() as s:  # the whole batch rolled back: no stage ran for anyone
        assert s.scalar(select(func.count()).select_from(StageRun)) == 0
    assert row(store, ids[0])[:2] == ("processing", "worker-B")

    settings = load_settings(data_dir=tmp_path / "var")
    report = process_leased(store, ids[1:], backends, settings, "worker-A")  # A still holds these
    assert sorted(report.done) == ids[1:] and report.released == []
    report = process_leased(store, ids[:1], backends, settings, "worker-B")
    assert report.done == ids[:1]
    with store.session() as s:
        attempts = list(s.scalars(select(StageRun.attempts)))
        assert attempts and set(attempts) == {1}  # each stage once, for every article
        leased = s.scalar(select(func.count()).where(Article.lease_owner.is_not(None)))
        assert leased == 0  # results written, leases cleared


def test_a_lease_taken_over_mid_batch_releases_the_rest_unprocessed(
    store: Store, backends: Backends, tmp_path: Path
) -> None:
    """A sweep takes one article over while the batch runs (A's heartbeat could not reach the
    database in time): A writes nothing and gives the others back to be handed over again."""
    settings = load_settings(data_dir=tmp_path / "var")
    ids = stored(store, 3)
    taken = False

    def detect_language(*args: Any, **kwargs: Any) -> Any:
        nonlocal taken
        if not taken:  # the first stage of A's batch is running: B takes article 0 over
            taken = True
            expire(store, ids[:1])
            assert leases.claim(store, ids[:1], "worker-B", 60) == ids[:1]
        return backends.detect_language(*args, **kwargs)

    racing = dataclasses.replace(backends, detect_language=detect_language)
    report = process_leased(store, ids, racing, settings, "worker-A")
    assert taken and report.done == [] and report.released == ids[1:]
    assert [row(store, i)[:2] for i in ids] == [
        ("processing", "worker-B"),
        ("pending", None),
        ("pending", None),
    ]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(StageRun)) == 0
    assert leases.due(store, 600) == ids[1:]  # due for hand-over at once


def test_process_leaves_what_a_live_process_holds_and_takes_over_what_expired(
    store: Store, backends: Backends, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "var", nlp_batch_size=2)
    ids = stored(store, 4)
    leases.claim(store, ids[:1], "live", 600)
    leases.claim(store, ids[1:2], "killed", 600)
    expire(store, ids[1:2])
    assert pending_ids(store) == ids[1:]  # the one-machine sweep
    report = process_ids(store, settings, pending_ids(store), backends=backends)
    assert report.done == 3
    assert row(store, ids[0])[:2] == ("processing", "live")
    assert [row(store, i)[0] for i in ids[1:]] == ["done"] * 3


def test_the_sweep_hands_over_what_nobody_holds_once_per_grace(
    store: Store, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "var", handoff_seconds=600, nlp_batch_size=2)
    fresh, old, resent, live, dead, done = stored(store, 6)
    with store.session() as s:
        # stored two hours ago and never handed over (its collector was killed)
        s.execute(
            update(Article)
            .where(Article.id == old)
            .values(updated_at=utcnow() - timedelta(hours=2))
        )
        # handed over again by an earlier sweep whose task was lost (a Redis restart)
        s.execute(
            update(Article)
            .where(Article.id == resent)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
        s.execute(update(Article).where(Article.id == done).values(state="done"))
    leases.claim(store, [live], "live", 600)
    leases.claim(store, [dead], "killed", 600)
    expire(store, [dead])

    assert leases.due(store, settings.handoff_seconds) == [old, resent, dead]
    sent: list[list[int]] = []

    def hand_over(ids: Any, _settings: Any, _store: Any) -> int:
        sent.append(list(ids))
        return len(ids)

    assert leases.sweep(store, settings, hand_over) == 3
    assert sent == [[old, resent, dead]]
    for article_id in (old, resent, dead):
        state, owner, until = row(store, article_id)
        assert (state, owner) == ("pending", None) and until > utcnow() + timedelta(minutes=9)
    assert leases.sweep(store, settings, hand_over) == 0  # not again before another grace period
    assert row(store, fresh)[0] == "pending" and row(store, live)[1] == "live"
