"""Attendance exports: CSV for spreadsheets, JSON lines for re-summarizing, FHIR R4 for EHRs.

Every export carries pseudonymous ids only; names never reach the domain. Formats are described
column by column in ``docs/attendance.md``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from rooms.attendance.billing import PosHint, Status
from rooms.attendance.rules import BillingRules
from rooms.attendance.summary import AttendanceRow, SessionSummary, summarize
from rooms.ids import SessionId
from rooms.kinds import Role
from rooms.ledger import LedgerEvent
from rooms.session import SessionSpec

CSV_COLUMNS = (
    "session",
    "kind",
    "purpose",
    "date_of_service",
    "attendee",
    "role",
    "first_join",
    "last_leave",
    "present_minutes",
    "video_minutes",
    "audio_minutes",
    "disconnects",
    "suggested_code",
    "modifier",
    "pos",
    "status",
    "explanation",
)
#: A spreadsheet evaluates a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def utc_text(instant: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix; empty for ``None``."""
    if instant is None:
        return ""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_cells(row: AttendanceRow) -> list[str]:
    """One row's cells in :data:`CSV_COLUMNS` order, made safe for spreadsheets."""
    cells = [
        row.session,
        row.kind,
        row.purpose or "",
        row.date_of_service.isoformat(),
        row.attendee,
        row.role or "",
        utc_text(row.first_join),
        utc_text(row.last_leave),
        str(row.present_minutes),
        str(row.video_minutes),
        str(row.audio_minutes),
        str(row.disconnects),
        row.suggested_code or "",
        row.modifier or "",
        row.pos or "",
        row.status,
        row.explanation,
    ]
    return [_defuse(str(c)) for c in cells]


def write_csv(rows: Iterable[AttendanceRow], out: TextIO) -> None:
    """Header and rows, RFC 4180 quoting, CRLF line ends. Open ``out`` with ``newline=""``
    and ``encoding="utf-8"``."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(csv_cells(row))


def to_csv(rows: Iterable[AttendanceRow]) -> str:
    """:func:`write_csv` into a string (encode it as UTF-8 to serve or save it)."""
    buffer = io.StringIO(newline="")
    write_csv(rows, buffer)
    return buffer.getvalue()


def _defuse(cell: str) -> str:
    # A leading apostrophe makes spreadsheets show the text instead of running it.
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class SessionLine(BaseModel):
    """The JSONL line that carries a session's spec; it precedes that session's events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["session"]
    spec: SessionSpec


def jsonl_lines(
    events: Iterable[LedgerEvent], specs: Mapping[SessionId, SessionSpec]
) -> Iterator[str]:
    """The export, line by line without newlines: before a session's first event, one
    ``{"type": "session", "spec": ...}`` line; every event as ``LedgerEvent`` JSON."""
    sent: set[SessionId] = set()
    for event in events:
        if event.session not in sent:
            spec = specs.get(event.session)
            if spec is None:
                raise ValueError(f"no session spec for session {event.session}")
            sent.add(event.session)
            yield SessionLine(type="session", spec=spec).model_dump_json()
        yield event.model_dump_json()


def write_jsonl(
    events: Iterable[LedgerEvent], specs: Mapping[SessionId, SessionSpec], out: TextIO
) -> None:
    """:func:`jsonl_lines`, one per line, to a text stream opened with ``encoding="utf-8"``."""
    for line in jsonl_lines(events, specs):
        out.write(line + "\n")


def read_jsonl(lines: Iterable[str], specs: dict[SessionId, SessionSpec]) -> Iterator[LedgerEvent]:
    """Events of a JSONL export; session lines are added to ``specs`` as they are read.

    Raw ledger archives without session lines work too when ``specs`` is filled beforehand.
    Raises ``ValueError`` naming the line number for a malformed line or a conflicting spec.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # Fast path: an event line never has a top-level "type" key.
            if '"type"' not in line:
                yield LedgerEvent.model_validate_json(line)
                continue
            obj = json.loads(line)
            if isinstance(obj, dict) and obj.get("type") == "session":
                _add_spec(specs, SessionLine.model_validate(obj).spec, number)
            else:
                yield LedgerEvent.model_validate(obj)
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ValueError(f"line {number}: not a ledger event or session line: {exc}") from exc


def _add_spec(specs: dict[SessionId, SessionSpec], spec: SessionSpec, number: int) -> None:
    known = specs.setdefault(spec.id, spec)
    if known != spec:
        raise ValueError(f"line {number}: session {spec.id}: spec differs from the one given")


def summarize_jsonl(
    lines: Iterable[str],
    specs: Mapping[SessionId, SessionSpec] | None = None,
    *,
    tz: str,
    rules: BillingRules,
    as_of: datetime | None = None,
    pos: PosHint | None = None,
) -> Iterator[SessionSummary]:
    """Recompute summaries from a JSONL export (``homeroom attendance summarize --events``)."""
    known = dict(specs or {})
    return summarize(read_jsonl(lines, known), known, tz=tz, rules=rules, as_of=as_of, pos=pos)


_VR = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "VR",
    "display": "virtual",
}
_SESSION_SYSTEM = "urn:homeroom:session"
_ATTENDEE_SYSTEM = "urn:homeroom:attendee"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: Stable, so exporting the same sessions twice gives the same resource ids.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:homeroom:attendance")
_UNENCOUNTERED = frozenset({Status.ABSENT, Status.NEEDS_ATTESTATION})


def fhir_bundle(summaries: Iterable[SessionSummary]) -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection): per session an Encounter, and per attending patient
    an Encounter that is ``partOf`` it. Unattested and absent patients get none."""
    entries: list[dict[str, Any]] = []
    for summary in summaries:
        parent = _resource_id(summary.session)
        entries.append(_entry(parent, _session_encounter(summary, parent)))
        for row in summary.rows:
            if row.role is Role.PATIENT and row.first_join and row.status not in _UNENCOUNTERED:
                own = _resource_id(summary.session, row.attendee)
                entries.append(_entry(own, _patient_encounter(row, own, parent)))
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _resource_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _entry(resource_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource_id}", "resource": resource}


def _session_encounter(summary: SessionSummary, resource_id: str) -> dict[str, Any]:
    period = {"start": utc_text(summary.started_at)}
    if summary.ended_at is not None:
        period["end"] = utc_text(summary.ended_at)
    return {
        "resourceType": "Encounter",
        "id": resource_id,
        "identifier": [{"system": _SESSION_SYSTEM, "value": summary.session}],
        "status": "finished" if summary.ended_at is not None else "in-progress",
        "class": _VR,
        "period": period,
    }


def _patient_encounter(row: AttendanceRow, resource_id: str, parent: str) -> dict[str, Any]:
    finished = row.last_leave is not None and row.status is not Status.OPEN
    period = {"start": utc_text(row.first_join)}
    if finished:
        period["end"] = utc_text(row.last_leave)
    return {
        "resourceType": "Encounter",
        "id": resource_id,
        "status": "finished" if finished else "in-progress",
        "class": _VR,
        "subject": _patient_ref(row.attendee),
        "period": period,
        "length": {
            "value": row.present_minutes,
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        },
        "partOf": {"reference": f"urn:uuid:{parent}"},
    }


def _patient_ref(attendee: str) -> dict[str, Any]:
    identifier = {"system": _ATTENDEE_SYSTEM, "value": attendee}
    # FHIR ids allow no "_", which our pseudonyms do: such a patient is referenced by identifier.
    if _FHIR_ID.match(attendee):
        return {"reference": f"Patient/{attendee}", "identifier": identifier}
    return {"identifier": identifier}
