"""The REST API on the real aiohttp application: sessions, links, probes, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

import web.app
from config.settings import Settings
from rooms.ids import SessionId
from rooms.ledger import LedgerEvent
from rooms.session import SessionStatus
from rooms.state import SessionState
from rooms.store import MemoryStore, SessionStore, open_store
from rooms.tokens import StaffRole, issue_staff_token
from tests.redis_server import free_port
from tests.served import COUPLES

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
SECRET = "api-test-secret-" + "x" * 32


class Clock:
    """A hand-set clock shared by the app and the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Api:
    """A client of the real app plus what a test needs to check that nothing changed."""

    def __init__(self, client: TestClient[Any, Any], store: SessionStore, clock: Clock) -> None:
        self.client, self.store, self.clock = client, store, clock

    def staff(self, role: str = "admin", subject: str = "a-1", days: int = 1) -> dict[str, str]:
        token = issue_staff_token(
            SECRET, StaffRole(role), subject, self.clock.now, timedelta(days=days)
        )
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
        async with self.client.request(method, path, **kwargs) as resp:
            body: dict[str, Any] = await resp.json()
            assert resp.status == expect, body
            return body

    async def create(self, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("headers", self.staff())
        return await self.call("POST", "/api/sessions", 201, json=body or COUPLES, **kwargs)

    async def refused(
        self, status: int, code: str, body: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        """POST /api/sessions expecting an error, and prove no session was stored."""
        if body is not None:
            kwargs["json"] = body
        answer = await self.call("POST", "/api/sessions", status, **kwargs)
        assert answer["error"] == code
        assert await self.sessions() == []
        return answer

    async def sessions(self) -> list[SessionId]:
        now = self.clock.now
        return await self.store.sessions_starting(
            now - timedelta(days=1), now + timedelta(days=400)
        )

    async def verify(self, url_or_token: str, expect: int = 200) -> dict[str, Any]:
        token = url_or_token.split("#t=", 1)[-1]
        return await self.call("POST", "/api/links/verify", expect, json={"token": token})


def make_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        secret=SECRET,
        public_url="http://homeroom.test:8080",
        var_dir=tmp_path,
        node_id="n-test",
        **extra,
    )


async def _api(settings: Settings, store: SessionStore) -> AsyncIterator[Api]:
    clock = Clock()
    app = web.app.create_app(settings, store, clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, store, clock)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The app on the embedded store."""
    async for made in _api(make_settings(tmp_path), MemoryStore()):
        yield made


@pytest.fixture
async def both(tmp_path: Path, store: SessionStore) -> AsyncIterator[Api]:
    """The app on each backend: embedded and a real Redis (conftest's ``store``)."""
    async for made in _api(make_settings(tmp_path), store):
        yield made


# --- probes -------------------------------------------------------------------------------


async def test_healthz(api: Api) -> None:
    # Tests run no embedded Janus: groups are on the mesh, and healthz says so.
    assert await api.call("GET", "/healthz", 200) == {
        "status": "ok",
        "group_media": {
            "forwarded": False,
            "by": "mesh",
            "reason": "HOMEROOM_JANUS_EMBEDDED is off and no HOMEROOM_JANUS_URLS",
        },
    }


async def test_readyz_on_each_backend(both: Api) -> None:
    assert await both.call("GET", "/readyz", 200) == {"status": "ready"}


async def test_readyz_when_redis_is_down(tmp_path: Path) -> None:
    dead = open_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        async for api in _api(make_settings(tmp_path), dead):
            body = await api.call("GET", "/readyz", 503)
            assert body["error"] == "store_unavailable"
            assert (await api.call("GET", "/healthz", 200))["status"] == "ok"
    finally:
        await dead.close()


class HangingStore(MemoryStore):
    async def ping(self) -> None:
        await asyncio.sleep(60)


async def test_readyz_does_not_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web.app, "READY_TIMEOUT_SECONDS", 0.05)
    async for api in _api(make_settings(tmp_path), HangingStore()):
        assert (await api.call("GET", "/readyz", 503))["error"] == "store_unavailable"


async def test_app_opens_and_closes_its_own_store(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, REDIS_URL=redis_url)
    app = web.app.create_app(settings)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/readyz") as resp:
            assert resp.status == 200
        store = app[web.app.ROOMS].store
        # Behind the metrics' proxy (web/metered_store.py), the store the app opened.
        assert type(getattr(store, "inner", store)).__name__ == "RedisStore"


# --- creating sessions --------------------------------------------------------------------


async def test_create_session_on_each_backend(both: Api) -> None:
    created = await both.create()
    assert created["kind"] == "couples"
    assert created["starts_at"].startswith("2026-11-02T15:00:00")
    assert [(x["attendee"], x["role"], x["function"]) for x in created["links"]] == [
        ("c-17", "clinician", "couples_therapist"),
        ("p-201", "patient", None),
        ("p-202", "patient", None),
    ]
    host, first, _ = (x["url"] for x in created["links"])
    assert host.startswith("http://homeroom.test:8080/host#t=")
    assert first.startswith("http://homeroom.test:8080/join#t=")
    assert await both.sessions() == [created["session"]]
    verified = await both.verify(first)
    assert (verified["session"], verified["attendee"], verified["role"]) == (
        created["session"],
        "p-201",
        "patient",
    )
    state = await both.store.get(SessionId(created["session"]))
    assert state.spec.created_by == "a-1"


async def test_create_with_schedule_and_group_options(api: Api) -> None:
    body = {
        "kind": "group",
        "purpose": "family_education",
        "capacity": 6,
        "starts_at": "2026-11-03T18:00:00-05:00",
        "planned_minutes": 90,
        "roster": [
            {"attendee": "c-1", "role": "clinician"},
            {"attendee": "c-2", "role": "clinician"},
            {"attendee": "p-1", "role": "patient"},
            {"attendee": "g-1", "role": "guest"},
        ],
    }
    created = await api.create(body)
    summary = await api.call("GET", f"/api/sessions/{created['session']}", 200, headers=api.staff())
    assert summary["capacity"] == 6 and summary["purpose"] == "family_education"
    assert summary["planned_minutes"] == 90
    starts = datetime.fromisoformat(summary["starts_at"])
    assert starts == datetime(2026, 11, 3, 23, 0, tzinfo=UTC)


async def test_clinician_creates_a_session_they_host(api: Api) -> None:
    await api.create(headers=api.staff("clinician", "c-17"))


async def test_clinician_cannot_create_for_another_clinician(api: Api) -> None:
    answer = await api.refused(
        403, "not_authorized", COUPLES, headers=api.staff("clinician", "c-99")
    )
    assert "clinician" in answer["detail"]


async def test_no_token_is_not_authenticated(api: Api) -> None:
    await api.refused(401, "not_authenticated", COUPLES, headers={})
    await api.refused(401, "not_authenticated", COUPLES, headers={"Authorization": "Basic eA=="})


async def test_patient_link_is_not_a_bearer_token(api: Api) -> None:
    created = await api.create()
    link_token = created["links"][1]["url"].split("#t=")[1]
    headers = {"Authorization": f"Bearer {link_token}"}
    answer = await api.call("POST", "/api/sessions", 401, json=COUPLES, headers=headers)
    assert answer["error"] == "token_invalid"
    assert await api.sessions() == [created["session"]]


async def test_expired_and_tampered_staff_tokens(api: Api) -> None:
    expired = api.staff(days=1)
    api.clock.now += timedelta(days=2)
    await api.refused(401, "token_expired", COUPLES, headers=expired)
    tampered = api.staff()["Authorization"][:-4] + "AAAA"
    await api.refused(401, "token_invalid", COUPLES, headers={"Authorization": tampered})


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        ('{"kind": "couples", "roster": [', "invalid_message", "not valid JSON"),
        ("", "invalid_message", "needs a JSON body"),
        ("[1, 2]", "invalid_message", "body: Input should be an object"),
        ('{"kind": "triad", "roster": []}', "invalid_roster", "kind: Input should be"),
    ],
)
async def test_malformed_bodies(api: Api, raw: str, code: str, detail: str) -> None:
    headers = {**api.staff(), "Content-Type": "application/json"}
    answer = await api.refused(400, code, data=raw, headers=headers)
    assert detail in answer["detail"]


