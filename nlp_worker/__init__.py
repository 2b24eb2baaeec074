"""Celery workers running the NLP stages: language id, relevance, translation, topics,
embeddings, summaries and the FAISS index (built in the NLP-worker issue)."""
