"""Local fake X, Mastodon and Bluesky endpoints over real HTTP on 127.0.0.1 (a thread each).

Only what the bot calls: X ``POST /2/tweets``, ``GET /2/users/me``, ``GET /2/users/:id/tweets``;
Mastodon ``POST /api/v1/statuses``, ``GET /api/v1/accounts/verify_credentials``,
``GET /api/v1/accounts/:id/statuses``; Bluesky ``createSession``, ``createRecord`` and
``getRecord``, ``uploadBlob`` (the bytes are kept in ``blobs``); and ``GET /media/<name>``, an
image host for link-card thumbnails (``images``: name → (content type, bytes)). What was posted is kept, so the account can be read back; a Bluesky record key is
unique (a repeated key is answered 500, as the reference PDS does: bluesky-social/atproto#3718).
Every request is recorded (method, path, headers, parsed body); scripted answers (status,
headers, body) can be queued per path before the default success; ``applied=True`` makes the
scripted answer come after the post was made (status 0: the connection is dropped unanswered).
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

DID = "did:plc:covidnewstestbot"
# A valid CIDv1 (dag-cbor, sha256) used as the prefix of every fake record cid.
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fake:
    requests: list[Request] = field(default_factory=list)
    scripted: dict[str, deque[tuple[int, dict[str, str], Any]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: what the account holds, by platform: X tweets, Mastodon statuses, Bluesky records by rkey
    tweets: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)  # Mastodon keys
    applied: set[int] = field(default_factory=set)  # ids of scripted answers given after posting
    blobs: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # Bluesky: cid → (type, data)
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # /media/<name>

    def script(
        self, path: str, status: int, body: Any = None, *, applied: bool = False, **headers: str
    ) -> None:
        entry = (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)
        if applied:
            self.applied.add(id(entry))
        self.scripted[path].append(entry)

    def posts(self) -> list[Request]:
        """The requests that create a post."""
        return [
            r
            for r in self.requests
            if r.path in {"/2/tweets", "/api/v1/statuses", "/xrpc/com.atproto.repo.createRecord"}
        ]


def _jwt(sub: str) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    payload = {
        "scope": "com.atproto.access",
        "sub": sub,
        "iat": int(time.time()),
        "exp": int(time.time()) + 7200,
    }
    return f"{b64({'typ': 'JWT', 'alg': 'HS256'})}.{b64(payload)}.c2lnbmF0dXJl"


def _default(
    fake: Fake, path: str, body: Any, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    n = next(fake.counter)
    if path == "/2/tweets":
        tweet = {"id": str(n), "text": body.get("text", ""), "edit_history_tweet_ids": [str(n)]}
        fake.tweets.append(tweet)
        return 201, {}, {"data": tweet}
    if path == "/2/users/me":
        return 200, {}, {"data": {"id": "42", "name": "covidnews", "username": "covidnews"}}
    if path == "/2/users/42/tweets":
        tweets = list(reversed(fake.tweets))[: int(query.get("max_results", 10))]
        return (
            200,
            {},
            {"data": tweets, "meta": {"result_count": len(tweets)}}
            if tweets
            else {"meta": {"result_count": 0}},
        )
    if path == "/api/v1/statuses":
        key = headers.get("Idempotency-Key")
        if key and key in fake.idempotency:  # Mastodon answers a repeated key with the status
            return 200, {}, fake.idempotency[key]
        status = {
            "id": str(n),
            "uri": f"{fake.url}/users/bot/statuses/{n}",
            "url": f"{fake.url}/@bot/{n}",
            "content": "<p>" + html.escape(body.get("status", "")).replace("\n", "<br>") + "</p>",
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "visibility": "public",
            "in_reply_to_id": body.get("in_reply_to_id"),
        }
        fake.statuses.append(status)
        if key:
            fake.idempotency[key] = status
        return 200, {}, status
    if path == "/api/v1/accounts/verify_credentials":
        return 200, {}, {"id": "7", "username": "covidnews", "acct": "covidnews"}
    if path == "/api/v1/accounts/7/statuses":
        return 200, {}, list(reversed(fake.statuses))[: int(query.get("limit", 20))]
    if path == "/xrpc/com.atproto.server.createSession":
        return (
            200,
            {},
            {
                "accessJwt": _jwt(DID),
                "refreshJwt": _jwt(DID),
                "handle": body.get("identifier"),
                "did": DID,
            },
        )
    if path == "/xrpc/com.atproto.repo.createRecord":
        rkey = body.get("rkey") or f"3k{n}"
        if rkey in fake.records:
            return 500, {}, {"error": "InternalServerError", "message": "Internal Server Error"}
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        fake.records[rkey] = {"uri": uri, "cid": f"{CID[:-4]}{n}", "value": body.get("record")}
        return 200, {}, {"uri": uri, "cid": fake.records[rkey]["cid"]}
    if path == "/xrpc/com.atproto.repo.uploadBlob":
        data = body if isinstance(body, bytes) else b""
        # CIDv1, raw codec, sha-256 multihash, base32: what a PDS names a blob with
        digest = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
        cid = "b" + base64.b32encode(digest).decode().lower().rstrip("=")
        mime = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        fake.blobs[cid] = (mime, data)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}
        return 200, {}, {"blob": blob}
    if path.startswith("/media/") and path[len("/media/") :] in fake.images:
        mime, data = fake.images[path[len("/media/") :]]
        return 200, {"Content-Type": mime}, data
    if path == "/xrpc/com.atproto.repo.getRecord":
        found = fake.records.get(query.get("rkey", ""))
        if found is None:
            message = f"Could not locate record: at://{DID}/app.bsky.feed.post/{query.get('rkey')}"
            return 400, {}, {"error": "RecordNotFound", "message": message}
        return 200, {}, found
    return 404, {}, {"error": "NotFound", "message": path}


class _Handler(BaseHTTPRequestHandler):
    fake: Fake

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        body: Any
        if "json" in ctype:
            body = json.loads(raw or b"null")
        elif ctype.startswith("image/"):
            body = raw
        elif "form" in ctype:
            body = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
        else:
            body = raw.decode("utf-8", "replace")
        path, _, raw_query = self.path.partition("?")
        query = {k: v[0] for k, v in parse_qs(raw_query).items()}
        fake = self.fake
        with fake.lock:
            fake.requests.append(Request(self.command, path, dict(self.headers.items()), body))
            queue = fake.scripted.get(path)
            scripted = queue.popleft() if queue else None
            if scripted is None or id(scripted) in fake.applied:
                answer = _default(
                    fake,
                    path,
                    body if isinstance(body, dict | bytes) else {},
                    query,
                    dict(self.headers),
                )
            answer = scripted or answer
        status, headers, payload = answer
        if status == 0:  # the post was made; the answer is lost with the connection
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(payload, bytes):  # an image
            data = payload
        else:
            data = json.dumps(payload if payload is not None else {}).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_POST = _handle
    do_GET = _handle


class FakeServer:
    def __init__(self) -> None:
        self.fake = Fake()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.fake.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Fake:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
