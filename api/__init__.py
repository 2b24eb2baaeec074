"""Flask app: the researchers' search API and the readers' archive.

Built in the search-API and archive issues."""
