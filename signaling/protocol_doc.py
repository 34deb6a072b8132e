"""Renders the reference part of docs/protocol.md from the protocol models.

``python -m signaling.protocol_doc`` rewrites the block between the markers in the doc;
tests/test_protocol_doc.py fails when the doc and the models disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rooms.errors import ALL_ERRORS
from signaling import protocol as p

BEGIN = "<!-- BEGIN GENERATED: protocol reference -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def render() -> str:
    lines = [BEGIN, "", f"Protocol version: **{p.PROTOCOL_VERSION}**.", ""]
    lines += ["### Connect (`auth`)", "", *_fields(p.ConnectAuth), ""]
    lines += ["### Client -> server events", ""]
    client: dict[str, type[p.Message]] = {"hello": p.Empty, **p.CLIENT_EVENTS}
    for name, model in client.items():
        lines += [f"#### `{name}`", "", *_fields(model), ""]
    lines += ["### Server -> client events", ""]
    for name, model in p.SERVER_EVENTS.items():
        lines += [f"#### `{name}`", "", *_fields(model), ""]
    lines += ["### Nested objects", ""]
    for name, nested in _nested().items():
        lines += [f"#### {name}", "", *_fields(nested), ""]
    lines += ["### Error codes", "", "| code | meaning |", "|---|---|"]
    for error in sorted(ALL_ERRORS, key=lambda e: e.code):
        doc = (error.__doc__ or "").strip().splitlines()[0] if error.__doc__ else ""
        lines.append(f"| `{error.code}` | {doc} |")
    lines.append("| `internal_error` | The server failed; the event changed nothing. |")
    return "\n".join([*lines, "", END])


def _fields(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema(by_alias=True)
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        return ["(no fields: send `{}`)"]
    required = set(schema.get("required", []))
    rows = ["| field | type | required |", "|---|---|---|"]
    for name, prop in props.items():
        rows.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} |")
    return rows


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in prop:
        return " or ".join(_type(option) for option in prop["anyOf"])
    if "const" in prop:
        return f"`{prop['const']!r}`"
    if "enum" in prop:
        return " / ".join(f"`{value}`" for value in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    limits = [
        f"{label} {prop[key]}"
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", ">="),
            ("maximum", "<="),
            ("pattern", "pattern"),
        )
        if key in prop
    ]
    shown = f"`{kind}`"
    return f"{shown} ({', '.join(limits)})".replace("|", "\\|") if limits else shown


def _nested() -> dict[str, type[BaseModel]]:
    return {
        "SessionDescription": p.SessionDescription,
        "IceCandidate": p.IceCandidate,
        "MediaStream": p.MediaStream,
        "EndpointView": p.EndpointView,
        "AttendeeView": p.AttendeeView,
        "DepartedView": p.DepartedView,
        "RosterMember": p.RosterMember,
    }


def current_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(current_block(text), render()), encoding="utf-8")
    sys.stdout.write(f"updated {DOC}\n")


if __name__ == "__main__":
    main()
