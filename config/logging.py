"""structlog set-up: JSON lines in deployment, console in development, never patient data.

Attendance logs are 42 CFR Part 2 / HIPAA records, so every event passes :func:`redact_pii`
before it is rendered: keys that name a person's identifying details are masked, and string
values that look like an e-mail address or a phone number are masked wherever they appear.
Standard-library records (aiohttp's own errors) go through the same chain, as templates
without their arguments and exceptions without their messages (:func:`library_record`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

#: What a masked value becomes: the key stays, so a reader sees that something was withheld.
REDACTED = "[redacted]"

#: Keys that identify a person (or their program, which under 42 CFR Part 2 discloses a
#: substance-use diagnosis). Matched case-insensitively, with "-" read as "_".
DENIED_KEYS = frozenset(
    {
        "name",
        "display_name",
        "first_name",
        "last_name",
        "full_name",
        "given_name",
        "family_name",
        "nickname",
        "phone",
        "phone_number",
        "mobile",
        "telephone",
        "email",
        "e_mail",
        "email_address",
        "address",
        "street",
        "zip",
        "postal_code",
        "dob",
        "birth_date",
        "date_of_birth",
        "ssn",
        "mrn",
        "program",
        "program_name",
        "diagnosis",
        "ip",
        "remote",
        "remote_addr",
        "user_agent",
    }
)
#: A key ending in one of these (``patient_name``, ``guardian_phone``) is denied too.
_DENIED_SUFFIXES = ("_name", "_phone", "_email", "_address", "_dob")

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A run of digits and phone punctuation; _looks_like_phone decides on the digit count.
_PHONE_CANDIDATE_RE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d\s().-]{5,}\d(?![\w.:/-])")
_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# Matches (from the start) a text holding at least 7 digits: fewer cannot make a phone number.
_SEVEN_DIGITS_RE = re.compile(r"\D*+\d" * 7)
_seven_digits = _SEVEN_DIGITS_RE.match

#: Verdicts of :func:`is_denied_key` by key: log keys come from code, so they are few.
_KEY_VERDICTS: dict[str, bool] = {}
_KEY_VERDICTS_MAX = 4096
#: Short texts found to hold nothing to mask: ids and names of events, logged line after line
#: (a connection's session and endpoint on each of its lines), are checked once.
_CLEAN_TEXTS: dict[str, None] = {}
_CLEAN_TEXTS_MAX = 4096
_CLEAN_TEXT_LEN = 64
#: Values that :func:`_redact_value` gives back unchanged, by exact type.
_SCALARS = frozenset({int, float, bool, type(None)})
#: JSON encoders by ``default`` function (JSONRenderer passes structlog's fallback).
_ENCODERS: dict[Callable[[Any], Any], json.JSONEncoder] = {}


def is_denied_key(key: object) -> bool:
    """True when a log key names patient-identifying data (a key of a logged mapping may be
    other than text: ``{3: ...}`` is judged as "3", as JSON writes it)."""
    norm = str(key).lower().replace("-", "_")
    return norm in DENIED_KEYS or norm.endswith(_DENIED_SUFFIXES)


def redact_text(text: str) -> str:
    """Mask e-mail addresses and phone numbers inside free text."""
    # The checks only skip regexes that could not change the text: an e-mail match needs an
    # "@", and a phone candidate is masked only when it holds 7 or more digits (see
    # _looks_like_phone), each a ``\d`` of the text. Most values (ids, event names) have
    # neither, and a run of both regexes costs far more than the checks.
    if type(text) is not str:
        text = str.__str__(text)  # a plain str, as re.sub gives back for a str subclass
    if "@" in text:
        text = _EMAIL_RE.sub(REDACTED, text)
    if _seven_digits(text) is None:
        return text
    return _PHONE_CANDIDATE_RE.sub(_mask_phone, text)


def redact_pii(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask identifying keys and identifying-looking values."""
    return _redact_mapping(event_dict)


