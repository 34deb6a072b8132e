"""docs/protocol.md must describe exactly the events, fields and error codes of the models."""

from __future__ import annotations

import re

from rooms import errors
from signaling import protocol_doc
from signaling.protocol import CLIENT_EVENTS, SERVER_EVENTS


def test_the_doc_reference_matches_the_models() -> None:
    text = protocol_doc.DOC.read_text(encoding="utf-8")
    assert protocol_doc.current_block(text) == protocol_doc.render(), (
        "docs/protocol.md is out of date: run `python -m signaling.protocol_doc`"
    )


def test_every_event_is_documented() -> None:
    text = protocol_doc.DOC.read_text(encoding="utf-8")
    for name in [*CLIENT_EVENTS, *SERVER_EVENTS, "hello"]:
        assert f"#### `{name}`" in text


def test_every_object_a_field_names_is_described() -> None:
    """A field typed as an object (``list of `DepartedView` ``) points at its own table."""
    block = protocol_doc.current_block(protocol_doc.DOC.read_text(encoding="utf-8"))
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", block))
    assert named, "the reference names no objects"
    for name in named:
        assert f"#### {name}\n" in block, f"{name} is used in docs/protocol.md but not described"


def test_every_domain_error_is_in_the_table() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, errors.HomeroomError)
        and value is not errors.HomeroomError
    }
    assert defined == set(errors.ALL_ERRORS)
