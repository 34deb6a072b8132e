"""Decoding client events: the payload of an event name into its protocol model, or a stable
error that never echoes what the client sent (a client could put anything in it)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rooms.errors import InvalidMessage
from rooms.explain import sentence
from signaling import protocol as p
from signaling.wire import compact_json

_EVENTS: dict[str, type[p.Message]] = {"hello": p.Empty, **p.CLIENT_EVENTS}


def known(event: str) -> str:
    return event if event in _EVENTS else "unknown"


def decode(event: str, args: tuple[Any, ...]) -> p.Message:
    model = _EVENTS.get(event)
    if model is None:
        # Never echo or log the name: a client could put anything in it.
        raise InvalidMessage("unknown event")
    if len(args) > 1:
        raise InvalidMessage("send one payload object per event")
    data = args[0] if args else {}
    try:
        size = len(compact_json(data))
    except ValueError:  # nested deeper than any message of the protocol
        raise InvalidMessage("payload nested too deeply") from None
    if size > p.MAX_EVENT_BYTES:
        raise InvalidMessage(f"payload larger than {p.MAX_EVENT_BYTES} bytes")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """The first failure's field and rule in words (rooms.explain), never the input."""
    errors = exc.errors(include_url=False)
    where = ".".join(str(part) for part in errors[0]["loc"]) or "payload"
    return f"{where}: {sentence(errors[0])}"
