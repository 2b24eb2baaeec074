"""The NLP workers' model backends: translators (``translate``), language id (``langid``) and
sentence splitting (``sentences``). Which one runs is configuration (``COVIDNEWS_TRANSLATOR`` …),
built once per process by :meth:`nlp_worker.stages.Backends.from_settings`.

The interfaces they implement are in :mod:`covidnews.interfaces`; the embedders live in the core
(:mod:`covidnews.embed`) because search embeds queries with the same code the workers use.
"""
