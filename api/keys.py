"""API keys: creation, listing, revocation and lookup (used by the CLI and the app).

A key is ``cn_`` + 43 URL-safe characters (``secrets.token_urlsafe(32)``). It is shown once when
created; the store keeps only its sha256 and its first characters (``prefix``) for display.
Imports no Flask code, so ``covidnews apikey`` stays light.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from covidnews.schema import ApiKey, utcnow

if TYPE_CHECKING:
    from covidnews.store import Store

KEY_PREFIX = "cn_"
PREFIX_LENGTH = 8  # characters of the key kept in clear for display ("cn_" + 5)
MAX_KEY_LENGTH = 200  # longer header values are refused without hashing them


class KeyLookupError(LookupError):
    """No key, or more than one, matches what the user typed."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the app needs to know about a presented key."""

    id: int
    name: str
    prefix: str
    rate_limit: int | None
    revoked: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(store: Store, name: str, rate_limit: int | None = None) -> tuple[str, ApiKey]:
    """Store a new key; returns the key itself (the only time it exists in clear) and the row."""
    name = name.strip()
    if not name:
        raise ValueError("the key's name may not be empty")
    if rate_limit is not None and rate_limit < 1:
        raise ValueError("the rate limit must be at least 1 request per minute")
    key = new_key()
    row = ApiKey(
        name=name[:200],
        prefix=key[:PREFIX_LENGTH],
        key_hash=hash_key(key),
        rate_limit=rate_limit,
        created_at=utcnow(),
    )
    with store.session() as session:
        session.add(row)
        session.flush()
    return key, row


def list_keys(store: Store) -> list[ApiKey]:
    with store.session() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def find_key(store: Store, id_or_prefix: str) -> ApiKey:
    """The key with this id, this displayed prefix (or a start of it) or this whole key."""
    text = id_or_prefix.strip()
    rows: list[ApiKey] = []
    with store.session() as session:
        if text.isdigit():
            row = session.get(ApiKey, int(text))
            rows = [row] if row is not None else []
        elif len(text) > PREFIX_LENGTH:  # the whole key
            rows = list(session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(text))))
        elif len(text) >= 4:
            rows = list(
                session.scalars(
                    select(ApiKey)
                    .where(ApiKey.prefix.startswith(text, autoescape=True))
                    .order_by(ApiKey.id)
                )
            )
    if not rows:
        raise KeyLookupError(f"no API key with id or prefix {text!r}")
    if len(rows) > 1:
        ids = ", ".join(str(row.id) for row in rows)
        raise KeyLookupError(f"{text!r} matches several API keys (ids {ids}); give the id")
    return rows[0]


def revoke_key(store: Store, id_or_prefix: str) -> tuple[ApiKey, bool]:
    """Revoke a key; returns it and whether it was active until now (False: already revoked)."""
    row = find_key(store, id_or_prefix)
    if row.revoked_at is not None:
        return row, False
    now = utcnow()
    with store.session() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == row.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    row.revoked_at = now
    return row, True


def lookup(store: Store, key: str) -> KeyInfo | None:
    """The stored key matching a presented one, or None (unknown)."""
    if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_LENGTH:
        return None
    with store.session() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
        if row is None:
            return None
        return KeyInfo(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            rate_limit=row.rate_limit,
            revoked=row.revoked_at is not None,
        )


def touch(store: Store, key_id: int, when: datetime | None = None) -> None:
    """Record that a key was used (callers throttle this: one write per key per minute)."""
    with store.session() as session:
        session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when or utcnow())
        )


def as_dict(row: ApiKey) -> dict[str, Any]:
    """A key's public fields (never its hash)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "rate_limit": row.rate_limit,
        "status": "revoked" if row.revoked_at else "active",
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }
