"""Exports: CSV a spreadsheet can open safely, a FHIR R4 Bundle whose references resolve, and a
JSONL log that re-summarizes to the same rows."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from rooms.attendance.exports import (
    CSV_COLUMNS,
    fhir_bundle,
    jsonl_lines,
    read_jsonl,
    summarize_jsonl,
    to_csv,
    write_jsonl,
)
from rooms.attendance.summary import SessionSummary, rows_of, summarize
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import GroupPurpose, SessionKind
from rooms.ledger import EventKind, LedgerEvent
from rooms.session import SessionSpec
from tests.test_attendance_summary import (
    P1,
    P2,
    RULES,
    T0,
    TZ,
    C,
    Ledger,
    make_spec,
    ms,
)

P3 = AttendeeId("p_203")  # a valid pseudonym that is not a valid FHIR id ("_")


def program() -> tuple[list[LedgerEvent], dict[SessionId, SessionSpec]]:
    """Three sessions with interleaved events: individual, couples (shared device), a group
    still running (no session_ended)."""
    individual = (
        Ledger("s-ind")
        .admit(0, C, "e-c")
        .admit(ms(1), P1)
        .add(ms(2), EventKind.MUTED, P1, "e-1", C, type="clinician")  # a "type" inside data
        .leave(ms(46), P1)
        .end(ms(50))
    )
    home = (
        Ledger("s-cpl", T0 + timedelta(hours=1))
        .admit(0, C, "e-c")
        .admit(0, P1, "e-home")
        .add(0, EventKind.ADMITTED, P2, "e-home", P1, shared_device=True)
        .add(ms(5), EventKind.MODALITY, endpoint="e-home", modality="audio")
        .add(ms(30), EventKind.DISCONNECTED, endpoint="e-home", actor="system")
        .add(ms(30, 20), EventKind.RESUMED, endpoint="e-home", actor="system")
        .add(ms(50), EventKind.LEFT, endpoint="e-home")
        .end(ms(50))
    )
    group = (
        Ledger("s-grp", T0 + timedelta(minutes=30))
        .admit(0, P3, "e-3")
        .admit(ms(5), P1)
        .leave(ms(50), P3, "e-3")
    )
    specs = {
        SessionId("s-ind"): make_spec(session="s-ind"),
        SessionId("s-cpl"): make_spec(
            SessionKind.COUPLES,
            session="s-cpl",
            patients=(P1, P2),
            starts_at=T0 + timedelta(hours=1),
        ),
        SessionId("s-grp"): make_spec(
            SessionKind.GROUP,
            session="s-grp",
            patients=(P1, P3),
            purpose=GroupPurpose.THERAPY_GROUP,
            planned=90,
            starts_at=T0 + timedelta(minutes=30),
        ),
    }
    events = sorted(
        [*individual.events, *home.events, *group.events], key=lambda e: (e.at, e.session, e.seq)
    )
    return events, specs


AS_OF = T0 + timedelta(hours=2)


def summaries() -> list[SessionSummary]:
    events, specs = program()
    return list(summarize(events, specs, tz=TZ, rules=RULES, as_of=AS_OF))


# --- CSV -----------------------------------------------------------------------------------


def test_csv_has_the_documented_header_crlf_and_one_row_per_attendee_per_session() -> None:
    text = to_csv(rows_of(summaries()))
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    assert list(CSV_COLUMNS) == [
        "session", "kind", "purpose", "date_of_service", "attendee", "role", "first_join",
        "last_leave", "present_minutes", "video_minutes", "audio_minutes", "disconnects",
        "suggested_code", "modifier", "pos", "status", "explanation",
    ]  # fmt: skip
    assert "\n" not in text.replace("\r\n", "")
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(table) == 2 + 3 + 3  # roster rows of each session
    assert table[1] == {
        "session": "s-ind",
        "kind": "individual",
        "purpose": "",
        "date_of_service": "2024-06-03",
        "attendee": "p-201",
        "role": "patient",
        "first_join": "2024-06-03T14:01:00Z",
        "last_leave": "2024-06-03T14:46:00Z",
        "present_minutes": "45",
        "video_minutes": "45",
        "audio_minutes": "0",
        "disconnects": "0",
        "suggested_code": "90834",
        "modifier": "95",
        "pos": "10",
        "status": "suggested",
        "explanation": "individual psychotherapy 38-52 min: 45 min present -> 90834; "
        "video 45 min, audio-only 0 min -> modifier 95; POS 10",
    }


def test_csv_rows_for_shared_device_audio_only_and_a_live_session() -> None:
    table = {
        (r["session"], r["attendee"]): r
        for r in csv.DictReader(io.StringIO(to_csv(rows_of(summaries())), newline=""))
    }
    ip = table[("s-cpl", "p-201")]
    assert (ip["present_minutes"], ip["video_minutes"], ip["audio_minutes"]) == ("49", "5", "44")
    assert (ip["disconnects"], ip["suggested_code"], ip["modifier"]) == ("1", "90847", "93")
    partner = table[("s-cpl", "p-202")]
    assert (partner["status"], partner["suggested_code"]) == ("needs_attestation", "")
    live = table[("s-grp", "p-201")]
    assert (live["status"], live["last_leave"], live["present_minutes"]) == ("open", "", "85")
    done = table[("s-grp", "p_203")]
    assert (done["suggested_code"], done["status"]) == ("90853", "suggested")


@pytest.mark.parametrize("evil", ["=HYPERLINK(1)", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_evaluate_get_an_apostrophe(evil: str) -> None:
    # Session ids are not pseudonym-checked, so one is the realistic injection vector.
    spec = make_spec(session=evil)
    (summary,) = summarize(
        Ledger(evil).attend(P1, 0, ms(20)).end(ms(20)).events, {spec.id: spec}, tz=TZ, rules=RULES
    )
    (_, row, *_) = csv.reader(io.StringIO(to_csv(summary.rows), newline=""))
    assert row[0] == "'" + evil
    assert row[1] == "individual"


# --- FHIR ----------------------------------------------------------------------------------


def test_fhir_bundle_has_a_session_encounter_and_one_per_attending_patient() -> None:
    bundle = fhir_bundle(summaries())
    json.dumps(bundle)  # serializable as is
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    resources = [e["resource"] for e in bundle["entry"]]
    assert all(r["resourceType"] == "Encounter" for r in resources)
    parents = [r for r in resources if "partOf" not in r]
    children = [r for r in resources if "partOf" in r]
    # in the order sessions complete; the still-running group comes last
    assert [p["identifier"][0]["value"] for p in parents] == ["s-ind", "s-cpl", "s-grp"]
    # s-ind: p-201; s-grp: p-201 (live), p_203; s-cpl: p-201 only (p-202 needs attestation)
    assert len(children) == 4


def test_fhir_encounters_have_required_structure_and_references_resolve() -> None:
    bundle = fhir_bundle(summaries())
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls)
    for entry in bundle["entry"]:
        res = entry["resource"]
        assert entry["fullUrl"] == f"urn:uuid:{res['id']}"
        assert res["status"] in {"finished", "in-progress"}
        assert res["class"] == {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        }
        assert "start" in res["period"]
        if "partOf" in res:
            assert res["partOf"]["reference"] in urls
            assert set(res["length"]) == {"value", "unit", "system", "code"}
            assert res["length"]["system"] == "http://unitsofmeasure.org"
            assert res["subject"]["identifier"]["system"] == "urn:homeroom:attendee"


def _child(bundle: dict[str, Any], session: str, attendee: str) -> dict[str, Any]:
    parent = next(
        e["fullUrl"]
        for e in bundle["entry"]
        if e["resource"].get("identifier", [{}])[0].get("value") == session
    )
    found: list[dict[str, Any]] = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("partOf", {}).get("reference") == parent
        and e["resource"]["subject"]["identifier"]["value"] == attendee
    ]
    assert len(found) == 1
    return found[0]


def test_fhir_patient_encounter_values() -> None:
    bundle = fhir_bundle(summaries())
    done = _child(bundle, "s-ind", "p-201")
    assert done["subject"]["reference"] == "Patient/p-201"
    assert done["period"] == {"start": "2024-06-03T14:01:00Z", "end": "2024-06-03T14:46:00Z"}
    assert (done["status"], done["length"]["value"], done["length"]["unit"]) == (
        "finished",
        45,
        "min",
    )
    live = _child(bundle, "s-grp", "p-201")
    assert (live["status"], "end" in live["period"]) == ("in-progress", False)
    odd = _child(bundle, "s-grp", "p_203")
    assert "reference" not in odd["subject"]  # "_" is not allowed in a FHIR id


def test_fhir_export_is_stable_across_runs() -> None:
    assert fhir_bundle(summaries()) == fhir_bundle(summaries())


# --- JSONL ---------------------------------------------------------------------------------


def test_jsonl_export_reimport_and_summarize_gives_identical_rows() -> None:
    events, specs = program()
    buffer = io.StringIO()
    write_jsonl(events, specs, buffer)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == len(events) + len(specs)
    assert json.loads(lines[0])["type"] == "session"
    again = list(summarize_jsonl(lines, tz=TZ, rules=RULES, as_of=AS_OF))
    assert again == summaries()
    assert list(rows_of(again)) == list(rows_of(summaries()))


def test_each_session_line_precedes_its_events() -> None:
    events, specs = program()
    seen: set[str] = set()
    for line in jsonl_lines(events, specs):
        obj = json.loads(line)
        if obj.get("type") == "session":
            seen.add(obj["spec"]["id"])
        else:
            assert obj["session"] in seen


def test_a_raw_archive_without_session_lines_needs_the_specs() -> None:
    events, specs = program()
    raw = [e.model_dump_json() for e in events]
    again = list(summarize_jsonl(raw, specs, tz=TZ, rules=RULES, as_of=AS_OF))
    assert again == summaries()
    with pytest.raises(ValueError, match="no session spec"):
        list(summarize_jsonl(raw, tz=TZ, rules=RULES))


def test_bad_jsonl_lines_are_refused_with_their_line_number() -> None:
    events, specs = program()
    lines = list(jsonl_lines(events, specs))
    with pytest.raises(ValueError, match="line 3: not a ledger event"):
        list(read_jsonl([*lines[:2], '{"seq": "x"}'], {}))
    with pytest.raises(ValueError, match="line 2: not a ledger event"):
        list(read_jsonl([lines[0], "not json", *lines[1:]], {}))
    other = make_spec(session="s-ind", planned=30)
    with pytest.raises(ValueError, match="line 1: session s-ind: spec differs"):
        list(read_jsonl(lines, {other.id: other}))


def test_exports_carry_pseudonymous_ids_only() -> None:
    events, specs = program()
    known = {"c-17", "p-201", "p-202", "p_203", "s-ind", "s-cpl", "s-grp"}
    csv_ids = {
        r[k]
        for r in csv.DictReader(io.StringIO(to_csv(rows_of(summaries())), newline=""))
        for k in ("session", "attendee")
    }
    assert csv_ids <= known
    bundle = fhir_bundle(summaries())
    values = {
        e["resource"].get("subject", {}).get("identifier", {}).get("value") for e in bundle["entry"]
    }
    assert values - {None} <= known
    for line in jsonl_lines(events, specs):
        obj = json.loads(line)
        people = [e["attendee"] for e in obj["spec"]["roster"]] if "spec" in obj else []
        people += [obj.get("attendee"), obj.get("actor")]
        assert {p for p in people if p} <= known | {"system"}
