"""Fuzz: every REST route, bodies and query strings drawn from the pydantic models the handlers
parse them with (what they accept, and what they should refuse), path ids and bearer tokens
from the real world and from nowhere, sent to one real `homeroom serve` on a real Redis.

After each request: no 5xx, an API refusal is the JSON error body with a known code, a refused
request changed nothing in the store (sessions, their state and ledger, the admin audit log),
and the server logged no error. Afterwards the server still serves a real join.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from rooms.service import CreateSession
from rooms.tokens import StaffRole, issue_staff_token
from tests import fuzz_world as fw
from tests.fuzzing import (
    BATCH,
    ERROR_CODES,
    Portal,
    batch,
    fuzz_settings,
    fuzzed,
    planned,
    portal,
    ran,
)
from tests.signaling_harness import SECRET
from web.app import VerifyLink
from web.audit import AuditParams, RangeParams
from web.records import AttendanceParams
from web.sessions import ListParams

#: Inputs per run (each one request through the real server).
INPUTS = planned("rest")

#: Codes of HTTP-level refusals (web/errors.py) besides the domain's.
HTTP_CODES = {"invalid_message", "not_found", "method_not_allowed", "body_too_large"}
HTTP_CODES |= {"unsupported_media_type", "http_error"}

SESSION = "\x00session"
ADMIN, CLINICIAN, STRANGER = "\x00admin", "\x00clinician", "\x00stranger"
SESSION_IDS = st.sampled_from([SESSION, "s-nothere00", "s-x:ev", "s-x:spec", "..", "%00"])
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "token": st.sampled_from([fw.PATIENT_TOKEN, fw.HOST_TOKEN, fw.OTHER_TOKEN, "x" * 20]),
    "session": SESSION_IDS,
    "patient": st.sampled_from(fw.ROSTER),
    "attendee": st.sampled_from([*fw.ROSTER, "c-admin"]),
}
AUTH = st.sampled_from([ADMIN, CLINICIAN, STRANGER, fw.PATIENT_TOKEN, "", "x" * 30, None])


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    auth: str | None
    query: Any = None
    body: Any = None
    raw: bytes | None = None


def _route(method: str, path: str, *, query: Any = None, body: Any = None) -> Any:
    return st.builds(
        Request,
        st.just(method),
        path,
        AUTH,
        query=query if query is not None else st.none(),
        body=body if body is not None else st.none(),
        raw=st.none() | st.binary(max_size=64) if body is not None else st.none(),
    )


def _fuzzed(model: type[BaseModel]) -> Any:
    return fuzzed(model, HINTS)


REQUESTS = st.one_of(
    _route("POST", st.just("/api/sessions"), body=_fuzzed(CreateSession)),
    _route("POST", st.just("/api/links/verify"), body=_fuzzed(VerifyLink)),
    _route("POST", st.just("/api/archive"), body=_fuzzed(RangeParams)),
    _route("GET", st.just("/api/sessions"), query=_fuzzed(ListParams)),
    _route("GET", st.just("/api/attendance"), query=_fuzzed(AttendanceParams)),
    _route("GET", st.just("/api/audit"), query=_fuzzed(AuditParams)),
    _route("GET", st.just("/api/audit/verify"), query=_fuzzed(RangeParams)),
    _route("GET", SESSION_IDS.map(lambda s: f"/api/sessions/{s}")),
    _route("POST", SESSION_IDS.map(lambda s: f"/api/sessions/{s}/links")),
    _route("GET", (st.text(max_size=20) | SESSION_IDS).map(lambda s: f"/api/sessions/{s}")),
)


def _query(value: Any) -> dict[str, str] | str:
    """A drawn query as a client would send it: an object's values as text, anything else as
    the raw query string."""
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    return "" if value is None else json.dumps(value)


class RestWorld:
    """HTTP against the fuzz world's server, with staff tokens and store snapshots."""

    def __init__(self, world: fw.World, http: aiohttp.ClientSession):
        self.world, self.http = world, http
        now = datetime.now(UTC)
        for key, role, subject in (
            (ADMIN, StaffRole.ADMIN, "admin-1"),
            (CLINICIAN, StaffRole.CLINICIAN, "c-17"),
            (STRANGER, StaffRole.CLINICIAN, "c-99"),
        ):
            world.tokens[key] = issue_staff_token(SECRET, role, subject, now, timedelta(hours=1))
        self.inputs = self.accepted = 0
        self._known: tuple[Any, ...] | None = None

    async def snapshot(self) -> tuple[Any, ...]:
        world = self.world
        async with world.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(f"{world.prefix}:sessions")
            pipe.xlen(f"{world.prefix}:audit")
            pipe.xrevrange(f"{world.prefix}:audit", count=1)
            return (*await pipe.execute(), await world.snapshot())

    async def send_all(self, requests: list[Request]) -> None:
        for request in requests:
            await self.send(request)

    async def send(self, request: Request) -> None:
        world = self.world
        world.tokens[SESSION] = world.session
        path = world.resolve(request.path.replace(SESSION, world.session))
        headers = {}
        if request.auth is not None:
            headers["Authorization"] = f"Bearer {world.resolve(request.auth)}"
        data = request.raw
        if data is None and request.body is not None:
            data = json.dumps(world.resolve(request.body)).encode()
        # Only requests change the store: what the last refused one left is still there.
        before = self._known or await self.snapshot()
        self._known = None
        async with self.http.request(
            request.method,
            world.node.url + path,
            params=_query(world.resolve(request.query)),
            data=data,
            headers=headers,
        ) as response:
            body = await response.read()
        self.inputs += 1
        assert response.status < 500, (response.status, body[:300])
        if response.status < 400:
            self.accepted += 1
        else:
            refusal = json.loads(body)
            assert set(refusal) >= {"error", "detail"}, refusal
            assert refusal["error"] in ERROR_CODES | HTTP_CODES, refusal
            self._known = await self.snapshot()
            assert self._known == before, f"refused {request.method} {path} changed"
        world.check_logs()


@pytest.fixture
def loop() -> Iterator[Portal]:
    yield from portal()


@pytest.fixture
def world(loop: Portal, tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[fw.World]:
    yield from fw.world(loop, tmp_path, redis_url, redis_prefix)


async def _http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


def test_every_rest_route_fuzzed_through_the_real_server(loop: Portal, world: fw.World) -> None:
    http = loop.run(_http())
    rest = RestWorld(world, http)

    @fuzz_settings(INPUTS // BATCH)
    @given(batch(REQUESTS))
    def run(requests: list[Request]) -> None:
        loop.run(rest.send_all(requests))

    try:
        run()
    finally:
        loop.run(http.close())
    loop.run(world.real_join())
    ran("rest", rest.inputs, f"{rest.accepted} accepted")
