"""Group sessions through a forwarding unit: the ``media_*`` events and the room's lifecycle.

Signaling's only contact with media/forwarder.py. An endpoint's media enters the forwarder
when it first publishes, and only once admitted (the waiting room gets no group media).
After every change of a session this node pushes, the forwarder follows the store: clinician
mutes become moderation, endpoints taken out of the session are kicked, an ended session's
room is destroyed. The store stays the one truth; the forwarder is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from media.errors import MediaError
from media.forwarder import EndpointCallbacks, Forwarder, IceCandidateInit, SubscriptionOffer
from rooms.errors import (
    ForwarderRejected,
    ForwarderUnavailable,
    HomeroomError,
    InvalidMedia,
    NotAuthorized,
)
from rooms.kinds import RULES, SessionKind
from rooms.ledger import EventKind, LedgerEvent
from rooms.service import Rooms
from rooms.session import SessionStatus
from rooms.state import SessionState
from signaling import protocol as p
from signaling.delivery import closed_by
from signaling.handlers import Conn

log = structlog.get_logger("homeroom.signaling")

Send = Callable[[str, dict[str, Any], str | None], Awaitable[None]]
EVENTS = frozenset(
    {"media_publish", "media_answer", "media_resubscribe", "media_candidate", "media_layer"}
)

#: Events after which the endpoints of the attendees they name are moderated again.
_MODERATION = frozenset(
    {EventKind.MUTED, EventKind.UNMUTED, EventKind.ATTACHED, EventKind.DETACHED}
)

#: The forwarder's error codes (media.janus.errors) as the errors clients are sent.
_ERRORS: dict[str, type[HomeroomError]] = {
    "forwarder_unavailable": ForwarderUnavailable,
    "forwarder_rejected": ForwarderRejected,
    "invalid_media": InvalidMedia,
}


def wire_error(error: MediaError) -> HomeroomError:
    """The one mapping of forwarder errors to wire errors (the detail stays in our logs)."""
    return _ERRORS.get(error.code, ForwarderUnavailable)(error.code.replace("_", " "))


class GroupMedia:
    """This node's side of group media (``forwarder`` None: groups use the mesh)."""

    def __init__(self, forwarder: Forwarder | None, rooms: Rooms, send: Send) -> None:
        self.forwarder = forwarder
        self._rooms, self._send = rooms, send
        #: Moderation last asked of the forwarder, per (session, endpoint).
        self._muted: dict[tuple[str, str], bool] = {}
        self._ended: set[str] = set()

    def forwards(self, kind: SessionKind) -> bool:
        return self.forwarder is not None and RULES[kind].server_forwarded

    async def handle(self, conn: Conn, event: str, msg: p.Message) -> dict[str, Any]:
        """One ``media_*`` event of an admitted endpoint of a live forwarded session."""
        forwarder, state = await self._admitted(conn)
        try:
            if isinstance(msg, p.MediaPublish):
                return await self._publish(forwarder, state, conn, msg)
            return await self._handle(forwarder, conn, msg)
        except MediaError as error:
            raise wire_error(error) from None

    async def _publish(
        self, forwarder: Forwarder, state: SessionState, conn: Conn, msg: p.MediaPublish
    ) -> dict[str, Any]:
        """Publish (or renegotiate) the endpoint's feed with the store's moderation.

        The mute may have been decided on another node (which moderates the feed it finds in
        the room): the store is read again once the feed is in, so a mute committed while it
        was being published is not lost between the two nodes."""
        session, endpoint = str(conn.session), str(conn.endpoint)
        if not conn.in_forwarder:
            await self._enter(forwarder, conn)
        await self._moderate(forwarder, state, endpoint)
        answer = await forwarder.publish(session, endpoint, msg.description.sdp)
        await self._moderate(forwarder, await self._rooms.get_session(conn.session), endpoint)
        return p.ok(description={"type": "answer", "sdp": answer})

    async def _handle(self, forwarder: Forwarder, conn: Conn, msg: p.Message) -> dict[str, Any]:
        session, endpoint = str(conn.session), str(conn.endpoint)
        if isinstance(msg, p.MediaAnswer):
            await forwarder.answer(session, endpoint, msg.description.sdp)
        elif isinstance(msg, p.MediaResubscribe):
            await forwarder.resubscribe(session, endpoint)
        elif isinstance(msg, p.MediaCandidate):
            candidate = IceCandidateInit(
                msg.candidate.candidate, msg.candidate.sdpMid, msg.candidate.sdpMLineIndex
            )
            await forwarder.trickle(session, endpoint, msg.connection, candidate)
        elif isinstance(msg, p.MediaLayer):
            await forwarder.configure_substream(session, endpoint, msg.endpoint, msg.substream)
        return p.ok()

    async def _admitted(self, conn: Conn) -> tuple[Forwarder, SessionState]:
        state = await self._rooms.get_session(conn.session)
        if self.forwarder is None or not self.forwards(state.spec.kind):
            raise NotAuthorized("this session's media is peer-to-peer: use signal")
        found = state.endpoints.get(conn.endpoint)
        if state.status is SessionStatus.ENDED or found is None or not found.in_call():
            raise NotAuthorized("media is for admitted endpoints of the call only")
        return self.forwarder, state

    async def _enter(self, forwarder: Forwarder, conn: Conn) -> None:
        state = await self._rooms.get_session(conn.session)
        session, sid = str(conn.session), conn.sid
        await forwarder.open_room(session, publishers=state.spec.capacity + 4)

        async def offer(sent: SubscriptionOffer) -> None:
            streams = [{"mid": s.mid, "kind": s.kind, "endpoint": s.endpoint} for s in sent.streams]
            data = {"description": {"type": "offer", "sdp": sent.sdp}, "streams": streams}
            await self._send("media_offer", data, sid)

        async def closed(reason: str) -> None:
            conn.in_forwarder = False
            conn.log.info("group_media_closed", reason=reason)
            if reason == "forwarder_lost":  # kicked endpoints are on their way out anyway
                await self._send("media_reset", {"reason": reason}, sid)

        await forwarder.join(session, str(conn.endpoint), EndpointCallbacks(offer, closed))
        conn.in_forwarder = True

    async def after_change(self, state: SessionState, events: list[LedgerEvent]) -> None:
        """Make the forwarder follow a change this node pushed (never fails the change)."""
        if self.forwarder is None or not self.forwards(state.spec.kind):
            return
        try:
            await self._follow(self.forwarder, state, events)
        except MediaError as error:
            log.warning("group_media_follow_failed", session=state.spec.id, code=error.code)

    async def _follow(
        self, forwarder: Forwarder, state: SessionState, events: list[LedgerEvent]
    ) -> None:
        session = str(state.spec.id)
        if state.status is SessionStatus.ENDED:
            if session not in self._ended:
                self._ended.add(session)
                self._muted = {k: v for k, v in self._muted.items() if k[0] != session}
                await forwarder.close_room(session)
            return
        for endpoint in closed_by(state, events):
            self._muted.pop((session, str(endpoint)), None)
            await forwarder.kick(session, str(endpoint))
        # What this node last asked may be stale (another node's clinician changed it since):
        # the endpoints this change's mute events name are moderated whatever was asked.
        named = {e.attendee for e in events if e.kind in _MODERATION}
        for endpoint, found in state.endpoints.items():
            key, muted = (session, str(endpoint)), _moderated(state, str(endpoint))
            if self._muted.get(key, False) != muted or named & set(found.seats):
                await self._moderate(forwarder, state, str(endpoint))

    async def _moderate(self, forwarder: Forwarder, state: SessionState, endpoint: str) -> None:
        """Moderate the endpoint's feed as the store says (it holds every node's mutes)."""
        muted = _moderated(state, endpoint)
        self._muted[(str(state.spec.id), endpoint)] = muted
        await forwarder.moderate(str(state.spec.id), endpoint, muted)

    async def disconnected(self, conn: Conn) -> None:
        """The endpoint's connection is gone: its media leaves the room until it publishes
        again (after a resume)."""
        if self.forwarder is None or not conn.in_forwarder:
            return
        conn.in_forwarder = False
        try:
            await self.forwarder.leave(str(conn.session), str(conn.endpoint))
        except MediaError as error:
            conn.log.info("group_media_leave_failed", code=error.code)


def _moderated(state: SessionState, endpoint: str) -> bool:
    """A device's audio is held back when a clinician muted anyone on it: one microphone
    serves both people of a shared device, and a clinician's mute binds."""
    found = state.endpoints.get(endpoint)  # type: ignore[call-overload]
    if found is None:
        return False
    return any(state.peek(attendee).clinician_muted for attendee in found.seats)
