"""The Homeroom signaling wire protocol, version 1: every event's payload as a pydantic model.

This module is the protocol's single definition; docs/protocol.md is checked against it by
tests/test_protocol_doc.py. Client events are answered through the socket.io ack with
``{"ok": true, ...}`` or ``{"error": <code>, "detail": <text>}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rooms.ids import PseudonymStr

PROTOCOL_VERSION = 1
#: Largest accepted payload of one event, in bytes of JSON (an SDP is a few KB).
MAX_EVENT_BYTES = 64 * 1024

Token = Annotated[str, StringConstraints(min_length=16, max_length=4096)]
EndpointStr = Annotated[str, StringConstraints(pattern=r"^e-[A-Za-z0-9_-]{4,32}$")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- connecting -------------------------------------------------------------------------


class ConnectAuth(Message):
    """The socket.io ``auth`` object: a link token for a new endpoint, or a resume credential."""

    v: Literal[1]
    token: Token | None = None
    resume: Token | None = None
    #: With ``token``: move this person's window that is already in the session here
    #: (after ``already_joined``, once the person said "Continue here").
    takeover: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> ConnectAuth:
        if (self.token is None) == (self.resume is None):
            raise ValueError("give exactly one of token or resume")
        return self


# --- client -> server -------------------------------------------------------------------


class Empty(Message):
    pass


class Target(Message):
    attendee: PseudonymStr


class LockMute(Message):
    attendee: PseudonymStr
    locked: bool


class Lock(Message):
    locked: bool


class AutoReadmit(Message):
    enabled: bool


class Attach(Message):
    token: Token


class Mark(Message):
    attendee: PseudonymStr
    present: bool


class Modality(Message):
    modality: Literal["video", "audio"]


class SessionDescription(Message):
    type: Literal["offer", "answer", "rollback"]
    sdp: Annotated[str, StringConstraints(max_length=48 * 1024)] = ""


class IceCandidate(Message):
    """An RTCIceCandidateInit, field names as WebRTC spells them."""

    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class Signal(Message):
    """An SDP description or an ICE candidate for one other endpoint of the call."""

    to: EndpointStr
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Signal:
        if (self.description is None) == (self.candidate is None):
            raise ValueError("give exactly one of description or candidate")
        return self


class MediaPublish(Message):
    """Group sessions (``welcome.target`` "server"): publish this endpoint's one feed, or
    renegotiate it. The ack carries the forwarder's answer (``description``)."""

    description: SessionDescription

    @model_validator(mode="after")
    def _offer(self) -> MediaPublish:
        if self.description.type != "offer" or not self.description.sdp:
            raise ValueError("description must be an offer with an sdp")
        return self


class MediaAnswer(Message):
    """The answer to the last ``media_offer`` (this endpoint's one receiving connection)."""

    description: SessionDescription

    @model_validator(mode="after")
    def _answer(self) -> MediaAnswer:
        if self.description.type != "answer" or not self.description.sdp:
            raise ValueError("description must be an answer with an sdp")
        return self


class MediaResubscribe(Message):
    """Replace this endpoint's receiving connection with a fresh one: the server sends a new
    ``media_offer`` for a new connection (close the old one)."""


class MediaCandidate(Message):
    """A trickled ICE candidate for the publishing or the receiving connection (an empty
    ``candidate`` string ends the candidates)."""

    connection: Literal["publisher", "subscriber"]
    candidate: IceCandidate


class MediaLayer(Message):
    """Which simulcast layer of ``endpoint``'s video to receive: 0 low, 1 medium, 2 high."""

    endpoint: EndpointStr
    substream: int = Field(ge=0, le=2)


#: Every client event and its payload model. Unknown events get ``invalid_message``.
CLIENT_EVENTS: dict[str, type[Message]] = {
    "signal": Signal,
    "admit": Target,
    "deny": Target,
    "remove": Target,
    "mute": Target,
    "unmute": Target,
    "mute_all": Empty,
    "lock_mute": LockMute,
    "ask_unmute": Empty,
    "lock": Lock,
    "auto_readmit": AutoReadmit,
    "end": Empty,
    "attach": Attach,
    "detach": Target,
    "mark": Mark,
    "modality": Modality,
    "leave": Empty,
    "media_publish": MediaPublish,
    "media_answer": MediaAnswer,
    "media_resubscribe": MediaResubscribe,
    "media_candidate": MediaCandidate,
    "media_layer": MediaLayer,
}


# --- server -> client -------------------------------------------------------------------


class AttendeeView(Message):
    attendee: str
    role: str
    status: str  # waiting | admitted | absent
    muted: bool
    clinician_muted: bool
    mute_locked: bool
    unmute_requested: bool
    attached: bool
    attested: bool


