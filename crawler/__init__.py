"""The crawler: one generic Scrapy spider over the source registry (``sources.yaml``), its
pipelines, extraction, the frontier in the store, and the demo news site.

Typing: Scrapy's hook signatures here (``from_crawler(crawler)``, ``process_request(request,
spider)``, signal handlers) take Scrapy objects as ``Any`` on purpose — Scrapy is not type-checked
in this project (mypy ``ignore_missing_imports`` for ``scrapy.*``), so naming its classes would
check nothing.
"""
