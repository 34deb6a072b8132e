"""The stored document of one session: its spec plus live membership. The store owns it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from rooms.errors import EndpointNotFound
from rooms.ids import AttendeeId, EndpointId, NodeId
from rooms.kinds import SEATED_ROLES
from rooms.session import SessionSpec, SessionStatus


class SeatStatus(StrEnum):
    """One attendee's standing on one endpoint."""

    WAITING = "waiting"
    ADMITTED = "admitted"
    #: Admitted, but a clinician or the device marked this person as stepped away.
    ABSENT = "absent"


class Seat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SeatStatus
    #: True for the second attendee on a shared device.
    attached: bool = False
    #: False for a partner the device itself admitted, until a clinician marks them present.
    attested: bool = False


class EndpointState(BaseModel):
    """One connection (a browser tab, an aiortc participant). Carries one or two attendees."""

    model_config = ConfigDict(extra="forbid")

    id: EndpointId
    node: NodeId
    seats: dict[AttendeeId, Seat]
    joined_at: AwareDatetime
    #: Time of the last ledger event naming this endpoint: nothing later recorded of it, a
    #: disconnect backdated to its node's last heartbeat included, is stamped before this.
    last_event_at: AwareDatetime | None = None
    #: Opaque handle of the transport connection now serving this endpoint, so that the late
    #: close of a connection it was resumed away from is recognized and ignored.
    connection: str | None = None
    #: What the endpoint sends: "video", or "audio" when the camera is off.
    modality: str = "video"
    #: SHA-256 of the endpoint's current resume credential (rotated on every resume).
    resume_hash: str | None = None
    #: False between a lost connection and its resume (or expiry after the grace window).
    connected: bool = True
    disconnected_at: AwareDatetime | None = None

    def in_call(self) -> bool:
        """Taking part in the call: an attendee on it is admitted (present or marked absent),
        not waiting. A loop, not any() over a generator: views ask it several times a change."""
        for seat in self.seats.values():  # noqa: SIM110
            if seat.status is not SeatStatus.WAITING:
                return True
        return False


class AttendeeState(BaseModel):
    """Per-person state that outlives any one endpoint."""

    model_config = ConfigDict(extra="forbid")

    ever_admitted: bool = False
    #: A clinician turned this person away; only a clinician's admit lets them in again.
    denied: bool = False
    removed: bool = False
    self_muted: bool = False
    clinician_muted: bool = False
    mute_locked: bool = False
    unmute_requested: bool = False
    #: When this person's presence last ended (left, lost the connection, was removed, detached
    #: or marked absent): what a clinician's console shows for someone no longer in the call.
    left_at: AwareDatetime | None = None

    @property
    def muted(self) -> bool:
        return self.self_muted or self.clinician_muted


class SessionState(BaseModel):
    """Everything the store keeps about one session. ``version`` guards concurrent writers."""

    model_config = ConfigDict(extra="forbid")

    spec: SessionSpec
    status: SessionStatus = SessionStatus.SCHEDULED
    locked: bool = False
    auto_readmit: bool = False
    attendees: dict[AttendeeId, AttendeeState] = {}
    endpoints: dict[EndpointId, EndpointState] = {}
    #: Sequence number of the last ledger event of this session.
    seq: int = 0
    #: Hash of the last ledger event of this session ("" before the first): the chain's head.
    ledger_head: str = ""
    #: Bumped by the store on every committed change.
    version: int = 0
    opened_at: AwareDatetime | None = None
    live_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None

    def attendee(self, attendee: AttendeeId) -> AttendeeState:
        """The attendee's state, created on first use (roster membership is checked by callers)."""
        found = self.attendees.get(attendee)
        if found is None:
            found = self.attendees[attendee] = AttendeeState()
        return found

    def endpoint(self, endpoint: EndpointId) -> EndpointState:
        """The endpoint's state; EndpointNotFound when it is not (or no longer) in the session."""
        found = self.endpoints.get(endpoint)
        if found is None:
            raise EndpointNotFound("no such endpoint in this session")
        return found

    def peek(self, attendee: AttendeeId) -> AttendeeState:
        """The attendee's state for reading; unlike :meth:`attendee` it never adds an entry
        (an attendee without one gets a shared, frozen empty state)."""
        return self.attendees.get(attendee) or _NO_STATE

    def is_removed(self, attendee: AttendeeId) -> bool:
        found = self.attendees.get(attendee)
        return found is not None and found.removed

    def seats_of(self, attendee: AttendeeId) -> list[tuple[EndpointState, Seat]]:
        return [(e, e.seats[attendee]) for e in self.endpoints.values() if attendee in e.seats]

    def is_admitted(self, attendee: AttendeeId) -> bool:
        """Admitted on at least one endpoint (present or marked absent)."""
        return any(s.status is not SeatStatus.WAITING for _, s in self.seats_of(attendee))

    def is_present(self, attendee: AttendeeId) -> bool:
        return any(
            e.connected and s.status is SeatStatus.ADMITTED for e, s in self.seats_of(attendee)
        )

    def seated_count(self) -> int:
        """People (not devices, not hosts) admitted to the call: what capacity limits."""
        return sum(
            1
            for entry in self.spec.roster
            if entry.role in SEATED_ROLES and self.is_admitted(AttendeeId(entry.attendee))
        )

    def endpoint_of_node(self, node: NodeId) -> list[EndpointState]:
        return [e for e in self.endpoints.values() if e.node == node]


class _NoState(AttendeeState):
    """What :meth:`SessionState.peek` reads for an attendee without state: frozen, since it is
    shared (views read it for every waiting attendee, so it is not built per call)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_NO_STATE = _NoState()