@pytest.mark.parametrize(
    ("change", "code", "detail"),
    [
        ({"roster": COUPLES["roster"][:2]}, "invalid_roster", "needs 2 patients; the roster has 1"),
        ({"kind": "individual"}, "invalid_roster", "needs 1 patient; the roster has 2"),
        ({"purpose": "peer_support"}, "invalid_roster", "only group sessions carry a purpose"),
        ({"capacity": 4}, "invalid_roster", "only group sessions take a capacity"),
        ({"planned_minutes": 2}, "invalid_message", "planned_minutes: Input should be greater"),
        ({"starts_at": "2026-11-03T18:00:00"}, "invalid_message", "starts_at: Input should have"),
        ({"colour": "blue"}, "invalid_message", "colour: Extra inputs are not permitted"),
        ({"identified_patient": "p-999"}, "invalid_roster", "identified patient must be"),
    ],
)
async def test_rosters_breaking_rules(
    api: Api, change: dict[str, Any], code: str, detail: str
) -> None:
    answer = await api.refused(400, code, {**COUPLES, **change}, headers=api.staff())
    assert detail in answer["detail"]


async def test_an_email_as_attendee_id_is_refused_without_echoing_it(api: Api) -> None:
    roster = [{"attendee": "maria@example.org", "role": "clinician"}, *COUPLES["roster"][1:]]
    answer = await api.refused(
        400, "invalid_roster", {**COUPLES, "roster": roster}, headers=api.staff()
    )
    assert answer["detail"].startswith("roster.0.attendee: must be an id of 1 to 64 letters")
    assert "maria" not in str(answer)


