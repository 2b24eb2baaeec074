"""The readers' web archive: server-rendered pages (Spanish first, English toggle) and feeds.

``bp`` (blueprint ``archive``) holds the pages (``views``) and the RSS/Atom feeds (``feeds``);
``init_app`` sets up Flask-Babel (catalogs in ``api/translations``) and registers the blueprint.

Every archive response gets the security headers (a Content-Security-Policy without inline
scripts or styles, nosniff, frame denial, referrer and permissions policies). Successful GETs get
an ETag (hash of the body: whatever changed — index, store, language, parameters — shows in the
body), a 304 on a matching ``If-None-Match`` and a short ``Cache-Control``.

Language: ``?lang=es|en`` switches (and is remembered in a cookie); links carry ``lang=en`` while
the interface is English, so a URL always says which language it shows.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, request

log = logging.getLogger(__name__)

bp = Blueprint("archive", __name__)

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"
LANG_COOKIE = "lang"
PAGE_MAX_AGE = 60  # seconds
FEED_MAX_AGE = 300

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def select_locale() -> str:
    """``?lang=``, else the ``lang`` cookie, else Spanish."""
    for value in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGUAGES:
            return str(value)
    return DEFAULT_LANGUAGE


@bp.after_request
def _finish(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    lang = request.args.get("lang")
    cookie_set = False
    if lang in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE,
            str(lang),
            max_age=365 * 86_400,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
        cookie_set = True
    response.vary.add("Cookie")
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        max_age = FEED_MAX_AGE if request.path.startswith("/feeds/") else PAGE_MAX_AGE
        response.cache_control.max_age = max_age
        if cookie_set:
            response.cache_control.private = True
        else:
            response.cache_control.public = True
        if not response.direct_passthrough and not response.is_streamed:
            response.add_etag()
            response.make_conditional(request)
    elif response.status_code >= 400:
        response.cache_control.no_store = True
    return response


def init_app(app: Flask) -> None:
    """Flask-Babel (Spanish default, UTC) and the archive blueprint."""
    from flask_babel import Babel  # type: ignore[import-untyped]

    from api.archive import feeds, views

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    Babel(app, locale_selector=select_locale)
    _ = (feeds, views)  # their routes are registered on import
    app.register_blueprint(bp)
