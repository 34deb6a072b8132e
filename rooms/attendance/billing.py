"""Billing suggestions: which code each attendee's presence earns under the rules, and why.

Role-based exclusions are policy, not payer data, so they live here: clinicians and guests are
never billed, and a shared-device attendee no clinician verified is never billed. Everything
payer-specific (codes, minutes, modifiers, place of service) comes from :mod:`.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from rooms.attendance.intervals import ZERO, union_total
from rooms.attendance.presence import AttendeePresence
from rooms.attendance.rules import BillingRules, Selector
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import Role, SessionKind
from rooms.session import SessionSpec


class Status(StrEnum):
    """Why a summary row does or does not carry a code."""

    SUGGESTED = "suggested"
    BELOW_THRESHOLD = "below_threshold"
    NOT_BILLABLE = "not_billable"
    NEEDS_ATTESTATION = "needs_attestation"
    #: Presence still open: the session has no ``session_ended`` yet.
    OPEN = "open"
    ABSENT = "absent"


PosHint = Callable[[SessionId, AttendeeId], str | None]
_NEVER_BILLED = {
    Role.CLINICIAN: "clinician: never billed",
    Role.GUEST: "guest: never billed",
    None: "not on the session roster: never billed",
}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What one attendee's summary row says about billing, and why."""

    status: Status
    explanation: str
    code: str | None = None
    modifier: str | None = None
    pos: str | None = None


def needs_attestation(spec: SessionSpec, presence: AttendeePresence) -> bool:
    """True when a peer, not a clinician of the session, put this person on a shared device and
    no clinician admitted them or marked them present in the session."""
    clinicians = _clinicians(spec)
    vouched_by_peer = any(a not in clinicians for a in presence.shared_admit_actors)
    verified = any(a in clinicians for a in presence.verify_actors)
    return vouched_by_peer and not verified


def suggest(
    spec: SessionSpec,
    presence: Mapping[AttendeeId, AttendeePresence],
    rules: BillingRules,
    *,
    pos: PosHint | None = None,
) -> dict[AttendeeId, Suggestion]:
    """A suggestion for everyone on the roster or in ``presence``, roster order first.

    ``pos`` may return a place-of-service code per (session, attendee); ``None`` falls back to
    the rules' default. Raises ``ValueError`` for a code the rules do not allow.
    """
    suggester = _Suggester(spec, presence, rules, pos)
    on_roster = [AttendeeId(e.attendee) for e in spec.roster]
    others = [a for a in presence if spec.entry(a) is None]
    return {who: suggester.one(who) for who in [*on_roster, *others]}


