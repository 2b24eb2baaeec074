"""The bot against fake X, Mastodon and Bluesky servers over real HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.digest import run_digest
from bot.post import run_once
from bot.text import bluesky_length, mastodon_length, x_length
from covidnews.schema import BotPost
from covidnews.settings import Settings
from covidnews.store import Store
from tests.bot.conftest import FakeClock, add_story
from tests.bot.fakes import DID, Fake

X, MASTODON, BSKY = "/2/tweets", "/api/v1/statuses", "/xrpc/com.atproto.repo.createRecord"


def _rows(store: Store, channel: str | None = None) -> list[BotPost]:
    with store.session() as s:
        q = select(BotPost).order_by(BotPost.id)
        if channel:
            q = q.where(BotPost.channel == channel)
        rows = list(s.scalars(q))
        s.expunge_all()
    return rows


def _posts(fake: Fake, path: str) -> list[dict]:
    return [r.body for r in fake.posts() if r.path == path]


def test_single_posts_on_each_platform(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    sid = add_story(
        store,
        title="Llega a México un cargamento de vacunas",
        summary="Llega a México un cargamento con vacunas. Las 219,375 dosis de Pfizer se "
        "repartirán entre hospitales de nueve estados. Se aplicarán desde el lunes.",
        source="El Universal",
        copies=("Agencia Uno", "Diario Dos"),
    )
    report = run_once(store, settings, rt=clock)
    assert {c: len(r.posted) for c, r in report.channels.items()} == {
        "x": 1,
        "mastodon": 1,
        "bluesky": 1,
    }
    assert not report.needs_attention

    (tweet,) = _posts(fake, X)
    # The headline, then the summary's first sentence that adds to it (the first repeats it)
    headline, context, footer = tweet["text"].split("\n\n")
    assert headline == "Llega a México un cargamento de vacunas"
    assert context == (
        "Las 219,375 dosis de Pfizer se repartirán entre hospitales de nueve estados."
    )
    assert footer.startswith("#Vacunas · vía El Universal (+2 medios)\n")
    assert "in_reply_to_tweet_id" not in tweet and "reply" not in tweet
    x_req = next(r for r in fake.requests if r.path == X)
    assert x_req.headers["Authorization"].startswith("OAuth ")
    assert 'oauth_consumer_key="ck"' in x_req.headers["Authorization"]
    assert 'oauth_token="at"' in x_req.headers["Authorization"]
    assert x_length(tweet["text"]) <= 280

    (status,) = _posts(fake, MASTODON)
    assert status["status"] == tweet["text"]
    assert status["language"] == "es" and status["visibility"] == "public"
    m_req = next(r for r in fake.requests if r.path == MASTODON)
    assert m_req.headers["Authorization"] == "Bearer mastodon-token"
    assert m_req.headers["Idempotency-Key"].startswith("covidnews-mastodon-")
    assert mastodon_length(status["status"]) <= 500

    session = next(r for r in fake.requests if r.path.endswith("createSession"))
    assert session.body == {"identifier": "covidnews.test", "password": "app-pass"}
    (record,) = _posts(fake, BSKY)
    assert record["collection"] == "app.bsky.feed.post"
    assert record["repo"] == "covidnews.test"
    post = record["record"]
    assert post["langs"] == ["es"]
    assert bluesky_length(post["text"]) <= 300
    raw = post["text"].encode("utf-8")
    links = [f for f in post["facets"] if f["features"][0]["$type"].endswith("#link")]
    tags = [f for f in post["facets"] if f["features"][0]["$type"].endswith("#tag")]
    assert links[0]["features"][0]["uri"].startswith("https://eluniversal.example.org/nota/")
    shown = raw[links[0]["index"]["byteStart"] : links[0]["index"]["byteEnd"]].decode()
    assert shown.startswith("eluniversal.example.org/nota/")
    assert raw[tags[0]["index"]["byteStart"] : tags[0]["index"]["byteEnd"]].decode() == "#Vacunas"
    assert tags[0]["features"][0]["tag"] == "Vacunas"
    bsky_req = next(r for r in fake.requests if r.path == BSKY)
    assert bsky_req.headers["Authorization"].startswith("Bearer ")

    rows = _rows(store)
    assert {r.status for r in rows} == {"sent"}
    assert {r.dedup_key for r in rows} == {f"story:{sid}"}
    assert all(r.remote_id and r.sent_at for r in rows)
    bsky_row = next(r for r in rows if r.channel == "bluesky")
    assert bsky_row.remote_id.startswith(f"at://{DID}/") and bsky_row.payload["cid"]


def test_two_runs_in_a_row_post_nothing_twice(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    for i in range(5):
        add_story(store, title=f"Noticia {i}", summary=f"Resumen número {i} de la noticia.")
    first = run_once(store, settings, rt=clock)
    assert len(first.channels["x"].posted) == 3  # the per-run cap
    second = run_once(store, settings, rt=clock)
    assert len(second.channels["x"].posted) == 2
    third = run_once(store, settings, rt=clock)
    assert all(not c.posted for c in third.channels.values())
    for path in (X, MASTODON, BSKY):
        texts = [
            b.get("text") or b.get("status") or b["record"]["text"] for b in _posts(fake, path)
        ]
        assert len(texts) == 5 == len(set(texts))


def test_per_day_cap(store: Store, settings: Settings, fake: Fake, clock: FakeClock) -> None:
    capped = settings.model_copy(update={"bot_per_day_cap_x": 4, "bot_channels": ["x"]})
    for i in range(6):
        add_story(store, title=f"Noticia {i}", summary=f"Resumen número {i}.")
    run_once(store, capped, rt=clock)
    run_once(store, capped, rt=clock)
    run_once(store, capped, rt=clock)
    assert len(_posts(fake, X)) == 4


def test_topic_diversity_and_outlets_rank_first(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    one = settings.model_copy(update={"bot_channels": ["x"], "bot_per_run_cap": 3})
    add_story(store, title="Vacunas A", summary="Vacunas A.", topic="vaccines")
    add_story(store, title="Vacunas B", summary="Vacunas B.", topic="vaccines")
    add_story(store, title="Vacunas C", summary="Vacunas C.", topic="vaccines", copies=("Otro",))
    add_story(store, title="Escuelas", summary="Escuelas.", topic="education")
    run_once(store, one, rt=clock)
    texts = [b["text"].split("\n")[0] for b in _posts(fake, X)]
    assert texts[0] == "Vacunas C"  # two outlets
    assert texts[1] == "Escuelas"  # a second vaccines story is penalised


def test_digest_threads_chain_replies(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    day = datetime(2021, 3, 12, tzinfo=UTC)
    for i in range(3):
        add_story(
            store,
            title=f"Historia {i}",
            summary=f"Resumen de la historia {i}.",
            published=day + timedelta(hours=2 + i),
            copies=("Otro",) * 0,
        )
    add_story(store, title="Otro día", summary="Otro día.", published=day - timedelta(days=1))
    report = run_digest(store, settings, day.date(), rt=clock)
    assert {c: len(r.posted) for c, r in report.channels.items()} == {
        "x": 4,
        "mastodon": 4,
        "bluesky": 4,
    }
    tweets = _posts(fake, X)
    assert tweets[0]["text"] == (
        "Covid-19, 12 de marzo de 2021: las 3 historias principales del día 🧵\nTemas: Vacunas"
    )
    assert "in_reply_to_tweet_id" not in tweets[0]
    x_rows = _rows(store, "x")
    for prev, tweet in zip(x_rows, tweets[1:], strict=False):
        assert tweet["reply"]["in_reply_to_tweet_id"] == prev.remote_id
    assert [t["text"][:4] for t in tweets[1:]] == ["1/3 ", "2/3 ", "3/3 "]
    # A reply is the headline, the outlet and the link: no summary, no hashtag.
    for tweet in tweets[1:]:
        head, rest = tweet["text"].split("\n\n")
        assert head[4:].startswith("Historia ") and "Resumen" not in tweet["text"]
        assert rest.startswith("vía El Diario\nhttps://") and "#" not in tweet["text"]
    assert "Otro día" not in " ".join(t["text"] for t in tweets)

    statuses = _posts(fake, MASTODON)
    m_rows = _rows(store, "mastodon")
    assert "in_reply_to_id" not in statuses[0]
    for prev, status in zip(m_rows, statuses[1:], strict=False):
        assert status["in_reply_to_id"] == prev.remote_id

    records = [b["record"] for b in _posts(fake, BSKY)]
    b_rows = _rows(store, "bluesky")
    assert "reply" not in records[0]
    for prev, rec in zip(b_rows, records[1:], strict=False):
        root, parent = rec["reply"]["root"], rec["reply"]["parent"]
        assert (root["uri"], root["cid"]) == (b_rows[0].remote_id, b_rows[0].payload["cid"])
        assert (parent["uri"], parent["cid"]) == (prev.remote_id, prev.payload["cid"])
    assert [r.kind for r in b_rows] == ["digest", "digest_item", "digest_item", "digest_item"]

    again = run_digest(store, settings, day.date(), rt=clock)
    assert all(not c.posted for c in again.channels.values())
    assert len(fake.posts()) == 12


def test_429_waits_for_the_reset_then_posts(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    add_story(store, title="Casos", summary="Suben los casos.", topic="cases")
    reset = str(int(time.time()) + 2)
    fake.script(X, 429, {"title": "Too Many Requests"}, x_rate_limit_reset=reset)
    fake.script(MASTODON, 429, {"error": "Too many requests"}, X_RateLimit_Reset=reset)
    fake.script(BSKY, 429, {"error": "RateLimitExceeded"}, ratelimit_reset=reset)
    report = run_once(store, settings, rt=clock)
    assert all(len(c.posted) == 1 for c in report.channels.values())
    assert len(clock.sleeps) == 3
    assert all(0 < s <= 3.5 for s in clock.sleeps)  # waited for the reset, not more
    assert len(fake.posts()) == 6  # one refused, one sent per platform
    assert {r.status for r in _rows(store)} == {"sent"}


def test_429_far_away_stops_the_channel_until_next_run(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    x_only = settings.model_copy(update={"bot_channels": ["x"]})
    add_story(store, title="A", summary="Historia A.", topic="cases")
    add_story(store, title="B", summary="Historia B.", topic="travel")
    fake.script(
        X, 429, {"title": "Too Many Requests"}, x_rate_limit_reset=str(int(time.time()) + 900)
    )
    report = run_once(store, x_only, rt=clock)
    c = report.channels["x"]
    assert c.stopped and "rate limited" in c.stopped and not c.posted
    assert clock.sleeps == []
    assert len(fake.posts()) == 1  # the second story was left for the next run
    assert [r.status for r in _rows(store)] == ["retry"]
    report = run_once(store, x_only, rt=clock)
    assert len(report.channels["x"].posted) == 2
    assert [r.status for r in _rows(store)] == ["sent", "sent"]
    assert len({b["text"] for b in _posts(fake, X)}) == 2


def test_5xx_is_retried_with_backoff(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    add_story(store, title="Medidas", summary="Nuevas medidas sanitarias.", topic="measures")
    fake.script(X, 503, {"title": "Service Unavailable"})
    fake.script(MASTODON, 500, {"error": "boom"})
    fake.script(MASTODON, 502, {"error": "bad gateway"})
    fake.script(BSKY, 500, {"error": "InternalServerError"})
    report = run_once(store, settings, rt=clock)
    assert all(len(c.posted) == 1 for c in report.channels.values())
    assert clock.sleeps == [0.5, 0.5, 1.0, 0.5]  # exponential per post
    assert {r.status for r in _rows(store)} == {"sent"}
    assert {r.channel: r.attempts for r in _rows(store)} == {"x": 2, "mastodon": 3, "bluesky": 2}


def test_duplicate_rejected_by_the_platform_is_done(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    add_story(store, title="Repetida", summary="Una noticia ya publicada.")
    fake.script(
        X,
        403,
        {
            "detail": "You are not allowed to create a Tweet with duplicate content.",
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
        },
    )
    fake.script(MASTODON, 422, {"error": "Validation failed: duplicate status"})
    fake.script(BSKY, 400, {"error": "InvalidRequest", "message": "Record already exists"})
    report = run_once(store, settings, rt=clock)
    assert all(len(c.duplicates) == 1 for c in report.channels.values())
    assert not report.needs_attention
    assert {r.status for r in _rows(store)} == {"duplicate"}
    run_once(store, settings, rt=clock)
    assert len(fake.posts()) == 3  # never again


def test_crash_between_record_and_send_never_double_posts(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.post

    add_story(store, title="Crash", summary="Historia durante la caída.")
    add_story(store, title="Otra", summary="Otra historia.", topic="economy")
    x_only = settings.model_copy(update={"bot_channels": ["x"]})

    class Killed(BaseException):
        """Stands for the process dying (SIGKILL) after the record was committed."""

    real = bot.post.deliver

    def die(*args: object, **kwargs: object) -> str:
        raise Killed

    monkeypatch.setattr(bot.post, "deliver", die)
    with pytest.raises(Killed):
        run_once(store, x_only, rt=clock)
    monkeypatch.setattr(bot.post, "deliver", real)
    (row,) = _rows(store)
    assert row.status == "recorded" and fake.posts() == []

    # Within the grace period another run may still be sending it: left alone.
    report = run_once(store, x_only, rt=clock)
    assert report.channels["x"].unknown == []
    # Later: marked unknown and reported, never resent; the other story goes out.
    later = FakeClock(offset=timedelta(seconds=settings.bot_grace_seconds + 60))
    report = run_once(store, x_only, rt=later)
    assert report.channels["x"].unknown == [row.id]
    assert report.needs_attention
    by_key = {r.dedup_key: r for r in _rows(store)}
    assert by_key[row.dedup_key].status == "unknown"
    texts = [b["text"] for b in _posts(fake, X)]
    assert row.text not in texts and len(texts) == 1  # only the other story went out
    assert run_once(store, x_only, rt=later).channels["x"].unknown == []  # reported once
    assert row.text not in [b["text"] for b in _posts(fake, X)] and len(fake.posts()) == 1
    # Past the settle period and still not on the account: sent again, once.
    much_later = FakeClock(offset=timedelta(seconds=settings.bot_settle_seconds + 60))
    report = run_once(store, x_only, rt=much_later)
    assert report.channels["x"].posted == [row.id]
    assert {r.dedup_key: r.status for r in _rows(store)}[row.dedup_key] == "sent"
    assert [b["text"] for b in _posts(fake, X)].count(row.text) == 1


def test_bluesky_5xx_after_the_write_makes_one_record(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    """The PDS wrote the record and then answered 502: the post's own record key finds it, so
    it is sent (with its uri and cid) and no second record is made — a plain retry would have
    posted twice."""
    bsky = settings.model_copy(update={"bot_channels": ["bluesky"]})
    add_story(store, title="Ambigua", summary="Una respuesta perdida.")
    fake.script(BSKY, 502, {"error": "BadGateway"}, applied=True)
    report = run_once(store, bsky, rt=clock)
    assert report.channels["bluesky"].posted and not report.needs_attention
    (row,) = _rows(store)
    (rkey,) = fake.records
    assert len(_posts(fake, BSKY)) == 1 and len(fake.records) == 1
    assert row.status == "sent" and row.remote_id == f"at://{DID}/app.bsky.feed.post/{rkey}"
    assert row.payload["cid"] == fake.records[rkey]["cid"]
    # Every try of a post names the same record; a repeated create is refused by the PDS.
    fake.script(BSKY, 0, applied=True)  # the next post: written, the answer lost
    add_story(store, title="Otra ambigua", summary="Otra respuesta perdida.", topic="economy")
    report = run_once(store, bsky, rt=clock)
    assert len(fake.records) == 2 and len(_posts(fake, BSKY)) == 2


def test_x_lost_answer_is_settled_by_looking_at_the_account(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    """X took the tweet and the connection dropped before the answer: unknown, never retried
    blindly; the next run finds it among the account's tweets and marks it sent with its id."""
    x_only = settings.model_copy(update={"bot_channels": ["x"]})
    add_story(store, title="Perdida", summary="Un tuit cuya respuesta se perdió.")
    fake.script(X, 0, applied=True)
    report = run_once(store, x_only, rt=clock)
    (row,) = _rows(store)
    assert report.channels["x"].unknown == [row.id] and row.status == "unknown"
    assert len(fake.tweets) == 1
    report = run_once(store, x_only, rt=clock)
    assert report.channels["x"].settled == [row.id]
    (row,) = _rows(store)
    assert row.status == "sent" and row.remote_id == fake.tweets[0]["id"]
    assert len(fake.tweets) == 1 and len(_posts(fake, X)) == 1  # never sent twice


