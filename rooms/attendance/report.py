"""Attendance reports over the store: which sessions, which rows, in which format.

The store-facing half of the exports: it picks the sessions whose date of service falls in a
range of program days, loads their specs and ledgers, summarizes them and renders CSV, JSON
lines, FHIR or a JSON view for the admin page. Filters never change the numbers of a row.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from rooms.attendance.exports import fhir_bundle, jsonl_lines, to_csv, utc_text
from rooms.attendance.rules import BillingRules
from rooms.attendance.summary import (
    AttendanceRow,
    PeriodTotal,
    SessionSummary,
    program_totals,
    rows_of,
    summarize,
)
from rooms.errors import InvalidMessage, SessionNotFound
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import SessionKind
from rooms.ledger import LedgerEvent
from rooms.session import SessionSpec
from rooms.store.base import SessionStore

#: The longest range one report may cover: a year of program days.
MAX_DAYS = 366


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    FHIR = "fhir"
    JSON = "json"


CONTENT_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.JSONL: "application/x-ndjson; charset=utf-8",
    Format.FHIR: "application/fhir+json; charset=utf-8",
    Format.JSON: "application/json; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Query:
    """Program days ``first``..``last`` (inclusive) in time zone ``tz``, optionally narrowed."""

    first: date
    last: date
    tz: str
    session: SessionId | None = None
    patient: AttendeeId | None = None
    kind: SessionKind | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidMessage("the range ends before it starts")
        if (self.last - self.first).days >= MAX_DAYS:
            raise InvalidMessage(f"a report covers at most {MAX_DAYS} days")


@dataclass(frozen=True, slots=True)
class Report:
    specs: dict[SessionId, SessionSpec]
    events: list[LedgerEvent]
    summaries: list[SessionSummary]

    @property
    def rows(self) -> list[AttendanceRow]:
        return list(rows_of(self.summaries))


async def load(
    store: SessionStore, query: Query, rules: BillingRules, *, as_of: datetime | None = None
) -> Report:
    """Summaries of the sessions whose date of service is in the query's days; deployment
    checks (``SessionSpec.check``) only when the query names one."""
    zone = ZoneInfo(query.tz)
    # A session belongs to the day it started; look a day wider and filter on that date.
    since = datetime.combine(query.first - timedelta(days=1), time(), zone)
    until = datetime.combine(query.last + timedelta(days=2), time(), zone)
    ids = [query.session] if query.session else await store.sessions_starting(since, until)
    specs: dict[SessionId, SessionSpec] = {}
    events: list[LedgerEvent] = []
    for session in ids:
        try:
            spec = await store.spec(session)
        except SessionNotFound:
            if query.session:
                raise
            continue
        if query.patient and spec.entry(query.patient) is None:
            continue
        if query.kind is not None and spec.kind is not query.kind:
            continue
        if spec.check and not query.session:
            continue  # a deployment check, not care: only shown when asked for by id
        specs[session] = spec
        events += await store.events(session)
    summaries = [
        _only(summary, query.patient)
        for summary in summarize(events, specs, tz=query.tz, rules=rules, as_of=as_of)
        if query.first <= summary.date_of_service <= query.last
    ]
    kept = {s.session for s in summaries}
    return Report(
        specs={k: v for k, v in specs.items() if k in kept},
        events=[e for e in events if e.session in kept],
        summaries=summaries,
    )


def render(report: Report, fmt: Format, rules: BillingRules) -> str:
    """The report as the body of a download."""
    if fmt is Format.CSV:
        return to_csv(report.rows)
    if fmt is Format.JSONL:
        return "".join(line + "\n" for line in jsonl_lines(report.events, report.specs))
    if fmt is Format.FHIR:
        return json.dumps(fhir_bundle(report.summaries), indent=1)
    return json.dumps(admin_view(report, rules), indent=1)


def admin_view(report: Report, rules: BillingRules) -> dict[str, Any]:
    """Rows and per-patient day and week totals, as the admin page shows them."""
    rows = report.rows
    totals = program_totals(rows, rules.iop)
    return {
        "rows": [_row_json(row) for row in rows],
        "days": [_total_json(t) for t in totals.days],
        "weeks": [_total_json(t) for t in totals.weeks],
    }


def _only(summary: SessionSummary, patient: AttendeeId | None) -> SessionSummary:
    if patient is None:
        return summary
    return dataclasses.replace(
        summary, rows=tuple(r for r in summary.rows if r.attendee == patient)
    )


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _row_json(row: AttendanceRow) -> dict[str, Any]:
    return {
        "session": row.session,
        "kind": str(row.kind),
        "purpose": str(row.purpose) if row.purpose else None,
        "date_of_service": row.date_of_service.isoformat(),
        "attendee": row.attendee,
        "role": str(row.role) if row.role else None,
        "first_join": utc_text(row.first_join),
        "last_leave": utc_text(row.last_leave),
        "present_minutes": _minutes(row.present),
        "video_minutes": _minutes(row.video),
        "audio_minutes": _minutes(row.audio),
        "disconnects": row.disconnects,
        "suggested_code": row.suggested_code,
        "modifier": row.modifier,
        "pos": row.pos,
        "status": str(row.status),
        "explanation": row.explanation,
        "intervals": [[utc_text(i.start), utc_text(i.end)] for i in row.intervals],
    }


def _total_json(total: PeriodTotal) -> dict[str, Any]:
    return {
        "patient": total.patient,
        "period": total.period,
        "present_minutes": _minutes(total.present),
        "unattested_minutes": _minutes(total.unattested),
        "target_minutes": _minutes(total.target),
        "sessions": total.sessions,
        "met": total.met,
    }
