"""What the router cannot tell about each route, for web/openapi.py: who may call it, the
models it parses and answers with, its success status. The models are the handlers' own; a
route added to the application without an entry here fails tests/test_openapi.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

Auth = Literal["none", "staff", "admin", "program"]
JSON = ("application/json",)
HTML = ("text/html",)
TEXT = ("text/plain",)


class Problem(BaseModel):
    """Every refusal: a stable code, a text for humans, and sometimes context."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


class Status(BaseModel):
    status: str


ERRORS = Problem


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    summary: str
    auth: Auth = "none"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: The JSON answer's model; None: ``content`` says what comes back.
    response: type[BaseModel] | None = None
    status: int = 200
    content: tuple[str, ...] = JSON

    @property
    def auth_scheme(self) -> str:
        return "program" if self.auth == "program" else "staff"

    @property
    def auth_text(self) -> str:
        return {
            "staff": "Staff: admins for every session, clinicians for their own.",
            "admin": "Staff with role admin only.",
            "program": "The patient holding the standing program link.",
        }.get(self.auth, "")


def operations() -> dict[tuple[str, str], Op]:
    """The table, by (method, path template). Imported late: the handler modules import
    the application's keys, which import the application's parts."""
    from rooms.checkin_report import CheckinReport
    from rooms.service import CreateSession
    from web.app import LinkStatus, VerifyLink
    from web.audit import AuditParams, RangeParams
    from web.checkins import IssueLink, PatientLink, Queue, ReportParams, Taken
    from web.program import AskCheckin, CheckinView, ProgramDay
    from web.records import AttendanceParams
    from web.revocation import RevokeToken
    from web.sessions import ListParams, SessionCreated, SessionList, SessionSummary

    exports = ("text/csv", "application/x-ndjson", "application/fhir+json", "application/json")
    page = "a page for browsers"
    return {
        ("GET", "/"): Op("index", "whether Homeroom runs", content=TEXT),
        ("GET", "/healthz"): Op("healthz", "liveness: the process runs", response=Status),
        ("GET", "/readyz"): Op("readyz", "readiness: the store answers", response=Status),
        ("GET", "/metrics"): Op("metrics", "Prometheus metrics", "admin", content=TEXT),
        ("GET", "/api/openapi.json"): Op("openapi", "this description"),
        ("POST", "/api/sessions"): Op(
            "createSession",
            "schedule a session; answers its links",
            "staff",
            body=CreateSession,
            response=SessionCreated,
            status=201,
        ),
        ("GET", "/api/sessions"): Op(
            "listSessions",
            "sessions scheduled on some program days",
            "staff",
            query=ListParams,
            response=SessionList,
        ),
        ("GET", "/api/sessions/{session}"): Op(
            "getSession", "one session", "staff", response=SessionSummary
        ),
        ("POST", "/api/sessions/{session}/links"): Op(
            "reissueLinks",
            "fresh links for everyone not removed",
            "staff",
            response=SessionCreated,
        ),
        ("POST", "/api/links/verify"): Op(
            "verifyLink",
            "whose link this is and when it works",
            body=VerifyLink,
            response=LinkStatus,
        ),
        ("GET", "/api/attendance"): Op(
            "attendance",
            "the attendance download",
            "admin",
            query=AttendanceParams,
            content=exports,
        ),
        ("GET", "/api/audit"): Op(
            "audit", "staff actions, chain checked", "admin", query=AuditParams
        ),
        ("GET", "/api/audit/verify"): Op(
            "verifyAudit", "check the ledgers' hash chains", "admin", query=RangeParams
        ),
        ("POST", "/api/archive"): Op(
            "archive", "write the daily archive files", "admin", body=RangeParams
        ),
        ("POST", "/api/tokens/revoke"): Op(
            "revokeToken",
            "refuse a staff token on every node from now on",
            "admin",
            body=RevokeToken,
        ),
        ("GET", "/join"): Op("joinPage", page, content=HTML),
        ("GET", "/host"): Op("hostPage", page, content=HTML),
        ("GET", "/console"): Op("consolePage", page, content=HTML),
        ("GET", "/admin"): Op("adminPage", page, content=HTML),
        ("GET", "/program"): Op("programPage", page, content=HTML),
        ("GET", "/api/program"): Op(
            "programDay", "the patient's day: sessions, check-in", "program", response=ProgramDay
        ),
        ("POST", "/api/program/sessions/{session}/link"): Op(
            "programSessionLink", "the way into one of today's sessions", "program"
        ),
        ("POST", "/api/program/checkins"): Op(
            "askCheckin",
            "ask to talk now",
            "program",
            body=AskCheckin,
            response=CheckinView,
            status=201,
        ),
        ("GET", "/api/program/checkins/{checkin}"): Op(
            "showCheckin",
            "one of the patient's check-in requests",
            "program",
            response=CheckinView,
        ),
        ("POST", "/api/program/checkins/{checkin}/cancel"): Op(
            "cancelCheckin", "withdraw a check-in request", "program", response=CheckinView
        ),
        ("GET", "/api/patients"): Op("listPatients", "enrolled patients", "admin"),
        ("POST", "/api/patients/{patient}/link"): Op(
            "issueProgramLink",
            "issue a patient's standing link",
            "admin",
            body=IssueLink,
            response=PatientLink,
            status=201,
        ),
        ("DELETE", "/api/patients/{patient}/link"): Op(
            "revokeProgramLink", "withdraw a patient's standing link", "admin"
        ),
        ("GET", "/api/checkins"): Op("checkinQueue", "the check-in queue", "staff", response=Queue),
        ("GET", "/api/checkins/report"): Op(
            "checkinReport",
            "check-ins per day",
            "admin",
            query=ReportParams,
            response=CheckinReport,
        ),
        ("POST", "/api/checkins/{checkin}/take"): Op(
            "takeCheckin", "pick a request up (clinicians)", "staff", response=Taken, status=201
        ),
    }
