"""The media seam of group sessions: what Homeroom asks of a forwarding unit.

Signaling talks to a :class:`Forwarder` only; ``media/janus/`` implements it with Janus
VideoRoom. Each endpoint of a forwarded session publishes one feed (its camera and microphone;
a shared device is one feed for two people) and receives every other feed through one
subscription, which the forwarder updates as feeds come and go: the forwarder offers, the
endpoint answers. Ids are Homeroom's (session, endpoint); the forwarder's own ids, secrets and
pins never leave it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

PeerRole = Literal["publisher", "subscriber"]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One m-line of a subscription: whose feed (an endpoint id) and which kind."""

    mid: str
    kind: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class SubscriptionOffer:
    """The forwarder's offer for an endpoint's one receiving connection (new or updated)."""

    sdp: str
    streams: tuple[StreamInfo, ...]


@dataclass(frozen=True, slots=True)
class IceCandidateInit:
    """A trickled candidate as the browser gives it (``candidate`` "" ends the candidates)."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True, slots=True)
class ForwarderHealth:
    """What /healthz and the start-up log say about group media."""

    name: str
    healthy: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EndpointCallbacks:
    """How the forwarder reaches an endpoint: an offer to relay, or the end of its media
    (``reason``: "kicked" or "forwarder_lost")."""

    offer: Callable[[SubscriptionOffer], Awaitable[None]]
    closed: Callable[[str], Awaitable[None]]


class Forwarder(Protocol):
    """A forwarding unit for group sessions (one room per live session)."""

    @property
    def name(self) -> str:
        """Short name for logs, /healthz and the probe ("janus")."""
        ...

    async def start(self, live_sessions: set[str]) -> None:
        """Connect, and remove rooms of sessions not in ``live_sessions`` (left by a crash)."""
        ...

    async def close(self) -> None: ...

    async def health(self) -> ForwarderHealth: ...

    async def open_room(self, session: str, publishers: int) -> None:
        """Make the session's room (idempotent)."""
        ...

    async def close_room(self, session: str) -> None:
        """Destroy the session's room and every feed in it (idempotent)."""
        ...

    async def join(self, session: str, endpoint: str, callbacks: EndpointCallbacks) -> None:
        """Enter an admitted endpoint; its subscription follows the room's feeds from now."""
        ...

    async def publish(self, session: str, endpoint: str, offer_sdp: str) -> str:
        """Publish (or renegotiate) the endpoint's one feed; returns the SDP answer."""
        ...

    async def answer(self, session: str, endpoint: str, answer_sdp: str) -> None:
        """The endpoint's answer to its last subscription offer."""
        ...

    async def resubscribe(self, session: str, endpoint: str) -> None:
        """Replace the endpoint's receiving connection with a fresh one (a new offer follows)."""
        ...

    async def trickle(
        self, session: str, endpoint: str, role: PeerRole, candidate: IceCandidateInit
    ) -> None: ...

    async def configure_substream(
        self, session: str, endpoint: str, source: str, substream: int
    ) -> None:
        """Which simulcast layer (0 low .. 2 high) ``endpoint`` receives of ``source``'s feed."""
        ...

    async def moderate(self, session: str, endpoint: str, muted: bool) -> None:
        """Stop (or resume) forwarding the endpoint's audio, whatever the endpoint sends."""
        ...

    async def kick(self, session: str, endpoint: str) -> None:
        """Stop the endpoint's media both ways and forget it."""
        ...

    async def leave(self, session: str, endpoint: str) -> None:
        """The endpoint's connection is gone: drop its feed and subscription (idempotent)."""
        ...
