"""Validation failures read as sentences: every pattern of every model has words, so no regular
expression ever reaches a person (CLI, API, socket.io ack, settings)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import config
import rooms
import signaling
import web
from rooms.explain import PATTERN_WORDS, describe
from rooms.service import CreateSession


def _models() -> Iterator[type[BaseModel]]:
    for package in (rooms, signaling, web, config):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, BaseModel)
                    and value.__module__ == info.name
                ):
                    yield value


def _patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns(item)


def test_every_pattern_of_every_model_has_words() -> None:
    seen: set[str] = set()
    for model in _models():
        try:
            schema = model.model_json_schema()
        except Exception:  # a model with a type JSON Schema cannot show has no pattern to find
            continue
        seen.update(_patterns(schema))
    assert seen, "no pattern found: the search is broken"
    assert seen <= set(PATTERN_WORDS), sorted(seen - set(PATTERN_WORDS))


def test_a_pattern_failure_is_a_sentence_that_never_quotes_the_input() -> None:
    body = {"kind": "individual", "roster": [{"attendee": "sam@example.org", "role": "patient"}]}
    with pytest.raises(ValidationError) as caught:
        CreateSession.model_validate(body)
    text = describe(caught.value)
    assert text.startswith("roster.0.attendee: must be an id of 1 to 64 letters")
    assert "^" not in text and "sam" not in text
