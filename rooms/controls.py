"""Mute controls. A clinician's mute binds: the attendee can ask to be unmuted, not force it."""

from __future__ import annotations

from rooms.authz import is_host, require_host, require_present_member, require_seated_target
from rooms.errors import InvalidTransition, MuteLocked, NotAuthorized
from rooms.ids import AttendeeId
from rooms.kinds import SEATED_ROLES
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.state import SessionState


def mute(state: SessionState, ctx: Ctx, actor: AttendeeId, target: AttendeeId) -> list[LedgerEvent]:
    """Mute oneself, or (clinicians) mute a patient or guest."""
    if actor != target:
        _require_host_over(state, actor, target)
        return _clinician_mute(state, ctx, actor, target)
    require_present_member(state, actor)
    if state.peek(target).self_muted:
        raise InvalidTransition("already muted")
    state.attendee(target).self_muted = True
    return [emit(state, ctx, EventKind.MUTED, attendee=target, actor=actor, by="self")]


def mute_all(state: SessionState, ctx: Ctx, actor: AttendeeId) -> list[LedgerEvent]:
    """Mute every admitted patient and guest not already muted by a clinician."""
    require_host(state, actor)
    events: list[LedgerEvent] = []
    for entry in state.spec.roster:
        target = AttendeeId(entry.attendee)
        if entry.role not in SEATED_ROLES or not state.is_admitted(target):
            continue
        if not state.peek(target).clinician_muted:
            events += _clinician_mute(state, ctx, actor, target, everyone=True)
    if not events:
        raise InvalidTransition("nobody to mute")
    return events


def unmute(
    state: SessionState, ctx: Ctx, actor: AttendeeId, target: AttendeeId
) -> list[LedgerEvent]:
    """Unmute oneself (unless a clinician muted you), or (clinicians) lift a clinician mute."""
    if actor == target:
        return _self_unmute(state, ctx, actor)
    _require_host_over(state, actor, target)
    person = state.peek(target)
    if person.mute_locked:
        raise MuteLocked("release the mute lock first")
    if not person.clinician_muted:
        raise InvalidTransition("not muted by a clinician")
    changed = state.attendee(target)
    changed.clinician_muted = False
    changed.unmute_requested = False
    return [emit(state, ctx, EventKind.UNMUTED, attendee=target, actor=actor, by="clinician")]


def lock_mute(
    state: SessionState, ctx: Ctx, actor: AttendeeId, target: AttendeeId, *, locked: bool
) -> list[LedgerEvent]:
    """Lock a patient's mute (no asking to unmute until released), or release the lock.

    Releasing leaves the clinician mute in place; the clinician unmutes separately.
    """
    _require_host_over(state, actor, target)
    if state.peek(target).mute_locked == locked:
        raise InvalidTransition(f"mute is already {'locked' if locked else 'unlocked'}")
    events: list[LedgerEvent] = []
    if locked and not state.peek(target).clinician_muted:
        events += _clinician_mute(state, ctx, actor, target)
    person = state.attendee(target)
    person.mute_locked = locked
    person.unmute_requested = False
    kind = EventKind.MUTE_LOCKED if locked else EventKind.MUTE_UNLOCKED
    return [*events, emit(state, ctx, kind, attendee=target, actor=actor)]


def ask_to_unmute(state: SessionState, ctx: Ctx, actor: AttendeeId) -> list[LedgerEvent]:
    """A clinician-muted attendee raises a hand to speak."""
    require_present_member(state, actor)
    person = state.peek(actor)
    if person.mute_locked:
        raise MuteLocked("your clinician has locked your microphone")
    if not person.clinician_muted:
        raise InvalidTransition("you are not muted by a clinician")
    if person.unmute_requested:
        raise InvalidTransition("already asked")
    state.attendee(actor).unmute_requested = True
    return [emit(state, ctx, EventKind.UNMUTE_REQUESTED, attendee=actor, actor=actor)]


def _self_unmute(state: SessionState, ctx: Ctx, actor: AttendeeId) -> list[LedgerEvent]:
    if is_host(state, actor):
        require_host(state, actor)
    else:
        require_present_member(state, actor)
    person = state.peek(actor)
    if person.mute_locked:
        raise MuteLocked("your clinician has locked your microphone")
    if person.clinician_muted:
        raise NotAuthorized("muted by your clinician: ask to unmute")
    if not person.self_muted:
        raise InvalidTransition("not muted")
    state.attendee(actor).self_muted = False
    return [emit(state, ctx, EventKind.UNMUTED, attendee=actor, actor=actor, by="self")]


def _clinician_mute(
    state: SessionState, ctx: Ctx, actor: AttendeeId, target: AttendeeId, *, everyone: bool = False
) -> list[LedgerEvent]:
    if state.peek(target).clinician_muted:
        raise InvalidTransition("already muted by a clinician")
    state.attendee(target).clinician_muted = True
    by = "clinician_all" if everyone else "clinician"
    return [emit(state, ctx, EventKind.MUTED, attendee=target, actor=actor, by=by)]


def _require_host_over(state: SessionState, actor: AttendeeId, target: AttendeeId) -> None:
    require_host(state, actor)
    require_seated_target(state, target)
