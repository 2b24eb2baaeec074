"""The crawler: one generic Scrapy spider over the source registry (``sources.yaml``), its
pipelines, extraction, the frontier in the store, and the demo news site.

Typing: Scrapy ships its type hints, so hooks name its classes (``Crawler``, ``Spider``,
``Request``); the spider yields a :class:`crawler.items.ArticleItem` that every pipeline takes.
"""
