"""Membership: endpoints carrying one or two attendees, the waiting room and admission.

Every function takes a copy of the session state, changes it in place and returns the ledger
events that record the change; the store writes both atomically. Raising changes nothing.
"""

from __future__ import annotations

from rooms import lifecycle
from rooms.authz import is_host, require_active, require_host, require_roster
from rooms.errors import (
    DeviceFull,
    InvalidTransition,
    NotAuthorized,
    SessionFull,
    SessionLocked,
    TokenRevoked,
)
from rooms.ids import AttendeeId, EndpointId
from rooms.kinds import HOST_ROLES, SEATED_ROLES
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.state import EndpointState, Seat, SeatStatus, SessionState


def join(
    state: SessionState,
    ctx: Ctx,
    endpoint: EndpointId,
    attendee: AttendeeId,
    connection: str | None = None,
    resume_hash: str | None = None,
) -> list[LedgerEvent]:
    """A new endpoint arrives with one verified attendee.

    Clinicians are admitted at once; an attendee already admitted on another device, or
    returning to a session with auto-readmit on, is admitted too; everyone else waits.
    """
    require_active(state)
    role = require_roster(state, attendee)
    if state.is_removed(attendee):
        raise TokenRevoked("this link was withdrawn by the clinician")
    if endpoint in state.endpoints:
        raise InvalidTransition("this endpoint has already joined")
    already_in = state.is_admitted(attendee)
    known = state.attendees.get(attendee)
    readmit = state.auto_readmit and known is not None and known.ever_admitted and not known.denied
    admit_now = role in HOST_ROLES or already_in or readmit
    if state.locked and role not in HOST_ROLES and not already_in:
        raise SessionLocked("the clinician has locked this session")
    if admit_now and role in SEATED_ROLES and not already_in:
        _check_capacity(state)
    state.endpoints[endpoint] = EndpointState(
        id=endpoint,
        node=ctx.node,
        seats={attendee: Seat(status=SeatStatus.WAITING)},
        joined_at=ctx.now,
        connection=connection,
        resume_hash=resume_hash,
    )
    events = lifecycle.open_if_scheduled(state, ctx)
    events.append(emit(state, ctx, EventKind.WAITING, attendee=attendee, endpoint=endpoint))
    if admit_now:
        events += _admit_seat(state, ctx, endpoint, attendee, actor="system")
        events += lifecycle.live_if_ready(state, ctx)
    return events


def admit(
    state: SessionState, ctx: Ctx, actor: AttendeeId, attendee: AttendeeId
) -> list[LedgerEvent]:
    """A clinician admits a waiting attendee (on every endpoint where they wait)."""
    waiting = _waiting_for_host(state, actor, attendee)
    if state.spec.role_of(attendee) in SEATED_ROLES and not state.is_admitted(attendee):
        _check_capacity(state)
    state.attendee(attendee).denied = False
    events: list[LedgerEvent] = []
    for endpoint in waiting:
        events += _admit_seat(state, ctx, endpoint, attendee, actor=actor)
    return events + lifecycle.live_if_ready(state, ctx)


def deny(
    state: SessionState, ctx: Ctx, actor: AttendeeId, attendee: AttendeeId
) -> list[LedgerEvent]:
    """A clinician turns a waiting attendee away; their endpoints lose that seat. It sticks to
    the person: until a clinician admits them, nothing else does (a shared device in the
    call, auto-readmit)."""
    waiting = _waiting_for_host(state, actor, attendee)
    state.attendee(attendee).denied = True
    events = []
    for endpoint in waiting:
        _drop_seat(state, endpoint, attendee)
        events.append(
            emit(state, ctx, EventKind.DENIED, attendee=attendee, endpoint=endpoint, actor=actor)
        )
    return events


