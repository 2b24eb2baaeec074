"""Model backends behind one small registry: translators, embedders, language id, sentences.

Which backend runs is configuration (``COVIDNEWS_TRANSLATOR``, ``COVIDNEWS_EMBEDDER`` …); the
registry functions below build it once per process.
"""