async def test_oversized_body(api: Api) -> None:
    big = {**COUPLES, "padding": "x" * (70 * 1024)}
    answer = await api.refused(413, "body_too_large", big, headers=api.staff())
    assert "64 KiB" in answer["detail"]


# --- reading a session --------------------------------------------------------------------


async def test_get_session_summary(api: Api) -> None:
    created = await api.create()
    summary = await api.call("GET", f"/api/sessions/{created['session']}", 200, headers=api.staff())
    assert summary["session"] == created["session"]
    assert (summary["kind"], summary["status"], summary["locked"]) == (
        "couples",
        "scheduled",
        False,
    )
    assert (summary["capacity"], summary["endpoints"], summary["planned_minutes"]) == (2, 0, 60)
    assert [(m["attendee"], m["role"], m["admission"]) for m in summary["roster"]] == [
        ("c-17", "clinician", "not_joined"),
        ("p-201", "patient", "not_joined"),
        ("p-202", "patient", "not_joined"),
    ]


async def test_who_may_read_a_session(api: Api) -> None:
    created = await api.create()
    path = f"/api/sessions/{created['session']}"
    await api.call("GET", path, 200, headers=api.staff("clinician", "c-17"))
    denied = await api.call("GET", path, 403, headers=api.staff("clinician", "c-99"))
    assert denied["error"] == "not_authorized"
    assert (await api.call("GET", path, 401))["error"] == "not_authenticated"
    missing = await api.call("GET", "/api/sessions/s-nope", 404, headers=api.staff())
    assert missing["error"] == "session_not_found"


# --- verifying links ----------------------------------------------------------------------


async def _patient_link(api: Api, **change: Any) -> tuple[str, str]:
    created = await api.create({**COUPLES, **change})
    return created["session"], created["links"][1]["url"]


async def test_verify_a_good_link(api: Api) -> None:
    session, url = await _patient_link(api)
    assert await api.verify(url) == {
        "session": session,
        "attendee": "p-201",
        "role": "patient",
        "kind": "couples",
        "session_status": "scheduled",
        "starts_at": "2026-11-02T15:00:00Z",
        "ends_at": "2026-11-02T16:00:00Z",
        "clinic": "",  # HOMEROOM_CLINIC_NAME unset
        "clinicians": [],  # p-201 is not enrolled: no care-team names
    }


