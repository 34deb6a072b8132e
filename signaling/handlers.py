"""The table of client events: each turns a validated message into one domain change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from rooms import controls, lifecycle, membership
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.ledger import Ctx, LedgerEvent
from rooms.service import Change
from rooms.state import SessionState
from signaling import protocol as p


@dataclass(slots=True)
class Conn:
    """This node's handle of one connected endpoint. The store holds everything else."""

    sid: str
    session: SessionId
    endpoint: EndpointId
    attendees: list[AttendeeId]
    #: What ``welcome`` said to it (the wire object of ``p.Welcome``).
    welcome: dict[str, Any]
    log: Any = None
    #: True once the endpoint left on purpose, so its socket's close records nothing more.
    gone: bool = False
    #: True while its group media is in the forwarder (signaling/group.py).
    in_forwarder: bool = False

    @property
    def actor(self) -> AttendeeId:
        """Who acts for this endpoint: its first attendee (on a shared device, the owner)."""
        return self.attendees[0]

    def actor_for(self, target: AttendeeId) -> AttendeeId:
        """Self-directed controls act as the targeted person when they are on this device."""
        return target if target in self.attendees else self.actor


def _target(msg: p.Message) -> AttendeeId:
    assert isinstance(msg, p.Target | p.LockMute | p.Mark)
    return AttendeeId(msg.attendee)


def _on_shared_device(
    fn: Callable[..., list[LedgerEvent]], c: Conn, target: AttendeeId, **kwargs: Any
) -> Change:
    """Device controls act on this device when the target is on it; a clinician's act on the
    shared device where the target sits."""

    def change(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
        on_me = target in c.attendees
        endpoint = c.endpoint if on_me else membership.shared_endpoint(state, target)
        return fn(state, ctx, actor=c.actor, endpoint=endpoint, attendee=target, **kwargs)

    return change


Handler = Callable[[Conn, Any], Change]

#: Client event -> domain change. ``signal``, ``attach`` and ``leave`` need more than one
#: domain call and are handled in the server itself.
CHANGES: dict[str, Handler] = {
    "admit": lambda c, m: partial(membership.admit, actor=c.actor, attendee=_target(m)),
    "deny": lambda c, m: partial(membership.deny, actor=c.actor, attendee=_target(m)),
    "remove": lambda c, m: partial(membership.remove, actor=c.actor, attendee=_target(m)),
    "mute": lambda c, m: partial(controls.mute, actor=c.actor_for(_target(m)), target=_target(m)),
    "unmute": lambda c, m: partial(
        controls.unmute, actor=c.actor_for(_target(m)), target=_target(m)
    ),
    "mute_all": lambda c, m: partial(controls.mute_all, actor=c.actor),
    "lock_mute": lambda c, m: partial(
        controls.lock_mute, actor=c.actor, target=_target(m), locked=m.locked
    ),
    "ask_unmute": lambda c, m: partial(controls.ask_to_unmute, actor=c.actor),
    "lock": lambda c, m: partial(lifecycle.set_locked, actor=c.actor, locked=m.locked),
    "auto_readmit": lambda c, m: partial(
        lifecycle.set_auto_readmit, actor=c.actor, enabled=m.enabled
    ),
    "end": lambda c, m: partial(lifecycle.end, actor=c.actor),
    "detach": lambda c, m: _on_shared_device(membership.detach, c, _target(m)),
    "mark": lambda c, m: _on_shared_device(membership.mark, c, _target(m), present=m.present),
    "modality": lambda c, m: partial(
        membership.report_modality, endpoint=c.endpoint, modality=m.modality
    ),
}
