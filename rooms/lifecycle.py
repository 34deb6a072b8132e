"""Session lifecycle: scheduled -> open -> live -> ended, lock and unlock. Guarded transitions."""

from __future__ import annotations

from rooms.authz import is_host, require_host
from rooms.errors import InvalidTransition
from rooms.ids import AttendeeId
from rooms.ledger import Ctx, EventKind, LedgerEvent, emit
from rooms.session import TRANSITIONS, SessionStatus
from rooms.state import SessionState

_EVENT_OF = {
    SessionStatus.OPEN: EventKind.SESSION_OPENED,
    SessionStatus.LIVE: EventKind.SESSION_LIVE,
    SessionStatus.ENDED: EventKind.SESSION_ENDED,
}


def transition(
    state: SessionState, ctx: Ctx, to: SessionStatus, *, actor: str = "system"
) -> LedgerEvent:
    """The one place the status changes: checks the move, stamps it, records it."""
    if to not in TRANSITIONS[state.status]:
        raise InvalidTransition(f"session cannot go from {state.status} to {to}")
    state.status = to
    if to is SessionStatus.OPEN:
        state.opened_at = ctx.now
    elif to is SessionStatus.LIVE:
        state.live_at = ctx.now
    elif to is SessionStatus.ENDED:
        state.ended_at = ctx.now
    return emit(state, ctx, _EVENT_OF[to], actor=actor)


def open_if_scheduled(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
    if state.status is SessionStatus.SCHEDULED:
        return [transition(state, ctx, SessionStatus.OPEN)]
    return []


def live_if_ready(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
    """An open session goes live once a clinician and someone else are present together."""
    if state.status is not SessionStatus.OPEN:
        return []
    present = [a for a in state.attendees if state.is_present(a)]
    if any(is_host(state, a) for a in present) and any(not is_host(state, a) for a in present):
        return [transition(state, ctx, SessionStatus.LIVE)]
    return []


def end(state: SessionState, ctx: Ctx, actor: AttendeeId | str) -> list[LedgerEvent]:
    """End the session for everyone: every seat leaves, then the session ends."""
    if actor != "system":
        require_host(state, AttendeeId(actor))
    if state.status is SessionStatus.ENDED:
        raise InvalidTransition("the session has already ended")
    events: list[LedgerEvent] = []
    for endpoint in state.endpoints.values():
        for attendee, seat in endpoint.seats.items():
            events.append(
                emit(
                    state,
                    ctx,
                    EventKind.LEFT,
                    attendee=attendee,
                    endpoint=endpoint.id,
                    actor=str(actor),
                    reason="session_ended",
                    was=str(seat.status),
                )
            )
    state.endpoints.clear()
    events.append(transition(state, ctx, SessionStatus.ENDED, actor=str(actor)))
    return events


def set_locked(
    state: SessionState, ctx: Ctx, actor: AttendeeId, *, locked: bool
) -> list[LedgerEvent]:
    """Lock (no new entries) or unlock the session. Clinicians only."""
    require_host(state, actor)
    if state.locked == locked:
        raise InvalidTransition(f"the session is already {'locked' if locked else 'unlocked'}")
    state.locked = locked
    kind = EventKind.SESSION_LOCKED if locked else EventKind.SESSION_UNLOCKED
    return [emit(state, ctx, kind, actor=actor)]


def set_auto_readmit(
    state: SessionState, ctx: Ctx, actor: AttendeeId, *, enabled: bool
) -> list[LedgerEvent]:
    """When on, attendees admitted earlier skip the waiting room on a new join."""
    require_host(state, actor)
    if state.auto_readmit == enabled:
        raise InvalidTransition(f"auto-readmit is already {'on' if enabled else 'off'}")
    state.auto_readmit = enabled
    return [emit(state, ctx, EventKind.AUTO_READMIT, actor=actor, enabled=enabled)]
