"""The ``real-web`` fault: what real outlets do to a crawler that a tidy demo does not.

- **Moved and missing feeds** (in the registry written with this fault): El Faro del Sur and
  Diario La Montaña list no feed or sitemap at all — El Faro's are announced only by its
  robots.txt (``Sitemap:`` → a sitemap index → a Google News sitemap) and its homepage
  (``<link rel="alternate">``), La Montaña's Atom feed only by its homepage; Noticias del Valle
  lists ``/feed-2019.json``, which now answers 404, while its homepage announces the current
  ``/feed.json``.
- **A consent wall**: La Gaceta's newest article answers with a cookie-consent interstitial
  (Didomi-like markup, no article) instead of the article; only its feed says what it is.
- **A paywall**: one El Faro article declares ``isAccessibleForFree: false`` (schema.org, with a
  ``hasPart`` naming the locked element and the full ``wordCount``) and shows only its first
  :data:`PAYWALL_KEEP` paragraphs, then a subscription box.
"""

from __future__ import annotations

from typing import Any

from crawler.demo_site.common import Article, Ctx, e

#: outlets whose registry entries list no feed or sitemap under the fault
UNLISTED = ("elfaro", "lamontana")
#: outlet whose registry lists a feed that now answers 404 (its new one is on its homepage)
MOVED = "delvalle"
STALE_FEED = "/feed-2019.json"
CONSENT_OUTLET = "gaceta"
PAYWALL_OUTLET = "elfaro"
PAYWALL_KEEP = 2


def _visible(articles: list[Article]) -> list[Article]:
    return [a for a in articles if not a["disallowed"]]


def consent_article(articles: list[Article]) -> Article | None:
    """The consent-walled article of :data:`CONSENT_OUTLET`: its newest (so its feed lists it)."""
    visible = _visible(articles)
    return visible[0] if visible else None


def paywall_article(articles: list[Article]) -> Article | None:
    """The paywalled article of :data:`PAYWALL_OUTLET`: its 8th newest with more paragraphs than
    the paywall shows (clear of the ``slow``/``errors`` faults' articles)."""
    long = [a for a in _visible(articles) if len(a["paragraphs"]) > PAYWALL_KEEP + 1]
    return long[min(7, len(long) - 1)] if long else None


def paywalled(article: Article) -> Article:
    """The article as the paywall serves it: first paragraphs, flagged, full word count."""
    words = sum(len(p.split()) for p in article["paragraphs"])
    return {
        **article,
        "paragraphs": list(article["paragraphs"][:PAYWALL_KEEP]),
        "paywalled": True,
        "word_count": words,
    }


def paywall_jsonld(article: Article) -> dict[str, Any]:
    """What a paywalled article adds to its NewsArticle JSON-LD (Google's paywalled-content
    structured data)."""
    return {
        "isAccessibleForFree": False,
        "wordCount": article["word_count"],
        "hasPart": {
            "@type": "WebPageElement",
            "isAccessibleForFree": False,
            "cssSelector": ".paywall",
        },
    }


PAYWALL_BOX = (
    '<div class="paywall suscriptores"><p><strong>Este contenido es exclusivo para '
    "suscriptores.</strong> Para seguir leyendo, suscribite desde $990 por mes.</p>"
    '<p><a class="boton" href="/suscribite/">Suscribite</a> '
    '<a href="/ingresar/">Ya soy suscriptor</a></p></div>'
)


def consent_page(ctx: Ctx) -> str:
    """The interstitial served instead of the article: a consent manager, nothing else."""
    name = e(ctx.outlet.name)
    return f"""<!DOCTYPE html>
<html lang="es">
<head><meta charset="utf-8"><title>{name}</title>
<script>window.didomiConfig = {{"app": {{"apiKey": "demo"}}}};</script>
</head>
<body class="didomi-popup-open">
<div id="didomi-host" data-nosnippet="true" aria-hidden="false">
<div class="didomi-popup-container didomi-popup-notice" role="dialog"
 aria-labelledby="didomi-title">
<h1 id="didomi-title">Tu privacidad es importante para nosotros</h1>
<div class="didomi-popup-notice-text">
<p>{name} y sus socios utilizamos cookies y tecnologías similares para almacenar y acceder a
información en tu dispositivo, mostrar publicidad personalizada, medir la audiencia y mejorar
nuestros servicios. Puedes aceptar, rechazar o configurar tus preferencias en cualquier momento
desde la política de privacidad.</p>
</div>
<button id="didomi-notice-agree-button" type="button">Aceptar y cerrar</button>
<button id="didomi-notice-disagree-button" type="button">Rechazar</button>
<button id="didomi-notice-learn-more-button" type="button">Configurar</button>
<p><a href="/politica-de-privacidad/">Política de privacidad</a> ·
<a href="/politica-de-cookies/">Política de cookies</a></p>
</div>
</div>
</body>
</html>
"""