def test_mastodon_lost_answer_and_a_run_killed_after_sending(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped answer is retried with the same Idempotency-Key: one status. A run killed
    after Mastodon took the status (before noting it sent) leaves it recorded; past the grace it
    is unknown and the next lookup finds it on the account: sent, with its id, not posted again."""
    from bot.publishers import MastodonPublisher

    masto = settings.model_copy(update={"bot_channels": ["mastodon"]})
    add_story(store, title="Perdida", summary="Un estado cuya respuesta se perdió.")
    fake.script(MASTODON, 0, applied=True)
    run_once(store, masto, rt=clock)
    assert [r.status for r in _rows(store)] == ["sent"]
    assert len(fake.statuses) == 1 and len(_posts(fake, MASTODON)) == 2

    class Killed(BaseException):
        """The process dies right after the platform answered."""

    real_send = MastodonPublisher.send

    def send_then_die(self: object, post: object) -> object:
        real_send(self, post)  # type: ignore[arg-type]
        raise Killed

    add_story(store, title="Muerte", summary="Un estado enviado por un proceso que murió.")
    monkeypatch.setattr(MastodonPublisher, "send", send_then_die)
    with pytest.raises(Killed):
        run_once(store, masto, rt=clock)
    monkeypatch.setattr(MastodonPublisher, "send", real_send)
    dead = next(r for r in _rows(store) if r.status == "recorded")
    later = FakeClock(offset=timedelta(seconds=settings.bot_grace_seconds + 60))
    report = run_once(store, masto, rt=later)
    assert report.channels["mastodon"].unknown == [dead.id]  # reported …
    assert report.channels["mastodon"].settled == [dead.id]  # … and found on the account
    row = {r.id: r for r in _rows(store)}[dead.id]
    assert row.status == "sent" and row.remote_id == fake.statuses[1]["id"]
    assert len(fake.statuses) == 2  # not posted again


def test_channel_without_credentials_is_dry_run(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    dry = settings.model_copy(
        update={"bot_mastodon_access_token": None, "bot_channels": ["mastodon", "x-en"]}
    )
    add_story(
        store,
        title="Llegan a Chile dos millones de vacunas de Sinovac",
        summary="Llegan a Chile dos millones de vacunas. El Minsal comenzará a aplicarlas a "
        "mayores de 90 años el miércoles.",
        translations={
            "en": (
                "Two million Sinovac vaccines arrive in Chile",
                "Two million vaccines arrive in Chile. The Health Ministry will start giving "
                "them to people over 90 on Wednesday.",
            )
        },
    )
    report = run_once(store, dry, rt=clock)
    assert report.channels["mastodon"].dry_run and len(report.channels["mastodon"].posted) == 1
    assert not report.channels["x-en"].dry_run
    assert _posts(fake, MASTODON) == []
    (tweet,) = _posts(fake, X)  # the English channel: the translated headline and sentence
    assert tweet["text"] == (
        "Two million Sinovac vaccines arrive in Chile\n\n"
        "The Health Ministry will start giving them to people over 90 on Wednesday.\n\n"
        "#Vaccines · via El Diario\n" + tweet["text"].rsplit("\n", 1)[1]
    )
    outbox = (dry.data_dir / "bot" / "outbox.jsonl").read_text("utf-8").splitlines()
    assert len(outbox) == 1 and '"status": "dry_run"' in outbox[0]
    rows = {r.channel: r for r in _rows(store)}
    assert rows["mastodon"].status == "dry_run" and rows["x-en"].language == "en"


def test_a_widely_shared_story_with_a_false_verdict_gets_a_verdict_post(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    """Dry-run: a story carried by three outlets, one of whose copies a fact-checker rated false,
    gets one verdict post per channel (the rating in words, the claim, the fact-checker, the
    link); a story with one outlet or a `true` verdict does not; a second run posts none again."""
    from covidnews.factchecks import FactCheckRecord, upsert_factchecks
    from covidnews.schema import Article, FactCheckLink

    dry = settings.model_copy(
        update={"bot_dry_run": True, "bot_channels": ["x", "bluesky", "x-en"]}
    )
    wide = add_story(
        store, title="Circula que la vacuna tiene chip", copies=("Diario B", "Diario C")
    )
    lone = add_story(store, title="Un remedio casero", source="Diario D")
    good = add_story(store, title="Las mascarillas protegen", copies=("Diario E", "Diario F"))
    with store.session() as s:
        copy_of_wide = s.scalars(select(Article.id).where(Article.duplicate_of == wide)).first()
    checks = upsert_factchecks(
        store,
        [
            FactCheckRecord(url=f"https://verifica.example/{n}", claim=claim, verdict=v,
                            verdict_text=v, reviewed_at=datetime.now(UTC))
            for n, (claim, v) in enumerate([
                ("La vacuna contiene un chip", "false"),
                ("Un té cura la covid", "false"),
                ("Las mascarillas reducen contagios", "true"),
            ])
        ],
        None,
    )  # fmt: skip
    with store.session() as s:
        for fc, article in zip(checks, (copy_of_wide, lone, good), strict=True):
            s.add(FactCheckLink(factcheck_id=fc, article_id=article, reason="appearance", score=1))
    run_once(store, dry, rt=clock)
    verdicts = [r for r in _rows(store) if r.kind == "verdict"]
    assert sorted(r.channel for r in verdicts) == ["bluesky", "x", "x-en"]
    assert {r.dedup_key for r in verdicts} == {f"verdict:{checks[0]}"}
    x = next(r for r in verdicts if r.channel == "x")
    assert x.text.startswith("Verificación: FALSO «La vacuna contiene un chip»")
    assert "https://verifica.example/0" in x.text and x.status == "dry_run"
    assert x.article_id == wide
    en = next(r for r in verdicts if r.channel == "x-en")
    assert en.text.startswith("Fact-check: FALSE «La vacuna contiene un chip»")
    run_once(store, dry, rt=clock)
    assert len([r for r in _rows(store) if r.kind == "verdict"]) == 3


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e226059b0000000049454e44ae426082"
)


def test_bluesky_posts_carry_a_link_card_with_the_image_as_a_blob(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    """The card (title, description, thumbnail) is attached as app.bsky.embed.external; its
    thumbnail is the article's og:image, fetched and uploaded as a blob the PDS received. An
    image over the size cap, or not an image, or on an address not allowed, makes a card without
    a thumbnail (the post is still made)."""
    bsky = settings.model_copy(update={"bot_channels": ["bluesky"], "bot_per_run_cap": 5})
    fake.images["vacunas.png"] = ("image/png", PNG)
    fake.images["enorme.png"] = ("image/png", PNG + b"\0" * 1_000_001)
    fake.images["pagina.html"] = ("text/html", b"<html>no</html>")
    summary = (
        "Llega a México un cargamento con vacunas. Las 219,375 dosis de Pfizer se repartirán "
        "entre hospitales de nueve estados."
    )
    with_image = add_story(
        store,
        title="Llega a México un cargamento de vacunas",
        summary=summary,
        image_url=f"{fake.url}/media/vacunas.png",
        copies=("Otro", "Tercero"),
    )
    for title, image in (
        ("Una imagen demasiado grande", "enorme.png"),
        ("Una página en lugar de imagen", "pagina.html"),
        ("Sin imagen", None),
    ):
        add_story(
            store,
            title=title,
            summary="Un resumen.",
            image_url=f"{fake.url}/media/{image}" if image else None,
        )
    report = run_once(store, bsky, rt=clock)
    assert len(report.channels["bluesky"].posted) == 4 and not report.needs_attention

    records = {b["record"]["text"].split("\n")[0]: b["record"] for b in _posts(fake, BSKY)}
    card = records["Llega a México un cargamento de vacunas"]["embed"]
    assert card["$type"] == "app.bsky.embed.external"
    external = card["external"]
    row = next(r for r in _rows(store) if r.article_id == with_image)
    assert external["uri"] == row.payload["link"]
    assert external["title"] == "Llega a México un cargamento de vacunas"
    assert external["description"] == summary
    thumb = external["thumb"]
    assert thumb["$type"] == "blob" and thumb["mimeType"] == "image/png"
    assert fake.blobs[thumb["ref"]["$link"]] == ("image/png", PNG)  # the bytes the PDS received
    assert thumb["size"] == len(PNG)
    assert len(fake.blobs) == 1  # nothing else was uploaded
    for title in ("Una imagen demasiado grande", "Una página en lugar de imagen", "Sin imagen"):
        external = records[title]["embed"]["external"]
        assert external["title"] == title and "thumb" not in external

    # An image host on an address the settings do not allow is never fetched.
    closed = bsky.model_copy(update={"crawl_allow_private": []})
    fake.images["otra.png"] = ("image/png", PNG)
    add_story(
        store,
        title="Otra historia",
        summary="Otro resumen.",
        image_url=f"{fake.url}/media/otra.png",
    )
    run_once(store, closed, rt=clock)
    assert not any(r.path == "/media/otra.png" for r in fake.requests)
    last = _posts(fake, BSKY)[-1]["record"]
    assert last["embed"]["external"]["title"] == "Otra historia"
    assert "thumb" not in last["embed"]["external"]


def test_x_and_mastodon_posts_keep_the_card_for_review_but_send_text_only(
    store: Store, settings: Settings, fake: Fake, clock: FakeClock
) -> None:
    fake.images["vacunas.png"] = ("image/png", PNG)
    add_story(
        store,
        title="Llega a México un cargamento de vacunas",
        summary="Un resumen.",
        image_url=f"{fake.url}/media/vacunas.png",
    )
    run_once(store, settings.model_copy(update={"bot_channels": ["x", "mastodon"]}), rt=clock)
    (tweet,) = _posts(fake, X)
    (status,) = _posts(fake, MASTODON)
    assert set(tweet) <= {"text", "reply"} and "media_ids" not in status
    assert not any(r.path.startswith("/media/") for r in fake.requests)  # no image fetched
    for row in _rows(store):
        assert row.payload["card"]["image"] == f"{fake.url}/media/vacunas.png"
