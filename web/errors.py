"""The one place where failures become HTTP responses: ``{"error": code, "detail": ...}``.

Domain errors carry their own code and status. Validation failures name the field at fault but
never echo the submitted value, which could be a name or a phone number typed by mistake.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.http import HttpProcessingError
from pydantic import BaseModel, ValidationError

from rooms import explain
from rooms.errors import HomeroomError, InvalidMessage, InvalidRoster, RateLimited

#: Request bodies are small JSON documents; anything larger is refused before parsing.
MAX_BODY_BYTES = 64 * 1024

_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("web")

#: Codes for HTTP-level failures that are not domain errors.
_HTTP_CODES = {
    400: "invalid_message",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    """The JSON error body every API failure uses; ``extra`` adds context such as a start time."""
    return web.json_response({"error": code, "detail": detail, **extra}, status=status)


def from_domain(exc: HomeroomError, **extra: Any) -> web.Response:
    response = error_response(exc.http_status, exc.code, exc.detail, **extra)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure of an API handler to the JSON error body."""
    try:
        return await handler(request)
    except HomeroomError as exc:
        return from_domain(exc)
    except ValidationError as exc:
        return from_domain(InvalidMessage(describe(exc)))
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = _http_detail(exc)
        return error_response(exc.status, code, detail)
    except Exception:
        # The traceback is logged (through the redacting chain); the client learns nothing.
        route = request.match_info.route.resource
        path = route.canonical if route is not None else "<unmatched>"
        log.exception("unhandled_error", method=request.method, path=path)
        return error_response(500, "internal_error", "something went wrong on the server")


def parse_query(request: web.Request, model: type[_M]) -> _M:
    """Read the query string into ``model``; failures raise InvalidMessage naming the field."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


async def parse_body(
    request: web.Request, model: type[_M], *, roster_fields: Collection[str] = ()
) -> _M:
    """Read a JSON body into ``model``.

    Malformed JSON and schema failures raise InvalidMessage; failures in ``roster_fields``
    (what kind of session, who is on it) raise InvalidRoster, the code clients act on.
    """
    try:
        body = await request.read()  # raises 413 beyond the application's client_max_size
    except (ConnectionResetError, HttpProcessingError):
        # The client stopped sending before the length it declared, or sent a body its own
        # framing (chunks) contradicts: its fault, not the server's (no 500, no error line).
        raise InvalidMessage("the request body did not arrive whole") from None
    if not body.strip():
        raise InvalidMessage("the request needs a JSON body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidMessage("the body is not valid JSON") from None
        if first["loc"] and first["loc"][0] in roster_fields:
            raise InvalidRoster(describe(exc)) from None
        raise InvalidMessage(describe(exc)) from None


def describe(exc: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """``roster.0.attendee: must be an id of ...``: field and rule in words, never the input
    (``names``: what the caller calls a field, see :func:`rooms.explain.describe`)."""
    return explain.describe(exc, names=names)


def _http_detail(exc: web.HTTPException) -> str:
    if exc.status == 413:
        return f"request bodies are limited to {MAX_BODY_BYTES // 1024} KiB"
    return exc.reason
