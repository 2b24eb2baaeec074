"""One publisher per platform, behind one small interface, with errors in four kinds.

- :class:`RateLimited` (429): carries the platform's reset time (X ``x-rate-limit-reset``,
  Mastodon ``X-RateLimit-Reset``, Bluesky ``ratelimit-reset``) as a Unix time.
- :class:`Transient` (5xx, connection refused/reset): the platform said it did not post; retry.
- :class:`Duplicate` (X 403 "duplicate content", Mastodon 422 "duplicate", Bluesky "already
  exists"): it is already there; the post is done.
- :class:`Rejected` (any other 4xx): permanent for this text.
- :class:`Ambiguous` (a read timeout: the request may have been applied): not retried blindly.

**Settling what is uncertain** (``bot/post.py``): :meth:`Publisher.find` looks for a post on the
account. Bluesky records get a deterministic record key derived from the post row
(:func:`record_key`), so a create that may have been applied is checked by reading that one
record, and a repeated create can never make a second record. X and Mastodon look through the
account's recent posts for the same text.

A channel without credentials (or with ``COVIDNEWS_BOT_DRY_RUN``) gets no publisher here: it runs
dry-run and its posts go to the outbox only (``bot/post.py``).
"""

from __future__ import annotations

import html
import logging
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.images import Image, fetch_image
from bot.text import Card, language_of, platform_of
from covidnews.urls import parse_networks

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

X_DEFAULT_HOST = "https://api.twitter.com"


@dataclass(frozen=True)
class RemoteRef:
    """A post on the platform: its id (X/Mastodon id, Bluesky at:// URI) and Bluesky cid."""

    id: str
    cid: str | None = None


@dataclass
class Outgoing:
    text: str
    language: str
    idempotency_key: str
    facets: list[dict[str, Any]] = field(default_factory=list)
    reply_root: RemoteRef | None = None
    reply_parent: RemoteRef | None = None
    #: Bluesky record key (a TID) derived from the post row: the same on every try
    record_key: str | None = None
    #: the link card (Bluesky attaches it; X and Mastodon read the linked page's own tags)
    card: Card | None = None


_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable (atproto TID spec)


def record_key(post_id: int, created_at: datetime) -> str:
    """A Bluesky record key for one post row: a TID (atproto spec: 53 bits of microseconds since
    the Unix epoch, 10 bits of clock id, base32-sortable, 13 characters) made from the row's
    creation time and id, so every try of the same post names the same record. The atproto SDK
    validates TIDs but has no generator for a given time; this is the spec's few lines."""
    micros = int(created_at.timestamp() * 1_000_000) & ((1 << 53) - 1)
    value = (micros << 10) | (post_id % 1024)
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_URL = re.compile(r"https?://\S+")


def same_post(ours: str, theirs: str) -> bool:
    """Whether a post found on the account is ours: the same text once links (X shortens them,
    Mastodon wraps them in markup), markup, entities, case and whitespace are set aside."""

    def key(text: str) -> str:
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        return re.sub(r"\s+", "", _URL.sub("", text)).casefold()

    mine = key(ours)
    return bool(mine) and mine == key(theirs)


class PublishError(Exception):
    """A platform did not take a post."""


class RateLimited(PublishError):
    def __init__(self, message: str, reset_at: float | None) -> None:
        super().__init__(message)
        self.reset_at = reset_at  # Unix time the window resets, when the platform said


class Transient(PublishError):
    pass


class Duplicate(PublishError):
    pass


class Rejected(PublishError):
    pass


class Ambiguous(PublishError):
    pass


class Publisher(ABC):
    """Sends one post; raises a :class:`PublishError` subclass when it was not taken."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.platform = platform_of(channel).name
        self.language = language_of(channel)

    @abstractmethod
    def send(self, post: Outgoing) -> RemoteRef: ...

    @abstractmethod
    def find(self, post: Outgoing, since: datetime) -> RemoteRef | None:
        """The post on the account if it is there (sent at or after ``since``), else None.
        Raises :class:`PublishError` when the platform cannot be asked now."""


def _never_sent(exc: Exception) -> bool:
    """Whether a requests connection error happened before the request could reach the server
    (refused, DNS, connect timeout), as opposed to a connection dropped after sending."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)


def _is_duplicate(message: str) -> bool:
    lowered = message.lower()
    return "duplicate" in lowered or "already exists" in lowered