def configure_logging(
    fmt: LogFormat = "console", *, level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library to render through one redacting chain."""
    out = stream if stream is not None else sys.stdout
    shared = shared_chain()
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write of the line and its newline, then a flush: every line reaches the stream
        # when it is logged, as with print(..., flush=True), for one call less.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Not cached: module-level loggers would keep the first configuration's stream and
        # level, and tests (capture_logs, configure_logging with a buffer) reconfigure.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(shared, renderer, out, level)


def shared_chain() -> list[Processor]:
    """The steps every line takes before it is rendered, as structlog processors."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _timestamp_slot,
        # Tracebacks become text before redaction, so an exception message is masked too.
        structlog.processors.format_exc_info,
        redact_pii,
        # After redaction, into the slot kept for it: the clock's own text, never a caller's.
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _route_stdlib(shared: list[Processor], renderer: Processor, out: TextIO, level: str) -> None:
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                library_record,
                *shared,
                _client_fault_level,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            # The message's template, never its arguments (see library_record).
            use_get_message=False,
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


#: Exceptions raised for what a client sent (aiohttp's HTTP parser errors), by module.
_CLIENT_FAULT_MODULES = ("aiohttp.http_exceptions",)
_PLACEHOLDER_RE = re.compile(r"(?:\s+(?:from|for|to|by))?\s*%[-#0 +]*\d*(?:\.\d+)?[sdrifx]")


def library_record(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """A library's own log record (aiohttp, asyncio), in the form a Homeroom line has.

    Libraries put what the client sent into their lines: aiohttp's "Error handling request
    from %s" takes the client's address as an argument and its parser's exception quotes the
    raw request bytes (a link token, a name, an e-mail written as ``%40``), which no pattern
    can recognise reliably. So such a line keeps the message's template without its
    arguments, and an exception only its type and where it was raised, never its message.
    A client's malformed request is its fault, not the server's: a warning, not an error.
    """
    event_dict["event"] = _PLACEHOLDER_RE.sub("", str(event_dict.get("event", "")))
    if event_dict.get("logger") == "engineio.server":
        _engineio_refusal(event_dict)
    event_dict.pop("stack_info", None)
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        kind, _, tb = exc_info
        event_dict["error"] = f"{kind.__module__}.{kind.__qualname__}"
        frames = traceback.extract_tb(tb)[-3:]
        event_dict["where"] = [
            f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames
        ]
        if kind.__module__ in _CLIENT_FAULT_MODULES:
            event_dict["_client_fault"] = True
    return event_dict


#: python-engineio's refusals of a client's request. It logs each at error level the first
#: time (then at info), some with what the client sent written into the message itself rather
#: than given as an argument: the session id of the query string, the Origin header. Each is
#: logged in its fixed wording alone, as a warning: the client's fault, not the server's.
_ENGINEIO_REFUSALS = tuple(
    (re.compile(pattern), wording)
    for pattern, wording in (
        (r"Invalid transport for session ", "Invalid transport for session"),
        (r"Invalid transport\b", "Invalid transport"),
        (r"The client is using an unsupported version", "Unsupported Engine.IO version"),
        (r"Invalid JSONP index number", "Invalid JSONP index number"),
        (r"Invalid websocket upgrade", "Invalid websocket upgrade"),
        (r"Invalid session\b", "Invalid session"),
        (r"Socket for session .* is not connected", "Socket for session is not connected"),
        (r"Unexpected HTTP request for session ", "Unexpected HTTP request for session"),
        (r"(?s).* is not an accepted origin\.", "Origin not accepted"),
    )
)


def _engineio_refusal(event_dict: EventDict) -> None:
    for pattern, wording in _ENGINEIO_REFUSALS:
        if pattern.match(event_dict["event"]):
            event_dict["event"] = wording
            event_dict["_client_fault"] = True
            return


def _client_fault_level(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    if event_dict.pop("_client_fault", False):
        event_dict["level"] = "warning"
    return event_dict


def _redact_mapping(data: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    verdicts, clean = _KEY_VERDICTS, _CLEAN_TEXTS
    for key, value in data.items():
        denied = verdicts.get(key)
        if denied is None:
            denied = is_denied_key(key)
            if len(verdicts) < _KEY_VERDICTS_MAX:
                verdicts[key] = denied
        if denied:
            data[key] = REDACTED
        elif type(value) is str:
            if value in clean:
                continue
            # redact_text's own checks, without the call when it would give the value back.
            if "@" in value or _seven_digits(value) is not None:
                data[key] = redact_text(value)
            elif len(value) <= _CLEAN_TEXT_LEN:
                if len(clean) >= _CLEAN_TEXTS_MAX:
                    clean.clear()
                clean[value] = None
        elif type(value) not in _SCALARS:  # numbers and None come through as they are
            data[key] = _redact_value(value)
    return data


def _timestamp_slot(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Reserve the timestamp's key where the stamper used to add it, before redaction.

    The stamper runs after redaction and fills this key in, so the keys keep their order
    (the stamp before ``exception``) while the clock's ISO text, which redaction never
    changed (it cannot look like an e-mail address or a phone number), skips the regexes.
    A caller's own ``timestamp`` is replaced by the clock's, as it always was.
    """
    event_dict["timestamp"] = None
    return event_dict


def _fallback(value: Any) -> Any:
    """What structlog's JSONRenderer writes for a value JSON has no form for."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


def _dumps(obj: Any, *, default: Callable[[Any], Any]) -> str:
    """``json.dumps(obj, default=default)`` with one encoder per ``default``, not per line."""
    encoder = _ENCODERS.get(default)
    if encoder is None:
        encoder = _ENCODERS.setdefault(default, json.JSONEncoder(default=default))
    return encoder.encode(obj)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _redact_mapping(dict(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if value is None or isinstance(value, int | float):  # JSON writes these as they are
        return value
    # Anything else would be rendered as its fallback text (``__structlog__()`` or repr):
    # that text may quote a contact detail as any string may, so it is masked the same way.
    rendered = _fallback(value)
    if isinstance(rendered, str | Mapping | list | tuple | set | frozenset | int | float):
        return _redact_value(rendered)
    return redact_text(repr(rendered))


def _mask_phone(match: re.Match[str]) -> str:
    return REDACTED if _looks_like_phone(match.group()) else match.group()


def _looks_like_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 7 <= digits <= 15 or _DATE_RE.search(candidate) or _IPV4_RE.fullmatch(candidate):
        return False
    # A bare 7-9 digit number is more likely a count or an id than a phone number.
    return digits >= 10 or candidate.startswith("+") or not candidate.isdigit()
