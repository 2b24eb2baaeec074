"""Implementations of the ``covidnews`` subcommands (imported lazily by ``covidnews.cli``)."""