async def test_verify_too_early_says_when(api: Api) -> None:
    _, url = await _patient_link(api, starts_at="2026-11-03T15:00:00Z")
    answer = await api.verify(url, 401)
    assert answer["error"] == "token_not_yet_valid"
    assert answer["starts_at"] == "2026-11-03T15:00:00Z"
    assert answer["opens_at"] == "2026-11-03T14:30:00Z"


async def test_verify_expired(api: Api) -> None:
    _, url = await _patient_link(api)
    api.clock.now += timedelta(hours=3)
    answer = await api.verify(url, 401)
    assert answer["error"] == "token_expired"
    assert answer["starts_at"] == "2026-11-02T15:00:00Z"


async def test_verify_tampered_and_staff_tokens(api: Api) -> None:
    _, url = await _patient_link(api)
    assert (await api.verify(url[:-5] + "AAAAA", 401))["error"] == "token_invalid"
    staff = api.staff()["Authorization"].removeprefix("Bearer ")
    assert (await api.verify(staff, 401))["error"] == "token_invalid"
    bad = await api.call("POST", "/api/links/verify", 400, json={"tok": "x"})
    assert bad["error"] == "invalid_message"


async def _change(api: Api, session: str, change: Any) -> None:
    def mutate(state: SessionState) -> list[LedgerEvent]:
        change(state)
        return []

    await api.store.transact(SessionId(session), mutate)


async def test_verify_revoked(api: Api) -> None:
    session, url = await _patient_link(api)
    await _change(api, session, lambda s: setattr(s.attendee("p-201"), "removed", True))
    assert (await api.verify(url, 401))["error"] == "token_revoked"


async def test_verify_ended(api: Api) -> None:
    session, url = await _patient_link(api)
    await _change(api, session, lambda s: setattr(s, "status", SessionStatus.ENDED))
    assert (await api.verify(url, 410))["error"] == "session_ended"


async def test_verify_unknown_session(api: Api, tmp_path: Path) -> None:
    _, url = await _patient_link(api)
    # Same secret, other (empty) store: as after restarting a server on the embedded store.
    async for other in _api(make_settings(tmp_path), MemoryStore()):
        assert (await other.verify(url, 404))["error"] == "session_not_found"


# --- pages, headers, logs, odd routes -----------------------------------------------------


@pytest.mark.parametrize("page", ["/join", "/host"])
async def test_link_pages(api: Api, page: str) -> None:
    async with api.client.get(page) as resp:
        html = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert '<script src="/static/js/' in html and 'name="viewport"' in html
    async with api.client.get("/static/js/link.js") as resp:
        script = await resp.text()
        assert resp.status == 200
    # The token leaves the address bar, and no third party is contacted.
    assert "history.replaceState" in script and "/api/links/verify" in script
    assert "http" not in html.replace("http-equiv", "") and "//" not in script.replace("// ", "")


async def test_access_log_has_no_query_and_no_client_address(api: Api) -> None:
    with capture_logs() as logs:
        await api.call("GET", "/healthz?email=maria@example.org", 200)
    (entry,) = [e for e in logs if e["event"] == "http_request"]
    assert entry["path"] == "/healthz" and entry["status"] == 200
    assert "maria" not in str(logs) and "127.0.0.1" not in str(logs)


async def test_unknown_api_routes_answer_json(api: Api) -> None:
    assert (await api.call("GET", "/api/nothing", 404))["error"] == "not_found"
    assert (await api.call("DELETE", "/api/sessions", 405))["error"] == "method_not_allowed"


class BrokenStore(MemoryStore):
    async def get(self, session: SessionId) -> SessionState:
        raise RuntimeError("disk on fire")


async def test_unexpected_errors_are_a_plain_500(tmp_path: Path) -> None:
    async for api in _api(make_settings(tmp_path), BrokenStore()):
        with capture_logs() as logs:
            answer = await api.call("GET", "/api/sessions/s-1", 500, headers=api.staff())
        assert answer == {"error": "internal_error", "detail": "something went wrong on the server"}
        assert any(e["event"] == "unhandled_error" for e in logs)
        assert "disk on fire" not in str(answer)