def remove(
    state: SessionState, ctx: Ctx, actor: AttendeeId, attendee: AttendeeId
) -> list[LedgerEvent]:
    """A clinician removes an attendee: every seat goes and their link stops working."""
    require_host(state, actor)
    role = require_roster(state, attendee)
    if role in HOST_ROLES:
        raise NotAuthorized("a clinician cannot be removed from the session")
    if state.is_removed(attendee):
        raise InvalidTransition(f"{attendee} has already been removed")
    state.attendee(attendee).removed = True
    endpoints = [e.id for e, _ in state.seats_of(attendee)]
    for endpoint in endpoints:
        _drop_seat(state, endpoint, attendee)
    # Removing someone who is not connected still revokes their link, and is recorded.
    targets: list[EndpointId | None] = [*endpoints] or [None]
    return [
        emit(state, ctx, EventKind.REMOVED, attendee=attendee, endpoint=endpoint, actor=actor)
        for endpoint in targets
    ]


def leave(state: SessionState, ctx: Ctx, endpoint: EndpointId) -> list[LedgerEvent]:
    """The endpoint hangs up: everyone on it leaves."""
    found = _endpoint(state, endpoint)
    events = [
        emit(state, ctx, EventKind.LEFT, attendee=a, endpoint=endpoint, actor=a, was=str(s.status))
        for a, s in found.seats.items()
    ]
    del state.endpoints[endpoint]
    return events


def attach(
    state: SessionState, ctx: Ctx, endpoint: EndpointId, attendee: AttendeeId
) -> list[LedgerEvent]:
    """Add a second roster member to an endpoint (a shared home device).

    The caller has verified the person's own link. On a device already in the call the partner
    is admitted at once, by the device: the clinician attests them later (mark present); a
    partner a clinician turned away waits on the device for a clinician instead.
    """
    require_active(state)
    role = require_roster(state, attendee)
    found = _endpoint(state, endpoint)
    if role not in SEATED_ROLES:
        raise NotAuthorized("only patients and guests can share a device")
    if state.is_removed(attendee):
        raise TokenRevoked("this link was withdrawn by the clinician")
    if attendee in found.seats:
        raise InvalidTransition(f"{attendee} is already on this device")
    if len(found.seats) >= 2:
        raise DeviceFull("a device carries at most two attendees")
    primary = next(iter(found.seats))
    already_in = state.is_admitted(attendee)
    admit_now = found.in_call() and (already_in or not state.peek(attendee).denied)
    if state.locked and not already_in:
        raise SessionLocked("the clinician has locked this session")
    if admit_now and not already_in:
        _check_capacity(state)
    found.seats[attendee] = Seat(status=SeatStatus.WAITING, attached=True)
    events = [
        emit(state, ctx, EventKind.ATTACHED, attendee=attendee, endpoint=endpoint, actor=primary)
    ]
    events.append(emit(state, ctx, EventKind.WAITING, attendee=attendee, endpoint=endpoint))
    if admit_now:
        events += _admit_seat(state, ctx, endpoint, attendee, actor=primary, shared_device=True)
    return events


def detach(
    state: SessionState, ctx: Ctx, actor: AttendeeId, endpoint: EndpointId, attendee: AttendeeId
) -> list[LedgerEvent]:
    """One partner leaves a shared device; the other stays on it."""
    require_active(state)
    found = _endpoint(state, endpoint)
    _require_device_or_host(state, found, actor)
    if attendee not in found.seats:
        raise InvalidTransition(f"{attendee} is not on this device")
    if len(found.seats) < 2:
        raise InvalidTransition("the last attendee on a device leaves by hanging up")
    del found.seats[attendee]
    return [emit(state, ctx, EventKind.DETACHED, attendee=attendee, endpoint=endpoint, actor=actor)]


def shared_endpoint(state: SessionState, attendee: AttendeeId) -> EndpointId:
    """The shared device ``attendee`` is on (for a clinician acting from their own device)."""
    for endpoint, _ in state.seats_of(attendee):
        if len(endpoint.seats) > 1:
            return endpoint.id
    raise InvalidTransition(f"{attendee} is not on a shared device")


