"""What the fuzz suites share: strategies derived from the protocol's pydantic models, a loop
in a thread for hypothesis to drive real clients from, and the invariants checked after
every input (no error line logged, nothing changed by a refused input).

Hypothesis calls a test function synchronously for each example, while the clients of the
real server are asyncio objects: they live on one event loop in a thread of its own
(:class:`Portal`), and each example hands that loop one coroutine and waits for its result.
So every input of a run goes through the same server process and the same connections.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from redis.asyncio import Redis

from rooms.errors import ALL_ERRORS

_T = TypeVar("_T")


#: Inputs per hypothesis example. Hypothesis spends milliseconds on each example whatever it
#: holds, so each draws a batch of inputs, sent one after another.
BATCH = 25


def batch(one: st.SearchStrategy[_T]) -> st.SearchStrategy[list[_T]]:
    return st.lists(one, min_size=BATCH, max_size=BATCH)


#: Inputs each suite sends in a run unless its variable says otherwise (FUZZ_EVENTS, ...);
#: together at least 10,000 (tests/test_fuzz_total.py), written down in docs/development.md.
PLANNED = {"events": 3000, "rest": 3500, "frames": 2500, "http": 2000}


def planned(suite: str) -> int:
    """The inputs ``suite`` sends in this run: its variable ``FUZZ_<SUITE>``, else PLANNED."""
    return int(os.environ.get(f"FUZZ_{suite.upper()}", PLANNED[suite]))


def ran(suite: str, inputs: int, detail: str) -> None:
    """Print what ``suite`` sent, and fail unless it sent every input it planned (hypothesis
    runs each example of the batch once, the derandomized examples the same every run)."""
    print(f"\nfuzz {suite}: {inputs} inputs ({detail})")
    assert inputs >= planned(suite) // BATCH * BATCH, (suite, inputs, planned(suite))


def fuzz_settings(examples: int) -> settings:
    """Every run draws the same ``examples`` inputs (CI reproducible); no run's examples
    outlive it; the server's time per input is not hypothesis's business."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


#: The codes a client may be refused with: the domain's, plus the limits others may add.
ERROR_CODES = frozenset(e.code for e in ALL_ERRORS) | {"rate_limited", "resume_expired"}

#: Any JSON value, small: what a hostile client puts where the model wants something else.
ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


class Portal:
    """An event loop in a daemon thread; ``run`` executes one coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def portal() -> Iterator[Portal]:
    """A fixture body: one portal for a test, closed afterwards."""
    opened = Portal()
    try:
        yield opened
    finally:
        opened.close()


# --- strategies from JSON schemas ---------------------------------------------------------


def from_model(
    model: type[BaseModel], hints: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[Any]:
    """Values ``model`` should accept, from its JSON schema; ``hints`` adds, per property name,
    values that mean something to the server under test (a real attendee, a live endpoint)."""
    schema = model.model_json_schema()
    return _of(schema, schema.get("$defs", {}), dict(hints or {}))


def _of(schema: dict[str, Any], defs: dict[str, Any], hints: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _of(defs[schema["$ref"].rsplit("/", 1)[1]], defs, hints)
    if "anyOf" in schema:
        return st.one_of([_of(s, defs, hints) for s in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, defs, hints)
    if kind == "array":
        items = _of(schema.get("items", {}), defs, hints)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=min(schema.get("maxItems", 6), low + 5))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return ANY_JSON


def _object(schema: dict[str, Any], defs: dict[str, Any], hints: dict[str, Any]) -> Any:
    properties: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        drawn = _of(sub, defs, hints)
        properties[name] = hints[name] | drawn if name in hints else drawn
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {k: v for k, v in properties.items() if k in required},
        optional={k: v for k, v in properties.items() if k not in required},
    )


def _string(schema: dict[str, Any]) -> Any:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        found = st.from_regex(re.compile(schema["pattern"]), fullmatch=True)
        return found.filter(lambda s: high is None or len(s) <= high)
    if schema.get("format") == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    if schema.get("format") == "date":
        return st.dates().map(date.isoformat)
    # Lengths near the limits matter more than the middle; never more than 2 KB drawn.
    top = min(high if high is not None else 200, max(low + 40, 200))
    return st.text(min_size=low, max_size=top) | st.integers(low, top).map(lambda n: "x" * n)


def hostile(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """What a model should refuse, built from what it accepts: a field dropped, a field added,
    a value of the wrong type, or something that is not an object at all."""

    def mutate(draw: st.DrawFn) -> Any:
        value = draw(valid)
        how = draw(st.sampled_from(["drop", "add", "retype", "whole"]))
        if not isinstance(value, dict) or how == "whole":
            return draw(ANY_JSON)
        value = dict(value)
        if how == "add" or not value:
            value[draw(st.text(min_size=1, max_size=12))] = draw(ANY_JSON)
        else:
            key = draw(st.sampled_from(sorted(value)))
            if how == "drop":
                del value[key]
            else:
                value[key] = draw(ANY_JSON)
        return value

    return st.composite(mutate)()


def fuzzed(
    model: type[BaseModel], hints: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[Any]:
    """Half what the model accepts, half what it should refuse."""
    valid = from_model(model, hints)
    return valid | hostile(valid)


# --- invariants ---------------------------------------------------------------------------


#: Plain text in a server's output that is not its start-up banner: a traceback or a crash.
_CRASH = re.compile(r"Traceback|Error|Exception|error|CRITICAL")


def bad_log_lines(lines: list[str]) -> list[str]:
    """Lines of a server's output at error level or above, access lines of a 5xx answer (one
    a client that hung up never saw included), or plain text that reads like a traceback
    (the start-up banner is plain text too, and harmless)."""
    bad = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            if _CRASH.search(line):
                bad.append(line)
            continue
        if (
            not isinstance(entry, dict)
            or entry.get("level") in ("error", "critical", "exception")
            or (entry.get("event") == "http_request" and entry.get("status", 0) >= 500)
        ):
            bad.append(line)
    return bad


async def session_snapshot(redis: Redis, prefix: str, session: str) -> tuple[Any, ...]:
    """What a refused input must leave as it was: the session's state and its ledger."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(f"{prefix}:s:{session}", "doc")
        pipe.xlen(f"{prefix}:s:{session}:ev")
        pipe.xrevrange(f"{prefix}:s:{session}:ev", count=1)
        return tuple(await pipe.execute())


def is_refusal(reply: Any) -> bool:
    """A refusal in the protocol's one shape, with a known code."""
    return (
        isinstance(reply, dict)
        and set(reply) == {"error", "detail"}
        and reply["error"] in ERROR_CODES
        and isinstance(reply["detail"], str)
    )
