"""Search: the keyword index (tantivy), the query language and the engine the API and archive
query.

- :mod:`covidnews.search.keyword` — the tantivy index: schema, per-language analyzers, one
  writer, readers that reload on commit; a rebuildable cache of the store;
- :mod:`covidnews.search.analysis` — the query language (words, phrases, exclusions, passages)
  and its compilation into tantivy queries;
- :mod:`covidnews.search.documents` — what of an article is indexed (store → search documents);
- :mod:`covidnews.search.engine` — keyword, semantic and hybrid search with filters, collapse of
  syndicated copies, cursors, similar articles and counts over time;
- :mod:`covidnews.search.snippets` — highlighted snippets from tantivy, per language field;
- :mod:`covidnews.search.results` — article rows for hits, from the store.
"""
