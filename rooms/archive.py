"""The archiver: copies session ledgers out of the store into daily JSONL files.

Redis keeps the ledger, but the clinic keeps the records (six years is the HIPAA norm): files
``YYYY/MM/homeroom-ledger-YYYY-MM-DD.jsonl``, one per program day, in the attendance JSONL
export format (``rooms.attendance.exports``), so ``summarize_jsonl`` re-summarizes a file and
:func:`verify_archive` checks every session's hash chain in it. The admin audit log is copied
whole to one more file. Each file has a ``sha256sum``-style ``.sha256`` sidecar. See
``docs/durability.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from rooms.attendance.exports import SessionLine, jsonl_lines
from rooms.attendance.summary import date_of_service
from rooms.audit import (
    UNREADABLE,
    AdminAuditEntry,
    ChainReport,
    ChainVerifier,
    admin_entry_hash,
    session_verifier,
)
from rooms.errors import SessionNotFound
from rooms.ids import SessionId
from rooms.ledger import LedgerEvent, event_hash
from rooms.session import SessionSpec
from rooms.store.base import SessionStore

#: One session's spec and complete ledger, as archived.
_Session = tuple[SessionSpec, list[LedgerEvent]]


class FileStatus(StrEnum):
    """What the archiver did with one file."""

    WRITTEN = "written"
    #: The file already held exactly these bytes (and a matching sidecar): left untouched.
    UNCHANGED = "unchanged"
    #: The file holds entries the store no longer has (or cannot be read): kept as it was.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class ArchivedDay:
    """What the archiver did with one day's file."""

    day: date
    path: Path
    status: FileStatus
    #: Sessions and events of the day in the store (what was, or would have been, written).
    sessions: int
    events: int
    #: SHA-256 of the file as it now is on disk.
    sha256: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ArchivedLog:
    """What the archiver did with the admin audit log's file."""

    path: Path
    status: FileStatus
    entries: int
    sha256: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    """Days with at least one session, in order, and sessions that could not be archived."""

    days: tuple[ArchivedDay, ...]
    #: Sessions in range whose spec the store no longer has.
    missing: tuple[SessionId, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and all(d.status is not FileStatus.REFUSED for d in self.days)


def archive_path(directory: Path, day: date) -> Path:
    """Where ``day``'s ledger file lives under ``directory``."""
    return directory / f"{day:%Y}" / f"{day:%m}" / f"homeroom-ledger-{day.isoformat()}.jsonl"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


async def archive(
    store: SessionStore, directory: Path, *, tz: str, since: datetime, until: datetime
) -> ArchiveReport:
    """Archive every session starting on the program days (in ``tz``) that ``[since, until)``
    touches: whole days, so that each file is the complete set of its day's sessions as of the
    run. A session's day is its scheduled start's date in ``tz``.

    Idempotent: re-running writes the same bytes. A file is never replaced by one that lacks
    any of its events (the store lost data): that day is reported ``refused`` instead.
    """
    span = program_day_span(since, until, tz)
    if span is None:
        return ArchiveReport(days=())
    # The span's ends, never a list of its days: a range of centuries is millions of days, and
    # listing them held the event loop for seconds (only days with sessions get a file).
    first, last = span
    start, end = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    by_day: dict[date, list[_Session]] = {}
    missing: list[SessionId] = []
    for sid in await store.sessions_starting(start, end):
        try:
            spec = await store.spec(sid)
        except SessionNotFound:
            missing.append(sid)
            continue
        day = date_of_service(spec.starts_at, tz)
        if first <= day <= last:
            by_day.setdefault(day, []).append((spec, await store.events(sid)))
    done = [
        await asyncio.to_thread(write_day, archive_path(directory, day), by_day[day], day)
        for day in sorted(by_day)
    ]
    return ArchiveReport(days=tuple(done), missing=tuple(missing))


def program_days(since: datetime, until: datetime, tz: str) -> list[date]:
    """The dates in ``tz`` that instants in ``[since, until)`` fall on."""
    span = program_day_span(since, until, tz)
    if span is None:
        return []
    first, last = span
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def program_day_span(since: datetime, until: datetime, tz: str) -> tuple[date, date] | None:
    """The first and last dates in ``tz`` that instants in ``[since, until)`` fall on; None
    for an empty range."""
    if until <= since:
        return None
    return date_of_service(since, tz), date_of_service(until - timedelta(microseconds=1), tz)


def day_start(day: date, tz: str) -> datetime:
    """The first instant of ``day`` in ``tz`` (fold 0: the earlier midnight, or the end of a
    daylight-saving gap that swallows midnight), in UTC."""
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)


def render(sessions: Iterable[_Session]) -> bytes:
    """A day file's bytes: per session its spec line, then its events, one JSON per line."""
    listed = list(sessions)
    specs = {spec.id: spec for spec, _ in listed}
    events = (event for _, ledger in listed for event in ledger)
    return "".join(line + "\n" for line in jsonl_lines(events, specs)).encode("utf-8")


def write_day(path: Path, sessions: list[_Session], day: date) -> ArchivedDay:
    """Write one day's file and sidecar atomically, unless unchanged or refused."""
    status, digest, reason = _replace(path, render(sessions), lambda old: _lost(old, sessions))
    events = sum(len(ledger) for _, ledger in sessions)
    return ArchivedDay(day, path, status, len(sessions), events, digest, reason)


