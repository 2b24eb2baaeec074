"""Bot test fixtures: fake platforms over real HTTP, settings pointing at them, story seeding."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.post import Runtime
from bot.publishers import BlueskyPublisher, MastodonPublisher, Publisher, XPublisher
from covidnews.schema import Article, ArticleTopic, Source, Translation
from covidnews.settings import Settings, load_settings
from covidnews.store import Store
from tests.bot.fakes import Fake, FakeServer

_ids = itertools.count(1)


@pytest.fixture
def fake() -> Iterator[Fake]:
    with FakeServer() as f:
        yield f


@pytest.fixture
def settings(tmp_path: Path, db_url: str, fake: Fake) -> Settings:
    return load_settings(
        data_dir=tmp_path / "var",
        database_url=db_url,
        bot_channels=["x", "mastodon", "bluesky"],
        bot_x_api_base=fake.url,
        bot_x_api_key="ck",
        bot_x_api_secret="cs",
        bot_x_access_token="at",
        bot_x_access_token_secret="ats",
        bot_mastodon_api_base_url=fake.url,
        bot_mastodon_access_token="mastodon-token",
        bot_bluesky_base_url=fake.url,
        bot_bluesky_handle="covidnews.test",
        bot_bluesky_app_password="app-pass",
        bot_retry_backoff_seconds=0.5,
        crawl_allow_private=["127.0.0.1"],  # the fake's image host (card thumbnails)
    )


class FakeClock(Runtime):
    """Real wall clock (reset headers are real Unix times), recorded instead of real sleeps."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.sleeps: list[float] = []
        super().__init__(
            now=lambda: datetime.now(UTC) + offset,
            sleep=self.sleeps.append,
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def publisher(channel: str, settings: Settings) -> Publisher:
    from bot.publishers import make_publisher

    pub = make_publisher(channel, settings)
    assert isinstance(pub, XPublisher | MastodonPublisher | BlueskyPublisher)
    return pub


def _source(s: Any, name: str, weight: float = 1.0) -> int:
    from sqlalchemy import select

    from covidnews.store import slugify

    found = s.scalar(select(Source).where(Source.name == name))
    if found is None:
        found = Source(name=name, slug=slugify(name), weight=weight, country="MX", language="es")
        s.add(found)
        s.flush()
    return int(found.id)


def add_story(
    store: Store,
    *,
    title: str,
    summary: str | None = None,
    topic: str | None = "vaccines",
    source: str = "El Diario",
    copies: tuple[str, ...] = (),
    language: str = "es",
    published: datetime | None = None,
    translations: dict[str, tuple[str, str | None]] | None = None,
    weight: float = 1.0,
    is_covid: bool = True,
    image_url: str | None = None,
    state: str = "done",
) -> int:
    """A processed story (article + copies from other outlets); returns the story id."""
    published = published or datetime.now(UTC) - timedelta(hours=1)
    with store.session() as s:
        ids: list[int] = []
        for n, outlet in enumerate((source, *copies)):
            k = next(_ids)
            url = f"https://{outlet.lower().replace(' ', '')}.example.org/nota/{k}"
            h = hashlib.sha256(url.encode()).hexdigest()
            a = Article(
                url=url,
                url_hash=h,
                source_id=_source(s, outlet, weight if n == 0 else 1.0),
                language=language,
                title=title,
                text=(summary or title) + " Texto del artículo.",
                content_hash=h,
                record_hash=h,
                published_at=published + timedelta(minutes=n),
                state=state,
                is_covid=is_covid,
                covid_score=0.9,
                summary=summary,
                image_url=image_url,
                duplicate_of=ids[0] if ids else None,
            )
            s.add(a)
            s.flush()
            ids.append(int(a.id))
            if topic:
                s.add(ArticleTopic(article_id=a.id, topic=topic, score=0.9, rank=1, model="test"))
            for lang, (t_title, t_summary) in (translations or {}).items():
                s.add(
                    Translation(
                        article_id=a.id, language=lang, title=t_title, summary=t_summary, model="t"
                    )
                )
        return ids[0]