class EndpointView(Message):
    endpoint: str
    connected: bool
    attendees: list[AttendeeView]


class DepartedView(Message):
    """Someone who was in the session (or its waiting room) and is no longer on any device."""

    attendee: str
    #: When their presence ended (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``): when they left, or
    #: when their connection dropped if it never came back within the grace window.
    at: str
    #: A clinician removed them (their link no longer works for this session).
    removed: bool


class Welcome(Message):
    """First event after a successful connect."""

    v: int = PROTOCOL_VERSION
    session: str
    kind: str
    endpoint: str
    attendees: list[str]
    role: str
    resume: str
    resumed: bool
    #: RTCPeerConnection's iceServers; empty by default: nothing contacts a third party.
    ice_servers: list[dict[str, Any]]
    #: Whom to negotiate media with: "peer" (a mesh of endpoints) or "server" (forwarding unit).
    target: Literal["peer", "server"]
    #: Clinicians only: everyone expected (the roster never changes), so the console can show
    #: who has not come yet. Absent for patients and guests.
    roster: list[RosterMember] | None = None


class RosterMember(Message):
    """One expected attendee, as a clinician's welcome lists them."""

    attendee: str
    role: str


class Room(Message):
    """The session as this endpoint may see it. Sent after every change; replaces the last one.

    Waiting endpoints see only themselves. Admitted endpoints see every admitted endpoint;
    clinicians also see the waiting room. For each pair of admitted endpoints, the one whose id
    sorts first is the *polite* peer of perfect negotiation.
    """

    version: int
    status: str
    locked: bool
    you: str
    admitted: bool
    endpoints: list[EndpointView]
    waiting: list[EndpointView] = []
    #: Clinicians only (empty for others): who came and has gone, so that the console tells
    #: them from the roster members who have not come yet.
    departed: list[DepartedView] = []


class RoomDelta(Message):
    """What changed in this endpoint's ``room`` view since the view at version ``base``.

    Apply it to a view whose version ``c`` has ``base <= c < version``: take the top-level
    fields, drop the endpoints in ``gone`` / ``waiting_gone``, add or replace those in
    ``endpoints`` / ``waiting`` (endpoints sorted by id; the waiting room in ``waiting_order``
    when given, else its old order with new arrivals last), and take ``departed`` when
    given (else keep the old one). Any other view: send ``hello``
    for the whole view.
    """

    version: int
    base: int
    status: str
    locked: bool
    you: str
    admitted: bool
    endpoints: list[EndpointView]
    gone: list[str]
    waiting: list[EndpointView]
    waiting_gone: list[str]
    waiting_order: list[str] | None = None
    #: The whole new ``departed`` list, present only when it changed.
    departed: list[DepartedView] | None = None


class SignalRelay(Message):
    """A Signal from another endpoint, with ``from`` in place of ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sender: str = Field(alias="from")
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None


class Bye(Message):
    """The server is about to close this endpoint's connection, and why."""

    reason: Literal["removed", "denied", "ended", "left", "replaced", "expired", "revoked"]
    detail: str = ""


class Moving(Message):
    """This node is shutting down: resume elsewhere now (docs/protocol.md, "Node shutdown").

    Open a new connection with the resume credential (the deployment's address reaches a node
    that stays) and close this one once welcomed there. Presence goes on without a gap. This
    node closes the connection after ``within`` seconds and records a disconnect for an
    endpoint still on it; it may still resume within the grace window.
    """

    reason: Literal["shutdown"] = "shutdown"
    within: float


class MediaStream(Message):
    """One m-line of a ``media_offer``: which endpoint's audio or video it carries."""

    mid: str
    kind: Literal["audio", "video"]
    endpoint: str


class MediaOffer(Message):
    """Group sessions: the forwarder's offer for this endpoint's one receiving connection, new
    or updated as endpoints come and go. Answer it with ``media_answer``."""

    description: SessionDescription
    streams: list[MediaStream]


class MediaReset(Message):
    """Group sessions: the forwarder lost this endpoint's media (it restarted or failed over).
    Close both connections to it and publish again; a fresh ``media_offer`` follows."""

    reason: Literal["forwarder_lost"] = "forwarder_lost"


SERVER_EVENTS: dict[str, type[Message]] = {
    "welcome": Welcome,
    "room": Room,
    "room_delta": RoomDelta,
    "signal": SignalRelay,
    "bye": Bye,
    "moving": Moving,
    "media_offer": MediaOffer,
    "media_reset": MediaReset,
}


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}