def _replace(
    path: Path, content: bytes, lost: Callable[[bytes], str]
) -> tuple[FileStatus, str, str]:
    """Put ``content`` at ``path`` with its sidecar, unless the file already holds it or
    ``lost(old)`` names something the old file has that ``content`` would drop.

    Returns the status, the SHA-256 of the file now on disk, and the reason of a refusal.
    """
    digest = hashlib.sha256(content).hexdigest()
    if path.exists():
        old = path.read_bytes()
        if old == content and verify_sidecar(path):
            return FileStatus.UNCHANGED, digest, ""
        if reason := lost(old):
            return FileStatus.REFUSED, hashlib.sha256(old).hexdigest(), reason
    atomic_write(path, content)
    atomic_write(sidecar_path(path), f"{digest}  {path.name}\n".encode("ascii"))
    return FileStatus.WRITTEN, digest, ""


def _lost(old: bytes, sessions: list[_Session]) -> str:
    """An event of ``old`` that ``sessions`` lack or have changed, as a reason."""
    new = {(e.session, e.seq): _digest(e) for _, ledger in sessions for e in ledger}
    try:
        for line in old.decode("utf-8").splitlines():
            obj = json.loads(line)
            if isinstance(obj, dict) and obj.get("type") == "session":
                continue
            event = LedgerEvent.model_validate(obj)
            if new.get((event.session, event.seq)) != _digest(event):
                return f"the file has session {event.session} seq {event.seq}, the store does not"
    except (ValueError, ValidationError):
        return "the existing file cannot be read"
    return ""


def _digest(event: LedgerEvent) -> str:
    # Content, not stored text: a different JSON rendering of the same event is no change.
    return event_hash(event, event.prev or "")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a
    part, and the new one survives a crash once this returns (file and directory fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def verify_sidecar(path: Path) -> bool:
    """Whether ``path``'s ``.sha256`` sidecar exists and matches the file's bytes."""
    sidecar = sidecar_path(path)
    if not sidecar.exists() or not path.exists():
        return False
    recorded = sidecar.read_text(encoding="ascii", errors="replace").split(" ", 1)[0]
    return recorded == hashlib.sha256(path.read_bytes()).hexdigest()


def verify_archive(path: Path) -> list[ChainReport]:
    """Check the hash chain of every session in an archive file, in order of appearance.

    A line that is not a valid session line or event breaks the chain of the session being
    read at that point (reason ``unreadable entry``, the line number in ``detail``).
    """
    verifiers: dict[str, ChainVerifier[LedgerEvent]] = {}
    current = ""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                current = _verify_line(line, verifiers)
            except (ValueError, ValidationError):
                verifier = verifiers.setdefault(current, session_verifier(SessionId(current)))
                verifier.break_here(UNREADABLE, f"line {number}")
    return [verifier.report() for verifier in verifiers.values()]


def _verify_line(line: str, verifiers: dict[str, ChainVerifier[LedgerEvent]]) -> str:
    """Feed one line to its session's verifier; returns the session it belongs to."""
    obj = json.loads(line)
    if isinstance(obj, dict) and obj.get("type") == "session":
        sid = SessionLine.model_validate(obj).spec.id
        verifiers.setdefault(sid, session_verifier(sid))
        return sid
    event = LedgerEvent.model_validate(obj)
    verifiers.setdefault(event.session, session_verifier(event.session)).feed(event)
    return event.session


# The admin audit log: one file, the whole log, rewritten on every run under the same rules.


def admin_log_path(directory: Path) -> Path:
    return directory / "homeroom-admin-audit.jsonl"


async def archive_admin_log(store: SessionStore, directory: Path) -> ArchivedLog:
    """Copy the whole admin audit log to :func:`admin_log_path` (one entry per line, with a
    sidecar): atomic, idempotent, and never replacing a file that holds an entry the store
    no longer has."""
    entries = await store.admin_audit()
    content = "".join(e.model_dump_json() + "\n" for e in entries).encode("utf-8")
    path = admin_log_path(directory)
    new = {e.seq: admin_entry_hash(e, e.prev) for e in entries}
    status, digest, reason = await asyncio.to_thread(
        _replace, path, content, lambda old: _lost_admin(old, new)
    )
    return ArchivedLog(path, status, len(entries), digest, reason)


def _lost_admin(old: bytes, new: dict[int, str]) -> str:
    try:
        for line in old.decode("utf-8").splitlines():
            entry = AdminAuditEntry.model_validate_json(line)
            if new.get(entry.seq) != admin_entry_hash(entry, entry.prev):
                return f"the file has admin audit entry {entry.seq}, the store does not"
    except (ValueError, ValidationError):
        return "the existing file cannot be read"
    return ""


def verify_admin_archive(path: Path) -> ChainReport:
    """Check the chain of an archived admin audit log, as :func:`verify_archive` a day file."""
    verifier: ChainVerifier[AdminAuditEntry] = ChainVerifier("admin", admin_entry_hash)
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                verifier.feed(AdminAuditEntry.model_validate_json(line))
            except ValidationError:
                verifier.break_here(UNREADABLE, f"line {number}")
    return verifier.report()