class _Suggester:
    def __init__(
        self,
        spec: SessionSpec,
        presence: Mapping[AttendeeId, AttendeePresence],
        rules: BillingRules,
        pos: PosHint | None,
    ) -> None:
        self.spec, self.presence, self.rules, self.pos = spec, presence, rules, pos

    def one(self, who: AttendeeId) -> Suggestion:
        if self.spec.check:
            return Suggestion(Status.NOT_BILLABLE, "a deployment check (homeroom probe), not care")
        found = self.presence.get(who)
        if found is not None and found.still_open:
            return Suggestion(
                Status.OPEN, f"still present, session not ended: {_fmt(found.present)} so far"
            )
        role = self.spec.role_of(who)
        if role is Role.PATIENT:
            if self.spec.kind is SessionKind.COUPLES:
                return self._couples(who)
            return self._patient(who)
        if not self._attended(who):
            return Suggestion(Status.ABSENT, f"no presence recorded ({_NEVER_BILLED[role]})")
        return Suggestion(Status.NOT_BILLABLE, f"{self._shown(who)}; {_NEVER_BILLED[role]}")

    def _patient(self, who: AttendeeId) -> Suggestion:
        found = self.presence.get(who)
        if found is None or not self._attended(who):
            return Suggestion(Status.ABSENT, "no presence recorded")
        if needs_attestation(self.spec, found):
            return _unattested(who)
        selector = (self.spec.kind, self.spec.purpose, None)
        return self._timed(who, selector, found.present, found.video, "")

    def _couples(self, who: AttendeeId) -> Suggestion:
        patients = [AttendeeId(e.attendee) for e in self.spec.roster if e.role is Role.PATIENT]
        ip = self.spec.identified_patient or patients[0]
        if who != ip:
            if not self._attended(who):
                return Suggestion(Status.ABSENT, f"no presence recorded; couples code under {ip}")
            if self._unverified(who):
                return _unattested(who)
            return Suggestion(
                Status.NOT_BILLABLE, f"{self._shown(who)}; billed under identified patient {ip}"
            )
        if self._attended(ip) and self._unverified(ip):
            return _unattested(ip)
        basis = [p for p in patients if self._attended(p) and not self._unverified(p)]
        if any(self.presence[p].still_open for p in basis):
            return Suggestion(Status.OPEN, "a partner is still present, session not ended")
        if not basis:
            pending = [p for p in patients if self._attended(p)]
            if pending:
                return _unattested(pending[0])
            return Suggestion(Status.ABSENT, "no presence recorded by either partner")
        # The service is the time the therapist spent with the couple: the union of the
        # attested partners' presence (CPT 90847 allows the patient present for part of it).
        present = union_total(iv for p in basis for iv in self.presence[p].intervals)
        video = union_total(iv for p in basis for iv in self.presence[p].video_intervals)
        selector: Selector = (SessionKind.COUPLES, None, "present" if ip in basis else "absent")
        return self._timed(ip, selector, present, video, f" by {', '.join(basis)}")

    def _timed(
        self, who: AttendeeId, selector: Selector, present: timedelta, video: timedelta, by: str
    ) -> Suggestion:
        rules = self.rules.select(*selector, checkin=self.spec.checkin is not None)
        shown = f"{_fmt(present)} present{by}"
        if not rules:
            label = "/".join(str(s) for s in selector if s is not None)
            return Suggestion(Status.NOT_BILLABLE, f"no billing rule for {label}: {shown}")
        planned = self.spec.planned_minutes
        rule = next((r for r in rules if r.covers(present, planned)), None)
        if rule is None:
            lowest = min(rules, key=lambda r: r.floor(planned))
            floor = _fmt(lowest.floor(planned))
            return Suggestion(
                Status.BELOW_THRESHOLD, f"{lowest.name}: {shown}, below {floor} -> no code"
            )
        if rule.code is None:
            return Suggestion(
                Status.NOT_BILLABLE, f"{rule.name}: {shown} -> no code: {rule.reason}"
            )
        audio = present - video
        modifier = self.rules.telehealth.video_modifier
        if audio > video:  # "primarily audio-only": more audio-only time than video time
            modifier = self.rules.telehealth.audio_only_modifier
        place = self._place(who)
        return Suggestion(
            Status.SUGGESTED,
            f"{rule.name}: {shown} -> {rule.code}; video {_fmt(video)}, audio-only "
            f"{_fmt(audio)} -> modifier {modifier}; POS {place}",
            rule.code,
            modifier,
            place,
        )

    def _place(self, who: AttendeeId) -> str:
        hint = self.pos(self.spec.id, who) if self.pos is not None else None
        place = hint or self.rules.place_of_service.default
        if place not in self.rules.place_of_service.allowed:
            raise ValueError(f"place of service {place!r} is not allowed by the billing rules")
        return place

    def _attended(self, who: AttendeeId) -> bool:
        found = self.presence.get(who)
        return found is not None and found.present > ZERO

    def _unverified(self, who: AttendeeId) -> bool:
        found = self.presence.get(who)
        return found is not None and needs_attestation(self.spec, found)

    def _shown(self, who: AttendeeId) -> str:
        found = self.presence.get(who)
        return f"{_fmt(found.present if found else ZERO)} present"


def _unattested(who: AttendeeId) -> Suggestion:
    return Suggestion(
        Status.NEEDS_ATTESTATION,
        f"{who} was added on a shared device without clinician verification -> not billed",
    )


def _clinicians(spec: SessionSpec) -> frozenset[str]:
    return frozenset(e.attendee for e in spec.roster if e.role is Role.CLINICIAN)


def _fmt(duration: timedelta) -> str:
    """Exact to the second, so an auditor sees why 15 min 59 s is below 16 min."""
    minutes, seconds = divmod(duration // timedelta(seconds=1), 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