def mark(
    state: SessionState,
    ctx: Ctx,
    actor: AttendeeId,
    endpoint: EndpointId,
    attendee: AttendeeId,
    *,
    present: bool,
) -> list[LedgerEvent]:
    """Mark one attendee of a shared device absent (stepped away) or present again.

    A clinician marking an attached partner present also attests that they are really there.
    """
    require_active(state)
    found = _endpoint(state, endpoint)
    _require_device_or_host(state, found, actor)
    seat = found.seats.get(attendee)
    if seat is None or len(found.seats) < 2:
        raise InvalidTransition("only an attendee of a shared device can be marked")
    if seat.status is SeatStatus.WAITING:
        raise InvalidTransition(f"{attendee} has not been admitted")
    wanted = SeatStatus.ADMITTED if present else SeatStatus.ABSENT
    attests = present and is_host(state, actor) and not seat.attested
    if seat.status is wanted and not attests:
        raise InvalidTransition(
            f"{attendee} is already marked {'present' if present else 'absent'}"
        )
    seat.status = wanted
    seat.attested = seat.attested or attests
    kind = EventKind.MARKED_PRESENT if present else EventKind.MARKED_ABSENT
    return [emit(state, ctx, kind, attendee=attendee, endpoint=endpoint, actor=actor)]


def report_modality(
    state: SessionState, ctx: Ctx, endpoint: EndpointId, modality: str
) -> list[LedgerEvent]:
    """The endpoint now sends video, or audio only (camera off): billing modifiers differ."""
    require_active(state)
    found = _endpoint(state, endpoint)
    if modality not in ("video", "audio"):
        raise InvalidTransition("modality is video or audio")
    if found.modality == modality:
        raise InvalidTransition(f"the endpoint already sends {modality}")
    found.modality = modality
    return [emit(state, ctx, EventKind.MODALITY, endpoint=endpoint, modality=modality)]


def _admit_seat(
    state: SessionState,
    ctx: Ctx,
    endpoint: EndpointId,
    attendee: AttendeeId,
    *,
    actor: str,
    shared_device: bool = False,
) -> list[LedgerEvent]:
    seat = state.endpoints[endpoint].seats[attendee]
    seat.status = SeatStatus.ADMITTED
    seat.attested = seat.attested or not shared_device
    state.attendee(attendee).ever_admitted = True
    data = {"shared_device": True} if shared_device else {}
    return [
        emit(
            state,
            ctx,
            EventKind.ADMITTED,
            attendee=attendee,
            endpoint=endpoint,
            actor=actor,
            **data,
        )
    ]


def _check_capacity(state: SessionState) -> None:
    if state.seated_count() >= state.spec.capacity:
        raise SessionFull(f"the session is full ({state.spec.capacity} people)")


def _waiting_for_host(
    state: SessionState, actor: AttendeeId, attendee: AttendeeId
) -> list[EndpointId]:
    """The endpoints where ``attendee`` waits for ``actor``, a clinician, to decide."""
    require_host(state, actor)
    waiting = [e.id for e, s in state.seats_of(attendee) if s.status is SeatStatus.WAITING]
    if not waiting:
        raise InvalidTransition(f"{attendee} is not in the waiting room")
    return waiting


def _drop_seat(state: SessionState, endpoint: EndpointId, attendee: AttendeeId) -> None:
    found = state.endpoints[endpoint]
    del found.seats[attendee]
    if not found.seats:
        del state.endpoints[endpoint]


def _endpoint(state: SessionState, endpoint: EndpointId) -> EndpointState:
    return state.endpoint(endpoint)


def _require_device_or_host(state: SessionState, found: EndpointState, actor: AttendeeId) -> None:
    if is_host(state, actor):
        require_host(state, actor)
    elif actor not in found.seats:
        raise NotAuthorized("only the device itself or a clinician may do that")
