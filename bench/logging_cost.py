"""``python -m bench.logging_cost [--lifecycles N] [--rounds R]``: what a log line costs.

The lines of one join lifecycle on the signaling hot path (``joined``, ``control`` admit,
``control`` leave, through a logger bound per connection as signaling binds it, and the access
line of the socket.io websocket) go through the chain :func:`config.logging.configure_logging`
sets up in json mode, and through the chain it set up before (reproduced below: the redactor
running both regexes over every string, the timestamp redacted like any value, a fresh JSON
encoder per line, ``print`` with ``flush=True``, an access line for every request). Both write
to ``/dev/null`` (a real write and flush per line) and to a ``StringIO``.

Old and new run in alternating rounds and each keeps its best round, so a busy machine skews
both alike; the ratio new / old is the figure to read. Before timing, both chains render the
same lines, contact details included, and must agree on every line but the timestamps.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, TextIO, cast

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from structlog.typing import EventDict, Processor, WrappedLogger

from config.logging import (
    _EMAIL_RE,
    _PHONE_CANDIDATE_RE,
    REDACTED,
    _mask_phone,
    configure_logging,
    is_denied_key,
)
from web.app import AccessLogger

Lifecycle = Callable[[], None]

# --- the chain as it was (tests/test_logging_fast_paths.py compares the new one with it) --


def old_redact_text(text: str) -> str:
    text = _EMAIL_RE.sub(REDACTED, text)
    return _PHONE_CANDIDATE_RE.sub(_mask_phone, text)


def old_redact_mapping(data: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in data.items():
        data[key] = REDACTED if is_denied_key(key) else old_redact_value(value)
    return data


def old_redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return old_redact_text(value)
    if isinstance(value, Mapping):
        return old_redact_mapping(dict(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [old_redact_value(v) for v in value]
    return value


def old_redact_pii(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return old_redact_mapping(event_dict)


def configure_old(out: TextIO) -> None:
    """json mode as ``configure_logging`` set it up before (structlog side only)."""
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        old_redact_pii,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


class OldAccessLogger(AbstractAccessLogger):
    """The access logger as it was: a line for every request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        structlog.get_logger("access").info(
            "http_request",
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round(time * 1000, 1),
        )


def configure_new(out: TextIO) -> None:
    configure_logging("json", stream=out)


# --- the lines ------------------------------------------------------------------------------


def lifecycle(access_class: type[AbstractAccessLogger]) -> Lifecycle:
    """One join lifecycle's lines, as signaling and aiohttp log them."""
    signaling = structlog.get_logger("homeroom.signaling")
    access = access_class(logging.getLogger("aiohttp.access"), "")
    upgrade = cast(web.BaseRequest, SimpleNamespace(method="GET", path="/socket.io/"))
    switched = cast(web.StreamResponse, SimpleNamespace(status=101))

    def run() -> None:
        conn = signaling.bind(session="s-Kq3vT9bWx2Lm", endpoint="e-3f9aZ_c81PqR", node="n-1")
        conn.info("joined", attendee="p-201", role="client")
        conn.info("control", what="admit", events=2)
        conn.info("control", what="leave", events=3)
        access.log(upgrade, switched, 12.3456)

    return run


def leaky_lines(access_class: type[AbstractAccessLogger]) -> None:
    """Lines with contact details where they may turn up; both chains must mask them alike."""
    log = structlog.get_logger("homeroom.signaling").bind(session="s-1", endpoint="e-2")
    log.info("joined", attendee="p-201", display_name="Maria Lopez", role="client")
    log.warning("note", text="call +1 (555) 201-4477 or maria@example.org", n=7, ok=True)
    log.info("nested", data={"contact": ["a@b.co", "555.201.4477", "p-7"], "ids": ("s-1",)})
    log.info("numbers", at="2025-03-01 17:00:00", addr="10.0.0.12", big="1234567890", x=1.5)
    try:
        raise ValueError("bad phone 555-201-4477")
    except ValueError:
        log.exception("failed", timestamp="the caller's, overwritten")
    access = access_class(logging.getLogger("aiohttp.access"), "")
    for path, status in (("/api/sessions", 200), ("/socket.io/", 400), ("/healthz", 503)):
        request = cast(web.BaseRequest, SimpleNamespace(method="GET", path=path))
        access.log(request, cast(web.StreamResponse, SimpleNamespace(status=status)), 0.5)


@contextmanager
def chain(configure: Callable[[TextIO], None], out: TextIO) -> Iterator[None]:
    configure(out)
    try:
        yield
    finally:
        structlog.reset_defaults()
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)


def _without_timestamps(text: str) -> list[list[tuple[str, Any]]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [[(k, "<ts>" if k == "timestamp" else v) for k, v in line.items()] for line in lines]


def check_same_output() -> None:
    rendered = []
    for configure, access_class in (
        (configure_old, OldAccessLogger),
        (configure_new, AccessLogger),
    ):
        out = io.StringIO()
        with chain(configure, out):
            leaky_lines(access_class)
        rendered.append(out.getvalue())
    old, new = (_without_timestamps(text) for text in rendered)
    if old != new:
        raise SystemExit(f"the chains disagree:\nold: {old}\nnew: {new}")
    for secret in ("Maria", "555", "4477", "example.org", "a@b.co"):
        if secret in rendered[1]:
            raise SystemExit(f"{secret!r} reached the log")


# --- timing ---------------------------------------------------------------------------------


def best_per_lifecycle(
    variants: dict[str, tuple[Callable[[TextIO], None], type[AbstractAccessLogger]]],
    sink: Callable[[], TextIO],
    lifecycles: int,
    rounds: int,
) -> dict[str, float]:
    """Seconds per lifecycle, best round of each variant, variants alternating."""
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, (configure, access_class) in variants.items():
            out = sink()
            with chain(configure, out):
                run = lifecycle(access_class)
                for _ in range(min(200, lifecycles)):  # warm up
                    run()
                start = time.perf_counter()
                for _ in range(lifecycles):
                    run()
                elapsed = time.perf_counter() - start
            out.close()
            best[name] = min(best[name], elapsed / lifecycles)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logging_cost", description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=5000, help="per round (5000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (7)")
    args = parser.parse_args(argv)
    check_same_output()
    sinks: dict[str, Callable[[], TextIO]] = {
        "/dev/null": lambda: open(os.devnull, "w"),  # noqa: SIM115 - closed after the round
        "StringIO": io.StringIO,
    }
    # Signaling lines alone (3 a lifecycle), then with the access line of the websocket.
    setups: dict[str, dict[str, tuple[Callable[[TextIO], None], type[AbstractAccessLogger]]]] = {
        "signaling line": {"old": (configure_old, _NoAccess), "new": (configure_new, _NoAccess)},
        "join lifecycle": {
            "old": (configure_old, OldAccessLogger),
            "new": (configure_new, AccessLogger),
        },
    }
    print(f"{'':16} {'sink':10} {'old µs':>9} {'new µs':>9} {'new/old':>8}")
    for label, variants in setups.items():
        for sink_name, sink in sinks.items():
            best = best_per_lifecycle(variants, sink, args.lifecycles, args.rounds)
            per = 3 if label == "signaling line" else 1
            old, new = (best[k] / per * 1e6 for k in ("old", "new"))
            print(f"{label:16} {sink_name:10} {old:9.2f} {new:9.2f} {new / old:8.2f}")
    print(
        "join lifecycle = 3 signaling lines + the socket.io websocket's access line "
        "(old: logged; new: skipped on success)"
    )
    return 0


class _NoAccess(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
