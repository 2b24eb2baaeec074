"""Local fake X, Mastodon and Bluesky endpoints over real HTTP on 127.0.0.1 (a thread each).

Only what the bot calls: X ``POST /2/tweets``; Mastodon ``POST /api/v1/statuses``; Bluesky
``POST /xrpc/com.atproto.server.createSession`` and ``POST /xrpc/com.atproto.repo.createRecord``.
Every request is recorded (method, path, headers, parsed body); scripted answers (status,
headers, body) can be queued per path before the default success.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
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

    def script(self, path: str, status: int, body: Any = None, **headers: str) -> None:
        self.scripted[path].append(
            (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)
        )

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


def _default(fake: Fake, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    n = next(fake.counter)
    if path == "/2/tweets":
        return (
            201,
            {},
            {
                "data": {
                    "id": str(n),
                    "text": body.get("text", ""),
                    "edit_history_tweet_ids": [str(n)],
                }
            },
        )
    if path == "/api/v1/statuses":
        return (
            200,
            {},
            {
                "id": str(n),
                "uri": f"{fake.url}/users/bot/statuses/{n}",
                "url": f"{fake.url}/@bot/{n}",
                "content": f"<p>{body.get('status', '')}</p>",
                "created_at": "2021-01-01T00:00:00.000Z",
                "visibility": "public",
                "in_reply_to_id": body.get("in_reply_to_id"),
            },
        )
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
        return 200, {}, {"uri": f"at://{DID}/app.bsky.feed.post/3k{n}", "cid": f"{CID[:-4]}{n}"}
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
        elif "form" in ctype:
            body = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
        else:
            body = raw.decode("utf-8", "replace")
        path = self.path.split("?", 1)[0]
        fake = self.fake
        with fake.lock:
            fake.requests.append(Request(self.command, path, dict(self.headers.items()), body))
            queue = fake.scripted.get(path)
            answer = (
                queue.popleft()
                if queue
                else _default(fake, path, body if isinstance(body, dict) else {})
            )
        status, headers, payload = answer
        data = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
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
