"""Scrapy spiders that collect news from the source registry (built in the crawler issue)."""
