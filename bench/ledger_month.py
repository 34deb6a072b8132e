"""A generated month of a 40-patient IOP program, as ledger events (no per-event validation).

Every weekday: three cohorts of patients each attend three one-hour groups (therapy, skills,
peer support) with a facilitator, eight patients see their individual therapist (50 min), and
on two days a week one couple sees the couples therapist. Inside each session people arrive,
wait, are admitted and leave; while present they mute and unmute, switch between video and
audio-only and drop and resume their connection, ``activity`` events per person-minute. The
default activity (5 per minute, far noisier than real calls) makes 24 weekdays come to about
1,000,000 events; generation stops after the session that reaches the target count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.kinds import CareFunction, GroupPurpose, Role, SessionKind
from rooms.ledger import EventKind, LedgerEvent
from rooms.roster import RosterEntry
from rooms.session import SessionSpec

PATIENTS = [f"p-{i:02d}" for i in range(40)]
COHORTS = [PATIENTS[0:14], PATIENTS[14:27], PATIENTS[27:40]]
GROUPS = [GroupPurpose.THERAPY_GROUP, GroupPurpose.SKILLS_WORKSHOP, GroupPurpose.PEER_SUPPORT]
#: 9:00 New York in March, as UTC: the program's first day is Monday 2025-03-03.
FIRST_DAY = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
NODE = NodeId("n-1")
#: (kind, weight) of activity while present; pairs keep each person's state consistent.
_ACTIVITY = ((EventKind.MUTED, 0.6), (EventKind.MODALITY, 0.25), (EventKind.DISCONNECTED, 0.15))

#: An event before it is numbered: (seconds from session start, kind, attendee, endpoint, data)
_Raw = tuple[float, EventKind, str | None, str | None, dict[str, Any]]


class Month:
    """The generated program. ``events`` holds every event, sessions one after another."""

    def __init__(self, target_events: int, activity: float = 5.0, seed: int = 5) -> None:
        self.specs: dict[SessionId, SessionSpec] = {}
        self.events: list[LedgerEvent] = []
        self.days = 0
        self._rng = random.Random(seed)
        self._activity = activity
        day = FIRST_DAY
        while len(self.events) < target_events:
            if day.weekday() < 5:
                for spec in self._day(day):
                    self.events.extend(self._session(spec))
                    if len(self.events) >= target_events:
                        break
                self.days += 1
            day += timedelta(days=1)

    def _day(self, day: datetime) -> Iterator[SessionSpec]:
        number = self.days
        for slot, purpose in enumerate(GROUPS):
            for c, cohort in enumerate(COHORTS):
                roster = [_host(f"f-{c}", CareFunction.FACILITATOR)] + [_entry(p) for p in cohort]
                start = day + timedelta(minutes=75 * slot)
                yield self._spec(SessionKind.GROUP, roster, start, 60, purpose)
        for k in range(8):
            patient = PATIENTS[(number * 8 + k) % len(PATIENTS)]
            roster = [_host(f"t-{k % 4}", CareFunction.INDIVIDUAL_THERAPIST), _entry(patient)]
            start = day + timedelta(hours=4, minutes=55 * k)
            yield self._spec(SessionKind.INDIVIDUAL, roster, start, 50)
        if day.weekday() in (1, 3):
            couple = PATIENTS[(number * 2) % 40 : (number * 2) % 40 + 2]
            roster = [_host("ct-0", CareFunction.COUPLES_THERAPIST)] + [_entry(p) for p in couple]
            yield self._spec(SessionKind.COUPLES, roster, day + timedelta(hours=8), 50)

    def _spec(
        self,
        kind: SessionKind,
        roster: list[RosterEntry],
        start: datetime,
        minutes: int,
        purpose: GroupPurpose | None = None,
    ) -> SessionSpec:
        patients = [e.attendee for e in roster if e.role is Role.PATIENT]
        spec = SessionSpec(
            id=SessionId(f"s-{len(self.specs):05d}"),
            kind=kind,
            roster=tuple(roster),
            starts_at=start,
            planned_minutes=minutes,
            capacity=max(len(patients), 1),
            purpose=purpose,
            identified_patient=AttendeeId(patients[0]) if kind is SessionKind.COUPLES else None,
            created_by="admin-1",
            created_at=start - timedelta(days=7),
        )
        self.specs[spec.id] = spec
        return spec

    def _session(self, spec: SessionSpec) -> list[LedgerEvent]:
        rng, length = self._rng, spec.planned_minutes * 60.0
        raw: list[_Raw] = [(-600.0, EventKind.SESSION_OPENED, None, None, {})]
        for n, entry in enumerate(spec.roster):
            who, endpoint = entry.attendee, f"e-{spec.id}-{n}"
            late = 0.0 if entry.role is Role.CLINICIAN else rng.uniform(-300, 240)
            arrive, leave = late - 60, length - rng.uniform(0, 120)
            raw.append((arrive, EventKind.WAITING, who, endpoint, {}))
            raw.append((late, EventKind.ADMITTED, who, endpoint, {}))
            raw += self._activity_of(who, endpoint, late, leave)
            raw.append((leave, EventKind.LEFT, who, endpoint, {}))
        raw.append((length, EventKind.SESSION_ENDED, None, None, {}))
        raw.sort(key=lambda r: r[0])
        start, events = spec.starts_at, []
        for seq, (offset, kind, who, endpoint, data) in enumerate(raw, start=1):
            events.append(
                LedgerEvent.model_construct(
                    seq=seq,
                    at=start + timedelta(seconds=offset),
                    session=spec.id,
                    kind=kind,
                    attendee=AttendeeId(who) if who else None,
                    endpoint=EndpointId(endpoint) if endpoint else None,
                    node=NODE,
                    actor=who,
                    data=data,
                )
            )
        return events

    def _activity_of(self, who: str, endpoint: str, since: float, until: float) -> list[_Raw]:
        rng = self._rng
        pairs = round(self._activity * (until - since) / 60 / 2)
        kinds = rng.choices([k for k, _ in _ACTIVITY], [w for _, w in _ACTIVITY], k=pairs)
        span = (until - since) / max(pairs, 1)
        raw: list[_Raw] = []
        for i, kind in enumerate(kinds):
            t = since + i * span + rng.uniform(0, span / 2)
            back = t + rng.uniform(1, span / 2)
            if kind is EventKind.MUTED:
                raw.append((t, EventKind.MUTED, who, endpoint, {}))
                raw.append((back, EventKind.UNMUTED, who, endpoint, {}))
            elif kind is EventKind.MODALITY:
                raw.append((t, EventKind.MODALITY, None, endpoint, {"modality": "audio"}))
                raw.append((back, EventKind.MODALITY, None, endpoint, {"modality": "video"}))
            else:
                raw.append((t, EventKind.DISCONNECTED, who, endpoint, {}))
                raw.append((back, EventKind.RESUMED, who, endpoint, {}))
        return raw


def _entry(attendee: str) -> RosterEntry:
    return RosterEntry(attendee=attendee, role=Role.PATIENT)


def _host(attendee: str, function: CareFunction) -> RosterEntry:
    return RosterEntry(attendee=attendee, role=Role.CLINICIAN, function=function)
