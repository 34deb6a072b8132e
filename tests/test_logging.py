"""Logging never carries patient-identifying data, through the processor and the real pipeline."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from config.logging import REDACTED, configure_logging, is_denied_key, redact_pii, redact_text

NAME, PHONE, EMAIL = "Maria Lopez", "+1 (555) 201-4477", "maria.lopez@example.org"


def test_denied_keys_are_masked_but_visible_as_withheld() -> None:
    # capture_logs replaces the configured chain; the redactor runs in front of the capture.
    with capture_logs(processors=[redact_pii]) as logs:
        structlog.get_logger().info(
            "admitted",
            session="s-1",
            attendee="p-201",
            display_name=NAME,
            phone_number=PHONE,
            email=EMAIL,
            program="Opioid IOP",
            dob="1990-04-02",
            **{"patient_name": NAME, "Guardian-Phone": PHONE},
        )
    (event,) = logs
    for key in ("display_name", "phone_number", "email", "program", "dob", "patient_name"):
        assert event[key] == REDACTED
    assert event["Guardian-Phone"] == REDACTED
    assert (event["session"], event["attendee"]) == ("s-1", "p-201")


def test_values_that_look_like_contact_details_are_masked_anywhere() -> None:
    with capture_logs(processors=[redact_pii]) as logs:
        structlog.get_logger().warning(
            f"could not text {PHONE}",
            note=f"reach {EMAIL} or 555-201-4477",
            nested={"contact": [EMAIL, "p-7"]},
        )
    (event,) = logs
    dumped = json.dumps(event)
    for secret in (PHONE, EMAIL, "555-201-4477"):
        assert secret not in dumped
    assert event["event"] == f"could not text {REDACTED}"
    assert event["nested"] == {"contact": [REDACTED, "p-7"]}


@pytest.mark.parametrize(
    "harmless",
    [
        "2025-03-01T17:00:00+00:00",
        "2025-03-01 17:00:00",
        "127.0.0.1:8080",
        "10.0.0.12",
        "s-AbC_12-345",
        "p-201",
        "1.16.0",
        "took 1234.5 ms",
        "http://127.0.0.1:8080/join",
        "1234567",
    ],
)
def test_ids_times_and_addresses_are_left_alone(harmless: str) -> None:
    assert redact_text(harmless) == harmless


@pytest.mark.parametrize(
    "contact",
    [PHONE, "555-201-4477", "555.201.4477", "(555) 201 4477", "+442071838750", EMAIL, "a@b.co"],
)
def test_contact_details_are_masked(contact: str) -> None:
    assert contact not in redact_text(f"x {contact} y")


def test_key_matching() -> None:
    assert is_denied_key("First_Name") and is_denied_key("e-mail") and is_denied_key("zip")
    assert not is_denied_key("session") and not is_denied_key("attendee")
    assert not is_denied_key("event") and not is_denied_key("hostname")


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_real_json_pipeline_redacts_and_renders_lines() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    log = structlog.get_logger().bind(session="s-9", endpoint="e-3")
    log.info("joined", attendee="p-201", full_name=NAME, contact=EMAIL)
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        log.exception("failed")
    first, second = _json_lines(out)
    assert first["event"] == "joined" and first["level"] == "info"
    assert (first["session"], first["endpoint"], first["attendee"]) == ("s-9", "e-3", "p-201")
    assert first["full_name"] == REDACTED and first["contact"] == REDACTED
    assert str(first["timestamp"]).endswith("Z")
    assert "ValueError" in str(second["exception"])
    for secret in (NAME, EMAIL, PHONE):
        assert secret not in out.getvalue()


def test_standard_library_records_take_the_same_path() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("aiohttp.server").error("client %s sent garbage", EMAIL)
    (line,) = _json_lines(out)
    assert line["logger"] == "aiohttp.server" and line["level"] == "error"
    # A library's arguments are left out: they are what a client sent, or its address.
    assert line["event"] == "client sent garbage"
    assert EMAIL not in out.getvalue()


def test_console_format_is_readable_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("console", stream=out)
    log = structlog.get_logger()
    log.info("waiting", attendee="p-201", name=NAME, phone=PHONE)
    try:
        raise ValueError(f"no such user {EMAIL}")
    except ValueError:
        log.exception("failed")
    text = out.getvalue()
    assert "waiting" in text and "attendee=p-201" in text and "ValueError" in text
    assert NAME not in text and PHONE not in text and EMAIL not in text


def test_level_filters_debug() -> None:
    out = io.StringIO()
    configure_logging("json", level="info", stream=out)
    structlog.get_logger().debug("noise")
    assert out.getvalue() == ""


def test_engineio_refusals_keep_their_wording_without_what_the_client_sent() -> None:
    # python-engineio writes a client's session id and Origin header into the message itself.
    out = io.StringIO()
    configure_logging("json", stream=out)
    engineio = logging.getLogger("engineio.server")
    later = " (further occurrences of this error will be logged with level INFO)"
    engineio.error(f"Invalid session {NAME}{later}")
    engineio.error(f"https://{NAME.replace(' ', '')}.example.org is not an accepted origin.{later}")
    engineio.error(f"Socket for session {EMAIL} is not connected{later}")
    engineio.error("post request handler error")  # the server's own fault: as it is
    lines = _json_lines(out)
    assert [line["event"] for line in lines] == [
        "Invalid session",
        "Origin not accepted",
        "Socket for session is not connected",
        "post request handler error",
    ]
    assert [line["level"] for line in lines] == ["warning"] * 3 + ["error"]
    assert "Maria" not in out.getvalue() and EMAIL not in out.getvalue()
