"""The Celery app's old name, kept so deployments started with ``-A nlp_worker.celery_app`` keep
working: the app is :mod:`covidnews.celery` (``celery -A covidnews.celery ...``)."""

from covidnews.celery import BEAT_SCHEDULE, BOT_QUEUE, NLP_QUEUE, app, make_app

__all__ = ["BEAT_SCHEDULE", "BOT_QUEUE", "NLP_QUEUE", "app", "make_app"]
