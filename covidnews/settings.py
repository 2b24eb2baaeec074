"""The one typed settings object.

Every component reads its configuration from :class:`Settings`: environment variables with the
``COVIDNEWS_`` prefix, or a ``.env`` file in the working directory. Secrets come only from the
environment. Invalid values fail at start-up with :class:`SettingsError`, whose message names the
environment variable to fix.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

ENV_PREFIX = "COVIDNEWS_"

_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}
_BROKER_SCHEMES = {"redis", "rediss", "amqp", "amqps", "pyamqp", "memory"}


class SettingsError(Exception):
    """A setting is invalid; the message names the environment variable."""


class Settings(BaseSettings):
    """All configuration of covidnews (env prefix ``COVIDNEWS_``, ``.env`` supported)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path("./var"),
        description="Everything one machine needs: SQLite database, index, models cache.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: SQLite in the data dir. "
        "postgresql+psycopg://user@host/db switches to PostgreSQL.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker. Unset: NLP work runs in-process (embedded default).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for shared crawl state and rate limits (optional).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text, or one JSON object per line (with task_id / request_id "
        "when a Celery task or an API request is being handled).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this port from crawl processes and Celery "
        "workers (unset: not served; the API serves /metrics itself).",
    )
    ingest_batch_size: int = Field(
        default=500, ge=1, le=50_000, description="Rows per ingest transaction."
    )
    user_agent: str = Field(
        default="covidnews/0.1 (+https://github.com/covidnews/covidnews; news research crawler)",
        min_length=8,
        description="User-Agent of the crawler; include a contact URL.",
    )
    sources_file: Path | None = Field(
        default=None,
        description="Source registry YAML (default: the bundled crawler/sources.yaml).",
    )
    crawl_allow_private: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Non-public addresses the crawler (and the bot, fetching a link card's image) "
        "may fetch (IPs or CIDRs, comma-separated), e.g. 127.0.0.1 for the demo site. Private, "
        "loopback and link-local are refused otherwise.",
    )

    # NLP -------------------------------------------------------------------------------------
    translator: Literal["apertium", "transformers", "ctranslate2", "none"] = Field(
        default="apertium", description="Translation backend (es⇄en)."
    )
    translation_models: dict[str, str] = Field(
        default_factory=dict,
        description='For transformers/ctranslate2: {"es-en": "model id or path", "en-es": …}.',
    )
    embedder: str = Field(default="e5", description="Embedding backend name (see covidnews.embed).")
    embedding_model: str | None = Field(
        default=None, description="Model id or local path, for the sentence-transformers embedder."
    )
    classifier_path: Path | None = Field(
        default=None, description="Classifier artefact (default: the bundled one)."
    )
    nlp_batch_size: int = Field(default=16, ge=1, le=1024, description="Articles per NLP batch.")
    nlp_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Failures before an article is marked failed."
    )
    nlp_threads: int = Field(default=1, ge=1, le=64, description="Threads per model (per process).")
    process_on_ingest: bool = Field(
        default=True, description="Run the NLP stages on what ingest/crawl stored (in-process)."
    )
    broker_visibility_timeout: int = Field(
        default=3600,
        ge=1,
        description="Seconds before a task taken by a worker that died is delivered again "
        "(Redis broker). Must exceed the longest batch.",
    )
    lease_seconds: int = Field(
        default=300,
        ge=2,
        description="An NLP worker's claim on a batch lasts this long and is renewed while it "
        "works; a claim not renewed in time (its worker died) is taken over by the sweep.",
    )
    handoff_seconds: int = Field(
        default=1800,
        ge=1,
        description="A pending article not claimed this long after its hand-off (collector "
        "killed before handing it over, queue lost in a broker restart) is handed over again "
        "by the sweep.",
    )
    beat_bot: bool = Field(
        default=True,
        description="Celery beat schedules the bot's runs and digest; false when Kubernetes "
        "CronJobs run the bot instead (beat then schedules only the sweep).",
    )
    sweep_seconds: int = Field(
        default=60,
        ge=1,
        description="How often Celery beat runs the sweep (scaled deployment); on one machine "
        "the next crawl, ingest or process run sweeps.",
    )
    index_exact_max: int = Field(
        default=50_000,
        ge=0,
        description="Up to this many vectors the index is exact; past it an IVF index with "
        "8-bit codes (re-ranked exactly) is trained.",
    )
    index_delta_max: int = Field(
        default=20_000,
        ge=1,
        description="Vectors added since the last IVF segment that are searched exactly; "
        "then they become a segment.",
    )
    index_nprobe: int = Field(
        default=0, ge=0, description="IVF lists visited per query (0: chosen by index size)."
    )
    index_max_lag: float = Field(
        default=120.0,
        ge=0,
        description="/readyz answers 503 until this node's indexes have bootstrapped and were "
        "caught up with the store within this many seconds (0: do not check).",
    )
    follow_interval: float = Field(
        default=1.0, gt=0, description="Seconds between two reads of the store's changes."
    )

    # Search ----------------------------------------------------------------------------------
    search_semantic_min_score: float = Field(
        default=0.82,
        ge=0.0,
        le=1.0,
        description="Cosine similarity at or above which an article is a semantic hit (0-1). "
        "Calibrated for the default E5 model, whose scores are compressed: relevant articles "
        "score about 0.83-0.90, unrelated ones 0.78-0.82.",
    )

    # API -------------------------------------------------------------------------------------
    search_semantic_max_hits: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="At most this many nearest articles are semantic hits of a query.",
    )
    api_rate_limit_anonymous: int = Field(
        default=60, ge=1, description="Requests per minute per client IP without an API key."
    )
    api_rate_limit_key: int = Field(
        default=600,
        ge=1,
        description="Requests per minute per API key (default for keys without their own limit).",
    )
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed to call /api/* from a browser (comma-separated; * = any).",
    )
    api_trusted_proxies: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Reverse proxies in front of the API whose X-Forwarded-For hops are trusted "
        "for the client address (0: use the peer address).",
    )

    # Bot -------------------------------------------------------------------------------------
    bot_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["x", "mastodon", "bluesky"],
        description="Channels the bot posts to (comma-separated): x, mastodon, bluesky, and "
        "x-en, mastodon-en, bluesky-en for English posts. A channel without credentials runs "
        "dry-run (posts go to the outbox only).",
    )
    bot_dry_run: bool = Field(
        default=False, description="Force dry-run on every channel, even with credentials."
    )
    bot_per_run_cap: int = Field(
        default=3, ge=0, le=50, description="Story posts per channel per run."
    )
    bot_per_day_cap_x: int = Field(
        default=15,
        ge=0,
        le=100,
        description="Posts per rolling 24 h on X channels (the free tier allows ~17 per user).",
    )
    bot_per_day_cap_mastodon: int = Field(
        default=48, ge=0, le=1000, description="Posts per rolling 24 h on Mastodon channels."
    )
    bot_per_day_cap_bluesky: int = Field(
        default=48, ge=0, le=1000, description="Posts per rolling 24 h on Bluesky channels."
    )
    bot_lookback_hours: int = Field(
        default=48,
        ge=1,
        le=24 * 365,
        description="Stories stored within this many hours are candidates for a run.",
    )
    bot_verdict_min_outlets: int = Field(
        default=3,
        ge=1,
        le=100,
        description="A story carried by at least this many outlets, with a false or misleading "
        "fact-check linked, gets a verdict post (the fact-checker's rating and link).",
    )
    bot_digest_size: int = Field(
        default=5, ge=1, le=20, description="Stories in the daily digest thread."
    )
    bot_settle_seconds: int = Field(
        default=900,
        ge=0,
        description="An unknown post (answer lost) is looked up on the account at every run; "
        "not found this long after it was recorded, it is sent again, once.",
    )
    bot_grace_seconds: int = Field(
        default=600,
        ge=0,
        description="A post recorded but not confirmed sent for this long is marked unknown, "
        "reported, and settled by looking it up on the account (COVIDNEWS_BOT_SETTLE_SECONDS).",
    )
    bot_max_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="On a 429, wait for the platform's reset when it is at most this far; "
        "otherwise stop the channel for this run.",
    )
    bot_retry_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per post and run on 5xx / connection errors."
    )
    bot_retry_backoff_seconds: float = Field(
        default=2.0, ge=0, description="First back-off after a 5xx (doubles each try)."
    )
    bot_max_attempts: int = Field(
        default=9,
        ge=1,
        le=100,
        description="Send attempts over all runs before a post that keeps failing is failed.",
    )
    bot_x_api_base: str = Field(
        default="https://api.twitter.com",
        description="X API v2 base URL (tweepy); change only for a proxy or tests.",
    )
    bot_x_api_key: SecretStr | None = Field(default=None, description="X consumer key (env).")
    bot_x_api_secret: SecretStr | None = Field(default=None, description="X consumer secret (env).")
    bot_x_access_token: SecretStr | None = Field(
        default=None, description="X user access token, OAuth 1.0a (env)."
    )
    bot_x_access_token_secret: SecretStr | None = Field(
        default=None, description="X user access token secret, OAuth 1.0a (env)."
    )
    bot_mastodon_api_base_url: str = Field(
        default="https://mastodon.social", description="The Mastodon instance of the account."
    )
    bot_mastodon_access_token: SecretStr | None = Field(
        default=None, description="Mastodon access token with write:statuses (env)."
    )
    bot_bluesky_base_url: str = Field(
        default="https://bsky.social/xrpc", description="The Bluesky PDS XRPC base URL."
    )
    bot_bluesky_handle: str | None = Field(
        default=None, description="Bluesky handle of the account (e.g. covidnews.bsky.social)."
    )
    bot_bluesky_app_password: SecretStr | None = Field(
        default=None, description="Bluesky app password (env)."
    )

    @field_validator(
        "database_url",
        "broker_url",
        "redis_url",
        "bot_x_api_key",
        "bot_x_api_secret",
        "bot_x_access_token",
        "bot_x_access_token_secret",
        "bot_mastodon_access_token",
        "bot_bluesky_handle",
        "bot_bluesky_app_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("crawl_allow_private", "api_cors_origins", "bot_channels", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().startswith("["):
                import json

                try:
                    return json.loads(value)
                except json.JSONDecodeError:
                    raise ValueError("not a JSON list; use comma-separated values") from None
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("crawl_allow_private")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
        return value

    @field_validator("bot_channels")
    @classmethod
    def _check_channels(cls, value: list[str]) -> list[str]:
        channels: list[str] = []
        for item in value:
            item = item.strip().lower()
            if not re.fullmatch(r"(x|mastodon|bluesky)(-en)?", item):
                raise ValueError(
                    f"unknown bot channel {item!r}: use x, mastodon, bluesky (or NAME-en)"
                )
            if item not in channels:
                channels.append(item)
        return channels

    @field_validator("api_cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        origins = []
        for item in value:
            item = item.strip().rstrip("/")
            if item != "*" and not re.fullmatch(r"https?://[^/\s]+", item):
                raise ValueError(f"not an origin (scheme://host[:port]) or *: {item!r}")
            origins.append(item)
        return origins

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme.lower()
        if scheme in _SQLITE_SCHEMES:
            return value
        if scheme in _POSTGRES_SCHEMES:
            # One PostgreSQL driver (psycopg 3) is installed: normalise the common spellings.
            return "postgresql+psycopg" + value[len(scheme) :]
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        )

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme.lower()
        if scheme not in _BROKER_SCHEMES:
            raise ValueError(
                f"unsupported broker URL scheme {scheme!r}: expected one of "
                + ", ".join(sorted(_BROKER_SCHEMES))
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme.lower()
        if scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"unsupported Redis URL scheme {scheme!r}: use redis://HOST:PORT/DB")
        return value

    # Derived values -------------------------------------------------------------------------

    @property
    def db_url(self) -> str:
        """The effective database URL (SQLite in the data dir unless configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'covidnews.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """True when no broker is set: work runs in-process."""
        return self.broker_url is None

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def search_dir(self) -> Path:
        return self.data_dir / "search"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: Any) -> Settings:  # field values, validated by pydantic
    """Build settings from the environment (and ``.env``), raising :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{env_name(field)}: {message} (got {err.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except SourceError as exc:  # a value that could not even be decoded
        match = re.search(r'field "(\w+)"', str(exc))
        name = env_name(match.group(1)) if match else ENV_PREFIX + "*"
        raise SettingsError(f"invalid settings: {name}: {exc}") from None


@functools.cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()


def mask_url(url: str) -> str:
    """A URL safe to print: any password is replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
