"""The cheap paths of the logging chain change nothing: same masking, same lines, same flushes.

The redactor skips its regexes for text that could not match them, the timestamp is written
after redaction, and a socket.io connection that worked gets no access line. Each is checked
here against what it replaced.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import re
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, cast

import pytest
import structlog
from aiohttp import web
from structlog.testing import capture_logs

import config.logging as logging_config
from config.logging import (
    _EMAIL_RE,
    _PHONE_CANDIDATE_RE,
    REDACTED,
    LogFormat,
    _mask_phone,
    configure_logging,
    is_denied_key,
    redact_pii,
    redact_text,
)
from tests.test_web_api import Api, api  # noqa: F401 - the fixture
from web.app import AccessLogger


# The redactor as it was (both regexes over every string): what the cheap paths must agree with.
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


# Digits (ASCII, Arabic-Indic, full-width; a superscript is isdigit() but no \d), phone and
# address punctuation, and id characters.
ALPHABET = "0123456789" * 3 + "٣٤５²" + "@@.+-()  :/_" + "abXYZé"


def generated_texts(count: int, seed: int = 20250301) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 32)))
    for digits in range(4, 12):  # around the seven-digit threshold
        for sep in ("", "-", " ", ".", "@x.io "):
            yield sep.join("5" * digits)
            yield f"p-{'1' * digits}"


def test_redact_text_agrees_with_the_regexes_over_every_text() -> None:
    for text in generated_texts(30_000):
        got = redact_text(text)
        assert got == old_redact_text(text), text
        assert type(got) is str


class Kind(StrEnum):
    GROUP = "group"
    CONTACT = "555-201-4477"


@pytest.mark.parametrize("value", [Kind.GROUP, Kind.CONTACT])
def test_str_subclasses_come_back_as_plain_str_as_before(value: Kind) -> None:
    got, want = redact_text(value), old_redact_text(value)
    assert got == want and type(got) is type(want) is str


def test_redact_pii_agrees_with_the_processor_it_replaced() -> None:
    texts = list(generated_texts(3_000, seed=7))
    rng = random.Random(11)
    keys = ["session", "note", "name", "patient_name", "Guardian-Phone", "what", "e-mail", "n"]
    # Values JSON writes as they are; the old processor let others (bytes, objects) through
    # unmasked, to be rendered by their repr: test_values_json_has_no_form_for_are_masked.
    values: list[Any] = [*texts, 3, 2.5, True, None, Kind.CONTACT, Kind.GROUP]
    for _ in range(3_000):
        event: dict[str, Any] = {key: rng.choice(values) for key in rng.sample(keys, 4)}
        event["nested"] = {"contact": [rng.choice(texts), (rng.choice(texts),)], "n": 1}
        event["tags"] = {rng.choice(texts)}
        got = redact_pii(None, "info", dict(event))
        want = old_redact_mapping(dict(event))
        assert list(got) == list(want)
        assert json.dumps(got, default=repr) == json.dumps(want, default=repr)
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_texts_found_clean_are_remembered_within_bounds() -> None:
    for n in range(3 * logging_config._CLEAN_TEXTS_MAX):
        event = {"session": f"s-{n:06x}", "note": "x" * 65, "contact": "555-201-4477"}
        assert redact_pii(None, "info", event) == {**event, "contact": REDACTED}
        assert len(logging_config._CLEAN_TEXTS) <= logging_config._CLEAN_TEXTS_MAX
    assert "x" * 65 not in logging_config._CLEAN_TEXTS  # long texts are checked every time
    assert "555-201-4477" not in logging_config._CLEAN_TEXTS


def test_timestamps_never_look_like_contact_details() -> None:
    """Why the stamp may be written after redaction: masking never changed one."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    rng = random.Random(3)
    for _ in range(20_000):
        moment += timedelta(seconds=rng.randrange(1, 90_000), microseconds=rng.randrange(-1, 2))
        stamp = moment.isoformat().replace("+00:00", "Z")
        assert redact_text(stamp) == stamp


# --- the rendered line -------------------------------------------------------------------


def test_json_keys_keep_their_order_and_the_stamp_is_the_clocks() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    log = structlog.get_logger().bind(session="s-9", endpoint="e-3")
    log.info("joined", attendee="p-201", timestamp="555-201-4477", role="client")
    try:
        raise ValueError("bad phone 555-201-4477")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert list(first) == ["session", "endpoint", "attendee", "timestamp", "role", "event", "level"]
    assert list(second) == ["session", "endpoint", "event", "level", "timestamp", "exception"]
    for line in (first, second):
        assert datetime.fromisoformat(str(line["timestamp"])).tzinfo is not None
    assert first["timestamp"] != "555-201-4477"  # the clock's, not the caller's
    unstamped = [{k: v for k, v in line.items() if k != "timestamp"} for line in (first, second)]
    assert "4477" not in json.dumps(unstamped)  # (a stamp's digits may hold any four)
    assert f"bad phone {REDACTED}" in str(second["exception"])


