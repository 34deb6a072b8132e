"""Records for admins: attendance downloads (CSV, JSON lines, FHIR, JSON) and the audit trail.

Every download is itself recorded in the admin audit log (who exported what, when).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms.attendance import report
from rooms.attendance.rules import BillingRules
from rooms.audit import AdminAction
from rooms.ids import AttendeeId, PseudonymStr, SessionId
from rooms.kinds import SessionKind
from rooms.ranges import Day
from rooms.service import Rooms
from rooms.tokens import StaffRole
from web.auth import require_staff
from web.errors import parse_query
from web.keys import ROOMS, RULES, SETTINGS


class AttendanceParams(BaseModel):
    """Query string of ``GET /api/attendance``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: Day = Field(alias="from")
    last: Day = Field(alias="to")
    format: Literal["csv", "jsonl", "fhir", "json"] = "csv"
    session: str | None = Field(default=None, pattern=r"^s-[A-Za-z0-9_-]{4,32}$")
    patient: PseudonymStr | None = None
    kind: SessionKind | None = None


async def attendance(request: web.Request) -> web.Response:
    """``GET /api/attendance?from=DATE&to=DATE[&format=][&session=][&patient=]`` (admins)."""
    settings, rooms = request.app[SETTINGS], request.app[ROOMS]
    staff = require_staff(request, settings.signing_secret, rooms.clock(), StaffRole.ADMIN)
    params = parse_query(request, AttendanceParams)
    fmt = report.Format(params.format)
    body = await export(rooms, request.app[RULES], settings.timezone, params, actor=staff.subject)
    response = web.Response(text=body, content_type=report.CONTENT_TYPES[fmt].split(";")[0])
    response.charset = "utf-8"
    if fmt is not report.Format.JSON:
        extension = {"fhir": "json"}.get(params.format, params.format)
        name = f"homeroom-attendance-{params.first}-{params.last}.{extension}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


async def export(
    rooms: Rooms, rules: BillingRules, tz: str, params: AttendanceParams, *, actor: str
) -> str:
    """Load, render and record one export. Shared by the API and the CLI."""
    query = report.Query(
        first=params.first,
        last=params.last,
        tz=tz,
        session=SessionId(params.session) if params.session else None,
        patient=AttendeeId(params.patient) if params.patient else None,
        kind=params.kind,
    )
    loaded = await report.load(rooms.store, query, rules, as_of=rooms.clock())
    body = report.render(loaded, report.Format(params.format), rules)
    await rooms.store.append_admin_audit(
        actor,
        AdminAction.ATTENDANCE_EXPORT,
        {
            "from": params.first.isoformat(),
            "to": params.last.isoformat(),
            "format": params.format,
            "session": params.session,
            "patient": params.patient,
            "kind": str(params.kind) if params.kind else None,
            "sessions": len(loaded.summaries),
        },
        rooms.clock(),
    )
    return body
