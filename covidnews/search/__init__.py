"""Search: text analysis, the keyword index and the engine the API and archive query.

- :mod:`covidnews.search.analysis` — accent folding, tokens, Spanish/English stems, query parsing;
- :mod:`covidnews.search.keyword` — the keyword index: segments of postings with positions,
  written by one writer, read without locks, a rebuildable cache of the store;
- :mod:`covidnews.search.documents` — what of an article is indexed (store → search documents);
- :mod:`covidnews.search.engine` — keyword, semantic and hybrid search with filters, collapse of
  syndicated copies, cursors, similar articles and counts over time.
"""
