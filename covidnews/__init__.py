"""covidnews: Spanish-language Covid-19 news, aggregated, translated and searchable.

The shared core: settings, store (schema, migrations), ingest and the ``covidnews`` CLI.
Heavy dependencies are imported lazily so the CLI starts fast.
"""

__version__ = "0.1.0"