class Recorder(io.StringIO):
    """A stream that keeps what had been flushed when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = ""

    def flush(self) -> None:
        super().flush()
        self.flushed = self.getvalue()


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_every_line_is_flushed_as_it_is_logged(fmt: LogFormat) -> None:
    out = Recorder()
    configure_logging(fmt, stream=out)
    log = structlog.get_logger().bind(session="s-9")
    for n in range(3):
        log.info("control", what="admit", events=n)
        assert out.flushed == out.getvalue() and out.flushed.count("\n") == n + 1
    logging.getLogger("aiohttp.server").warning("stdlib too")
    assert out.flushed == out.getvalue() and "stdlib too" in out.flushed


# --- the access log ----------------------------------------------------------------------


def _access(path: str, status: int) -> list[dict[str, Any]]:
    logger = AccessLogger(logging.getLogger("aiohttp.access"), "")
    # A request that matched a route whose template is ``path`` (the access log writes the
    # template, never the path the client sent).
    route = SimpleNamespace(resource=SimpleNamespace(canonical=path))
    match = SimpleNamespace(route=route)
    request = cast(web.BaseRequest, SimpleNamespace(method="GET", path=path, match_info=match))
    with capture_logs() as logs:
        logger.log(request, cast(web.StreamResponse, SimpleNamespace(status=status)), 0.25)
    return [e for e in logs if e["event"] == "http_request"]


@pytest.mark.parametrize(
    ("path", "status", "logged"),
    [
        ("/socket.io/", 101, False),
        ("/socket.io/", 200, False),
        ("/socket.io/", 400, True),
        ("/socket.io/", 500, True),
        ("/socket.io", 404, True),
        ("/healthz", 200, True),
        ("/join", 200, True),
        ("/api/sessions", 401, True),
    ],
)
def test_access_lines_for_all_but_working_socketio_connections(
    path: str, status: int, logged: bool
) -> None:
    line = {"event": "http_request", "method": "GET", "path": path, "status": status, "ms": 250.0}
    assert _access(path, status) == ([{**line, "log_level": "info"}] if logged else [])


async def test_a_real_websocket_upgrade_gets_no_access_line(
    api: Api,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, int]] = []
    log = AccessLogger.log

    def spy(self: AccessLogger, request: Any, response: Any, time: float) -> None:
        log(self, request, response, time)
        seen.append((request.path, response.status))

    monkeypatch.setattr(AccessLogger, "log", spy)
    with capture_logs() as logs:
        async with api.client.ws_connect("/socket.io/?EIO=4&transport=websocket") as ws:
            assert (await ws.receive_str()).startswith("0{")  # Engine.IO's open packet
        for _ in range(250):  # the upgrade's access line comes when its handler returns
            if ("/socket.io/", 101) in seen:
                break
            await asyncio.sleep(0.02)
        assert ("/socket.io/", 101) in seen
        async with api.client.get("/socket.io/") as refused:  # no EIO: Engine.IO refuses
            assert refused.status == 400
        await api.call("GET", "/healthz", 200)
    lines = [(e["path"], e["status"]) for e in logs if e["event"] == "http_request"]
    assert lines == [("/socket.io/", 400), ("/healthz", 200)]


# --- json mode's chain in one processor ----------------------------------------------------


class Custom:
    def __structlog__(self) -> str:
        return "custom: 555-201-4477"


class Opaque:
    def __repr__(self) -> str:
        return "<opaque mail maria@example.org>"


def _varied_lines() -> None:
    """Lines through every step of the chain: each method, context variables, exceptions, a
    caller's own level and timestamp, values JSON has no form for, contact details."""
    log = structlog.get_logger("homeroom.signaling").bind(session="s-1", endpoint="e-2")
    log.debug("quiet")
    log.info("joined", attendee="p-201", display_name="Maria Lopez", role=Kind.GROUP)
    log.warning("note", text="call +1 (555) 201-4477 or maria@example.org", n=7, ok=True)
    log.warn("old_alias", level="the caller's", timestamp="the caller's")
    log.error("odd_values", custom=Custom(), opaque=Opaque(), raw=b"555-201-4477", x=1.5)
    log.critical("more", when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), nan=float("nan"))
    log.info("nested", data={"contact": ["a@b.co", "555.201.4477", "p-7"], 3: ("s-1",)})
    log.info("sets", tags={"p-1"}, frozen=frozenset({"maria@example.org"}), none=None)
    structlog.contextvars.bind_contextvars(request="r-9", session="from the context")
    try:
        log.info("with_context", phone_number="555-201-4477")
        try:
            raise ValueError("bad phone 555-201-4477")
        except ValueError:
            log.exception("failed", what="attach")
            log.info("not_an_error", exc_info=False)
            log.error("as_error", exc_info=True)
    finally:
        structlog.contextvars.clear_contextvars()


def _lines_and_stamps(text: str) -> tuple[list[list[tuple[str, Any]]], list[str]]:
    lines = [json.loads(line) for line in text.splitlines()]
    stamps = [str(line["timestamp"]) for line in lines]
    return [[(k, "<ts>" if k == "timestamp" else v) for k, v in line.items()] for line in lines], (
        stamps
    )


def test_json_mode_masks_every_line_and_stamps_it_with_the_clock() -> None:
    out = io.StringIO()
    configure_logging("json", level="debug", stream=out)
    _varied_lines()
    assert out.getvalue().count("\n") == 12
    lines, stamps = _lines_and_stamps(out.getvalue())
    for stamp in stamps:
        assert STAMP.fullmatch(stamp), stamp
    unstamped = json.dumps([dict(line) for line in lines])  # (a stamp's digits may hold any)
    for secret in ("Maria", "555", "4477", "example.org", "a@b.co"):
        assert secret not in unstamped


def test_values_json_has_no_form_for_are_masked_as_rendered() -> None:
    event = {"raw": b"555-201-4477", "custom": Custom(), "opaque": Opaque(), "n": 3, "ok": None}
    got = redact_pii(None, "info", dict(event))
    assert got == {
        "raw": f"b'{REDACTED}'",
        "custom": f"custom: {REDACTED}",
        "opaque": f"<opaque mail {REDACTED}>",
        "n": 3,
        "ok": None,
    }
    assert old_redact_mapping(dict(event))["raw"] == b"555-201-4477"  # what it let through


STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
