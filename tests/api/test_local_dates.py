"""An article is dated on its outlet's clock: a Bolivian article published at 22:41 (-04:00) on
3 May is "3 May" for its readers, though UTC is already on the 4th."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from covidnews.ingest import parse_record
from covidnews.schema import Article
from covidnews.store import Store
from tests.api.conftest import AppFactory


def test_an_article_keeps_its_outlets_day_and_clock(db_url: str, make_app: AppFactory) -> None:
    store = Store(db_url)
    store.migrate()
    rows = [
        {"url": "https://bo.example/nota", "title": "Nota", "text": "Texto de la nota.",
         "published_at": "2022-05-03T22:41:00-04:00"},
        {"url": "https://es.example/utc", "title": "UTC", "text": "Sin zona.",
         "published_at": "2022-05-03T22:41:00"},
    ]  # fmt: skip
    store.upsert_articles([parse_record(r) for r in rows])
    with store.session() as s:
        stored = {a.url: a for a in s.scalars(select(Article))}
    bo = stored["https://bo.example/nota"]
    # Stored: the UTC instant (the ordering key) and the offset it was written in.
    assert bo.published_at == datetime(2022, 5, 4, 2, 41, tzinfo=UTC)
    assert bo.published_offset == -240
    assert stored["https://es.example/utc"].published_offset == 0
    store.close()

    client = make_app(db_url=db_url).test_client()
    got = client.get(f"/api/v1/articles/{bo.id}").get_json()
    assert got["published_at"] == "2022-05-03T22:41:00-04:00"
    page = client.get(f"/articulo/{bo.id}").get_data(as_text=True)
    assert '<time datetime="2022-05-03T22:41:00-04:00">3 may 2022</time>' in page
    english = client.get(f"/articulo/{bo.id}?lang=en").get_data(as_text=True)
    assert ">May 3, 2022</time>" in english
    utc = client.get(f"/api/v1/articles/{stored['https://es.example/utc'].id}").get_json()
    assert utc["published_at"] == "2022-05-03T22:41:00+00:00"


def test_the_archive_day_page_and_date_filters_use_the_outlets_day(
    db_url: str, make_app: AppFactory, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from covidnews.follow import Follower

    store = Store(db_url)
    store.migrate()
    rows = [
        {"url": "https://bo.example/noche", "title": "Vacunas en La Paz", "text": "Vacunas.",
         "published_at": "2022-05-03T22:41:00-04:00", "language": "es"},
        {"url": "https://es.example/madrugada", "title": "Vacunas en Madrid", "text": "Vacunas.",
         "published_at": "2022-05-04T05:00:00+02:00", "language": "es"},
    ]  # fmt: skip
    store.upsert_articles([parse_record(r) for r in rows])
    with store.session() as s:
        s.execute(update(Article).values(state="done", is_covid=True, covid_score=0.9))
        ids = dict(s.execute(select(Article.url, Article.id)).all())
    app = make_app(db_url=db_url)  # its data directory: tmp_path / "var"
    Follower(store, tmp_path / "var", "none").poll()  # keyword documents (no vectors here)
    store.close()
    client = app.test_client()
    la_paz, madrid = ids["https://bo.example/noche"], ids["https://es.example/madrugada"]
    # Both are 4 May in UTC (02:41 and 03:00); each is in its outlet's day.
    third = client.get("/archivo/2022/05/03/").get_data(as_text=True)
    fourth = client.get("/archivo/2022/05/04/").get_data(as_text=True)
    assert f"/articulo/{la_paz}" in third and f"/articulo/{madrid}" not in third
    assert f"/articulo/{madrid}" in fourth and f"/articulo/{la_paz}" not in fourth
    found = client.get("/api/v1/search?covid=all&from=2022-05-03&to=2022-05-03")
    assert [r["id"] for r in found.get_json()["results"]] == [la_paz]


def test_the_bots_digest_day_is_the_outlets_day(db_url: str) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from bot.select import load_stories

    store = Store(db_url)
    store.migrate()
    rows = [
        {"url": "https://bo.example/noche", "title": "Vacunas en La Paz", "text": "Vacunas.",
         "published_at": "2022-05-03T22:41:00-04:00"},
        {"url": "https://es.example/madrugada", "title": "Vacunas en Madrid", "text": "Vacunas.",
         "published_at": "2022-05-04T05:00:00+02:00"},
    ]  # fmt: skip
    store.upsert_articles([parse_record(r) for r in rows])
    with store.session() as s:
        s.execute(update(Article).values(state="done", is_covid=True, covid_score=0.9))
    day = datetime(2022, 5, 3, tzinfo=UTC)
    third = load_stories(store, day=(day, day + timedelta(days=1)))
    fourth = load_stories(store, day=(day + timedelta(days=1), day + timedelta(days=2)))
    store.close()
    assert [s.article.url for s in third] == ["https://bo.example/noche"]
    assert [s.article.url for s in fourth] == ["https://es.example/madrugada"]