# X ---------------------------------------------------------------------------------------------


def _rebasing_adapter(base: str) -> Any:
    import requests.adapters

    class Rebase(requests.adapters.HTTPAdapter):
        """Sends tweepy's requests for api.twitter.com to another base URL (proxy, tests)."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # requests' Session.send
            url = str(request.url)
            if url.startswith(X_DEFAULT_HOST):
                request.url = base.rstrip("/") + url[len(X_DEFAULT_HOST) :]
            return super().send(request, *args, **kwargs)

    return Rebase()


class XPublisher(Publisher):
    """X API v2 via tweepy (``POST /2/tweets``), user context OAuth 1.0a."""

    def __init__(
        self,
        channel: str,
        *,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        api_base: str = X_DEFAULT_HOST,
    ) -> None:
        super().__init__(channel)
        import tweepy

        self.client = tweepy.Client(
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            wait_on_rate_limit=False,  # our own policy: wait only when short
        )
        if api_base.rstrip("/") != X_DEFAULT_HOST:
            self.client.session.mount(X_DEFAULT_HOST, _rebasing_adapter(api_base))
        self._me: str | None = None

    def send(self, post: Outgoing) -> RemoteRef:
        import requests
        import tweepy

        reply = post.reply_parent.id if post.reply_parent else None
        try:
            response = self.client.create_tweet(
                text=post.text, in_reply_to_tweet_id=reply, user_auth=True
            )
        except tweepy.TooManyRequests as exc:
            raise RateLimited(f"X: {exc}", exc.reset_time) from exc
        except tweepy.TwitterServerError as exc:
            raise Transient(f"X: {exc}") from exc
        except tweepy.HTTPException as exc:
            message = f"X: {exc} " + " ".join(map(str, exc.api_messages))
            if exc.response.status_code == 403 and _is_duplicate(message):
                raise Duplicate(message) from exc
            raise Rejected(message) from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):  # refused, or no connection in time: nothing reached X
                raise Transient(f"X: {exc}") from exc
            raise Ambiguous(f"X: {exc}") from exc  # dropped after sending: it may be posted
        except requests.Timeout as exc:  # a read timeout: it may have been posted
            raise Ambiguous(f"X: {exc}") from exc
        data = response.data
        return RemoteRef(str(data["id"]))

    def find(self, post: Outgoing, since: datetime) -> RemoteRef | None:
        """The account's tweets since ``since`` (``GET /2/users/:id/tweets``, up to 100)."""
        import requests
        import tweepy

        try:
            if self._me is None:
                self._me = str(self.client.get_me(user_auth=True).data.id)
            response = self.client.get_users_tweets(
                id=self._me, start_time=since, max_results=100, user_auth=True
            )
        except tweepy.TooManyRequests as exc:
            raise RateLimited(f"X: {exc}", exc.reset_time) from exc
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise Transient(f"X: {exc}") from exc
        for tweet in response.data or []:
            if same_post(post.text, str(tweet.text)):
                return RemoteRef(str(tweet.id))
        return None


# Mastodon --------------------------------------------------------------------------------------


