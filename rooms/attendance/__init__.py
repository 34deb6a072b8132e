"""Attendance: presence from the ledger, per-session summaries, billing suggestions, exports.

Pure functions over ``LedgerEvent`` and ``SessionSpec``: no store, no I/O beyond the text
streams the exports are handed. ``docs/attendance.md`` explains the numbers.
"""

from rooms.attendance.billing import PosHint, Status, Suggestion, needs_attestation, suggest
from rooms.attendance.exports import (
    CSV_COLUMNS,
    fhir_bundle,
    jsonl_lines,
    read_jsonl,
    summarize_jsonl,
    to_csv,
    write_csv,
    write_jsonl,
)
from rooms.attendance.intervals import Interval, clip, merge, total, union_total
from rooms.attendance.presence import AttendeePresence, SessionPresence, track
from rooms.attendance.rules import (
    BillingRules,
    BillingRulesError,
    load_rules,
    load_rules_file,
)
from rooms.attendance.summary import (
    AttendanceRow,
    PeriodTotal,
    ProgramTotals,
    SessionSummary,
    date_of_service,
    program_totals,
    rows_of,
    summarize,
    summarize_session,
)

__all__ = [
    "CSV_COLUMNS",
    "AttendanceRow",
    "AttendeePresence",
    "BillingRules",
    "BillingRulesError",
    "Interval",
    "PeriodTotal",
    "PosHint",
    "ProgramTotals",
    "SessionPresence",
    "SessionSummary",
    "Status",
    "Suggestion",
    "clip",
    "date_of_service",
    "fhir_bundle",
    "jsonl_lines",
    "load_rules",
    "load_rules_file",
    "merge",
    "needs_attestation",
    "program_totals",
    "read_jsonl",
    "rows_of",
    "suggest",
    "summarize",
    "summarize_jsonl",
    "summarize_session",
    "to_csv",
    "total",
    "track",
    "union_total",
    "write_csv",
    "write_jsonl",
]
