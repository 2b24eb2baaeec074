"""The 11 topic ids every component uses (``covidnews/data/taxonomy.yaml``, a copy of the shared
taxonomy), with their Spanish and English names."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True)
class Topic:
    id: str
    es: str
    en: str
    about: str

    def name(self, language: str) -> str:
        return self.en if language == "en" else self.es


@functools.cache
def topics() -> tuple[Topic, ...]:
    text = resources.files("covidnews").joinpath("data/taxonomy.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    return tuple(
        Topic(str(t["id"]), str(t["es"]), str(t["en"]), str(t.get("about", "")))
        for t in doc["topics"]
    )


@functools.cache
def topic_ids() -> tuple[str, ...]:
    return tuple(t.id for t in topics())


def topic(topic_id: str) -> Topic | None:
    return next((t for t in topics() if t.id == topic_id), None)
