"""Validation failures as sentences a person can act on, never as regular expressions.

pydantic says ``String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'``; a clinician
at the command line or a page reading the API's error needs "an id is 1 to 64 letters, digits,
dots, dashes or underscores". The sentence names the field and the rule, never the input (it
may be a name or a phone number typed by mistake, which must not reach a log).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rooms.ids import ID_PATTERN

#: The patterns of the models, in words. A pattern missing here reads "is not in the expected
#: form", still no regular expression (tests/test_explain.py checks every model's patterns).
PATTERN_WORDS: dict[str, str] = {
    ID_PATTERN: (
        "must be an id of 1 to 64 letters, digits, dots, dashes or underscores, starting with a "
        "letter or digit (a pseudonym, never a name, e-mail address or phone number)"
    ),
    r"^s-[A-Za-z0-9_-]{4,32}$": (
        "must be a session id: s- followed by 4 to 32 letters, digits, dashes or underscores"
    ),
    r"^e-[A-Za-z0-9_-]{4,32}$": (
        "must be an endpoint id: e- followed by 4 to 32 letters, digits, dashes or underscores"
    ),
    r"^[a-z][a-z0-9_.-]{0,63}$": (
        "must be a lower-case word of up to 64 letters, digits, dots, dashes or underscores"
    ),
    r"^[^\x00-\x1f\x7f<>]+$": "must be plain text, without line breaks, control characters, < or >",
    r"^[^\x00-\x1f\x7f<>]*$": "must be plain text, without line breaks, control characters, < or >",
    r"^[A-Za-z0-9_-]{8,64}$": "must be a token id: 8 to 64 letters, digits, dashes or underscores",
    r"^[0-9]{4}[0-9A-Z]$": "must be a five-character billing code such as 90837",
    r"^[0-9]{2}$": "must be a two-digit place of service such as 10",
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$": (
        "must be 1 to 32 letters, digits, dots, dashes or underscores, starting with a letter "
        "or digit"
    ),
}


def describe(
    exc: ValidationError, where_default: str = "body", names: Mapping[str, str] | None = None
) -> str:
    """``roster.0.attendee: must be an id of ...``: the first failure's field and rule, in words,
    with how many more failures there are. ``names`` gives a field the name its caller knows
    it by (a command-line option: ``planned_minutes`` -> ``--minutes``)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    if loc and names and loc[0] in names:
        loc[0] = names[loc[0]]
    where = ".".join(loc) or where_default
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {sentence(first)}{more}"


def sentence(error: ErrorDetails) -> str:
    """One pydantic error as words."""
    if error["type"] == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        return PATTERN_WORDS.get(pattern, "is not in the expected form")
    message = str(error["msg"])
    # A validator's own ValueError already is a sentence; pydantic prefixes it.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