class MastodonPublisher(Publisher):
    """Mastodon via Mastodon.py (``POST /api/v1/statuses``), with an Idempotency-Key per post,
    so a retried request after a lost answer never makes a second status."""

    def __init__(self, channel: str, *, access_token: str, api_base_url: str) -> None:
        super().__init__(channel)
        from mastodon import Mastodon

        self.api = Mastodon(
            access_token=access_token,
            api_base_url=api_base_url,
            ratelimit_method="throw",  # our own policy decides whether to wait
            version_check_mode="none",
            request_timeout=30,
        )
        self._me: str | None = None

    def send(self, post: Outgoing) -> RemoteRef:
        from mastodon import (
            MastodonAPIError,
            MastodonNetworkError,
            MastodonRatelimitError,
            MastodonServerError,
        )

        reply = post.reply_parent.id if post.reply_parent else None
        try:
            status = self.api.status_post(
                post.text,
                in_reply_to_id=reply,
                language=post.language,
                visibility="public",
                idempotency_key=post.idempotency_key,
            )
        except MastodonRatelimitError as exc:
            reset = self.api.ratelimit_reset
            raise RateLimited(f"Mastodon: {exc}", float(reset) if reset else None) from exc
        except MastodonServerError as exc:
            raise Transient(f"Mastodon: {exc}") from exc
        except MastodonNetworkError as exc:  # safe to retry: the Idempotency-Key dedups
            raise Transient(f"Mastodon: {exc}") from exc
        except MastodonAPIError as exc:
            code = exc.args[1] if len(exc.args) > 1 else None
            message = f"Mastodon: {exc}"
            if code == 422 and _is_duplicate(message):
                raise Duplicate(message) from exc
            raise Rejected(message) from exc
        return RemoteRef(str(status["id"]))

    def find(self, post: Outgoing, since: datetime) -> RemoteRef | None:
        """The account's latest 40 statuses (``GET /api/v1/accounts/:id/statuses``)."""
        from mastodon import MastodonError

        try:
            if self._me is None:
                self._me = str(self.api.me()["id"])
            statuses = self.api.account_statuses(self._me, limit=40)
        except MastodonError as exc:
            raise Transient(f"Mastodon: {exc}") from exc
        for status in statuses:
            created = status.get("created_at")
            if isinstance(created, datetime) and created < since:
                continue
            if same_post(post.text, str(status.get("content", ""))):
                return RemoteRef(str(status["id"]))
        return None


# Bluesky ---------------------------------------------------------------------------------------


class BlueskyPublisher(Publisher):
    """Bluesky via the atproto SDK: ``createSession`` once, then ``createRecord`` per post with
    link/tag facets and reply root/parent refs."""

    def __init__(
        self,
        channel: str,
        *,
        handle: str,
        app_password: str,
        base_url: str,
        allow_private: list[str] | None = None,
        user_agent: str = "covidnews",
    ) -> None:
        super().__init__(channel)
        from atproto import Client

        self.client = Client(base_url=base_url)
        self.handle = handle
        self._password = app_password
        self._logged_in = False
        self._allowed = parse_networks(allow_private or [])
        self._user_agent = user_agent
        self._blobs: dict[str, Any] = {}  # image URL → uploaded blob ref, for this run

    def _call(self, fn: Any) -> Any:
        from atproto_client import exceptions as ex

        try:
            return fn()
        except ex.RateLimitExceededError as exc:
            reset: datetime | None = exc.reset_at
            raise RateLimited(f"Bluesky: {exc}", reset.timestamp() if reset else None) from exc
        except ex.InvokeTimeoutError as exc:  # may have been applied
            raise Ambiguous(f"Bluesky: {exc}") from exc
        except ex.NetworkError as exc:  # transport failure, 409/413/502
            raise Transient(f"Bluesky: {exc}") from exc
        except ex.RequestErrorBase as exc:
            status = exc.response.status_code if exc.response is not None else 0
            message = f"Bluesky: {exc}"
            if status >= 500:
                raise Transient(message) from exc
            if _is_duplicate(message):
                raise Duplicate(message) from exc
            raise Rejected(message) from exc

    def send(self, post: Outgoing) -> RemoteRef:
        from atproto import models

        self._login()
        reply_to = None
        if post.reply_parent is not None:
            root = post.reply_root or post.reply_parent
            reply_to = models.AppBskyFeedPost.ReplyRef(
                root=models.ComAtprotoRepoStrongRef.Main(uri=root.id, cid=root.cid or ""),
                parent=models.ComAtprotoRepoStrongRef.Main(
                    uri=post.reply_parent.id, cid=post.reply_parent.cid or ""
                ),
            )
        facets = [_facet(f) for f in post.facets]
        record = models.AppBskyFeedPost.Record(
            created_at=self.client.get_current_time_iso(),
            text=post.text,
            reply=reply_to,
            langs=[post.language],
            facets=facets or None,
            embed=self._embed(post.card) if post.card is not None else None,
        )
        try:
            response = self._call(
                lambda: self.client.app.bsky.feed.post.create(
                    self.handle, record, rkey=post.record_key
                )
            )
        except (Transient, Ambiguous, Duplicate):
            # Maybe applied (a 5xx or a timeout after the write; a PDS answers a repeated key
            # with a 500 or "already exists"): the deterministic key says for sure.
            if post.record_key is not None:
                found = self._get(post.record_key)
                if found is not None:
                    return found
            raise
        return RemoteRef(str(response.uri), str(response.cid))

    def _embed(self, card: Card) -> Any:
        """``app.bsky.embed.external`` for ``card``, its image uploaded as the thumbnail blob
        (none when the article has no image or it cannot be had: the card still shows)."""
        from atproto import models

        thumb = None
        if card.image:
            thumb = self._blobs.get(card.image)
            if thumb is None:
                image = fetch_image(card.image, self._allowed, self._user_agent)
                thumb = self._upload(image, card.image) if image is not None else None
        return models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri=card.uri, title=card.title, description=card.description, thumb=thumb
            )
        )

    def _upload(self, image: Image, url: str) -> Any:
        """``uploadBlob``; a refused image (too large, wrong type) makes no thumbnail, a
        failing platform stops the post like any send (it is retried whole)."""

        def upload() -> Any:
            with warnings.catch_warnings():  # the SDK hands httpx bytes as `data=`
                warnings.filterwarnings("ignore", "Use 'content=", DeprecationWarning)
                return self.client.com.atproto.repo.upload_blob(
                    image.data, headers={"Content-Type": image.mime}
                )

        try:
            response = self._call(upload)
        except Rejected as exc:
            log.warning("%s: card image %s refused: %s", self.channel, url, exc)
            return None
        except Ambiguous as exc:  # an unreferenced blob is harmless: try the post again later
            raise Transient(str(exc)) from exc
        self._blobs[url] = response.blob
        return response.blob

    def _login(self) -> None:
        if not self._logged_in:
            self._call(
                lambda: self.client.login(self.handle, self._password, fetch_bsky_profile=False)
            )
            self._logged_in = True

    def _get(self, rkey: str) -> RemoteRef | None:
        """The record with this key on the account, or None when there is none."""
        try:
            found = self._call(lambda: self.client.app.bsky.feed.post.get(self.handle, rkey))
        except Rejected as exc:  # 400/404 RecordNotFound
            if (
                "notfound" in str(exc).lower().replace(" ", "")
                or "could not locate" in str(exc).lower()
            ):
                return None
            raise
        return RemoteRef(str(found.uri), str(found.cid))

    def find(self, post: Outgoing, since: datetime) -> RemoteRef | None:
        """By the post's record key: exact, whatever the account posted since."""
        if post.record_key is None:
            return None
        self._login()
        return self._get(post.record_key)


