"""Scrapy spiders. One generic spider (``news``) reads every registry source."""