def _facet(facet: dict[str, Any]) -> Any:
    from atproto import models

    features: list[Any] = []
    for feature in facet["features"]:
        if feature["$type"].endswith("#link"):
            features.append(models.AppBskyRichtextFacet.Link(uri=feature["uri"]))
        else:
            features.append(models.AppBskyRichtextFacet.Tag(tag=feature["tag"]))
    index = facet["index"]
    return models.AppBskyRichtextFacet.Main(
        index=models.AppBskyRichtextFacet.ByteSlice(
            byte_start=index["byteStart"], byte_end=index["byteEnd"]
        ),
        features=features,
    )


# Which channels are live ------------------------------------------------------------------------


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def make_publisher(channel: str, settings: Settings) -> Publisher | None:
    """The live publisher of ``channel``, or None (dry-run: no credentials, or forced)."""
    if settings.bot_dry_run:
        return None
    platform = platform_of(channel).name
    if platform == "x":
        keys = [
            _secret(settings.bot_x_api_key),
            _secret(settings.bot_x_api_secret),
            _secret(settings.bot_x_access_token),
            _secret(settings.bot_x_access_token_secret),
        ]
        if not all(keys):
            return None
        ck, cs, at, ats = (str(k) for k in keys)
        return XPublisher(
            channel,
            consumer_key=ck,
            consumer_secret=cs,
            access_token=at,
            access_token_secret=ats,
            api_base=settings.bot_x_api_base,
        )
    if platform == "mastodon":
        token = _secret(settings.bot_mastodon_access_token)
        if not token:
            return None
        return MastodonPublisher(
            channel, access_token=token, api_base_url=settings.bot_mastodon_api_base_url
        )
    password = _secret(settings.bot_bluesky_app_password)
    if not (settings.bot_bluesky_handle and password):
        return None
    return BlueskyPublisher(
        channel,
        handle=settings.bot_bluesky_handle,
        app_password=password,
        base_url=settings.bot_bluesky_base_url,
        allow_private=settings.crawl_allow_private,
        user_agent=settings.user_agent,
    )
