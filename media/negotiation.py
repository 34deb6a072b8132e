"""One RTCPeerConnection to one other endpoint, negotiated with "perfect negotiation".

The pair's roles come from the room view: the endpoint whose id sorts first is *polite*.
Everything that touches the connection (our offer, the remote's descriptions and candidates)
goes through one inbox and is handled in order, so the pattern's ``makingOffer`` flag is not
needed: while our offer is being made nothing else runs, and a colliding offer sees the
signaling state ``have-local-offer``.

aiortc has no rollback (``setLocalDescription`` rejects it and ``setRemoteDescription`` does
not roll back implicitly), so where a browser's polite peer rolls back its offer, ours
replaces the connection with a fresh one and answers on that. Only the impolite side makes
the first offer, so two Homeroom participants never collide on the first negotiation; the
collision rules still hold for peers (browsers) that offer whenever they like.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from media.synthetic import MediaSpec, PacedTrack, PatternTrack, ToneTrack

log = structlog.get_logger("homeroom.media")

SendSignal = Callable[[dict[str, Any]], Awaitable[None]]
OnTrack = Callable[[str, MediaStreamTrack], None]

_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)

#: Connections being closed by :func:`close_connection`, held until they are closed.
_CLOSING: set[asyncio.Future[None]] = set()


async def close_connection(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and wait until it is closed; cancelling the wait never stops the closing.

    aiortc closes a connection by itself once all its DTLS transports closed (the other side
    hung up, the forwarder kicked us), and a second ``close()`` awaits the first one's own
    future: cancelling that wait would cancel the future, and the first close then fails
    with InvalidStateError ("Task exception was never retrieved"). A close cancelled half-way
    never finishes, and a later ``close()`` on it waits forever.
    """
    closing = asyncio.ensure_future(pc.close())
    _CLOSING.add(closing)
    closing.add_done_callback(_CLOSING.discard)
    await asyncio.shield(closing)


def rtc_configuration(
    ice_servers: list[dict[str, Any]], *, relay_only: bool = False
) -> RTCConfiguration:
    """The welcome's ``ice_servers`` as aiortc wants them. Always an explicit list: given
    ``None``, aiortc would fall back to a public STUN server. ``relay_only`` gathers TURN relay
    candidates alone (``iceTransportPolicy: relay``), as a patient behind a strict firewall
    effectively does."""
    servers = [
        RTCIceServer(
            urls=server["urls"],
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in ice_servers
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class LocalMedia:
    """What this participant sends: the spec, and whether microphone and camera are on."""

    def __init__(self, spec: MediaSpec) -> None:
        self.spec = spec
        self.sending = {"audio": True, "video": True}

    def track(self, kind: str) -> PacedTrack:
        track: PacedTrack = ToneTrack(self.spec) if kind == "audio" else PatternTrack(self.spec)
        track.enabled = self.sending[kind]
        return track


class PeerLink:
    """The connection to ``remote``: made on creation, replaced when needed, closed once."""

    def __init__(
        self,
        remote: str,
        *,
        polite: bool,
        config: RTCConfiguration,
        media: LocalMedia,
        send: SendSignal,
        on_track: OnTrack,
    ) -> None:
        self.remote = remote
        self.polite = polite
        self._config, self._media, self._send, self._on_track = config, media, send, on_track
        self._log = log.bind(remote=remote, polite=polite)
        self._tracks: dict[str, PacedTrack] = {}
        self._pc = self._new_pc()
        self._replacements = 0
        self._closing: set[asyncio.Future[None]] = set()  # replaced connections being closed
        self._ignoring_offer = False
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name=f"peer-{remote}")
        if not polite:
            self.negotiate()

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def replaced(self) -> int:
        """How many times the connection was replaced (glare as the polite peer, ICE restart)."""
        return self._replacements

    def deliver(self, signal: dict[str, Any]) -> None:
        """Queue a relayed ``signal`` from the remote (``description`` or ``candidate``)."""
        if "description" in signal:
            self._inbox.put_nowait(("description", signal["description"]))
        elif "candidate" in signal:
            self._inbox.put_nowait(("candidate", signal["candidate"]))

    def negotiate(self) -> None:
        """Queue an offer, as a browser's ``negotiationneeded`` would (either side may)."""
        self._inbox.put_nowait(("offer", {}))

    def restart(self) -> None:
        """Replace the connection and offer afresh: aiortc cannot restart ICE in place."""
        self._inbox.put_nowait(("restart", {}))

    def signaling_restored(self) -> None:
        """The signaling path to the remote was down (its socket or ours): an offer of ours
        may have been lost, and nobody would ever answer it. Offer afresh if one is out."""
        self._inbox.put_nowait(("restored", {}))

    def set_sending(self, kind: str, on: bool) -> None:
        """Start or stop sending ``kind``; no renegotiation needed (see PacedTrack)."""
        track = self._tracks.get(kind)
        if track is not None:
            track.enabled = on

    async def close(self) -> None:
        """Stop negotiating and close the connection (and any it replaced)."""
        self._worker.cancel()
        await asyncio.gather(self._worker, *self._closing, return_exceptions=True)
        await close_connection(self._pc)

    # --- the inbox ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            what, data = await self._inbox.get()
            try:
                await self._handle(what, data)
            except Exception:
                # A bad SDP from the remote must not end the link: later offers may be fine.
                self._log.exception("negotiation_failed", what=what)

    async def _handle(self, what: str, data: dict[str, Any]) -> None:
        if what == "offer":
            await self._offer()
        elif what == "restart" or (
            what == "restored" and self._pc.signalingState == "have-local-offer"
        ):
            await self._replace()
            await self._offer()
        elif what == "description":
            await self._on_description(data["type"], data.get("sdp", ""))
        elif what == "candidate":
            await self._on_candidate(data)

    async def _offer(self) -> None:
        if self._pc.signalingState != "stable":
            return  # an offer is already out, or we are answering one
        await self._pc.setLocalDescription(await self._pc.createOffer())
        await self._send_local()

    async def _on_description(self, kind: str, sdp: str) -> None:
        if kind == "answer":
            if self._pc.signalingState != "have-local-offer":
                self._log.debug("stale_answer_ignored")
                return
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            return
        if kind != "offer":
            return  # "rollback" is the remote undoing its own offer: nothing for us to undo
        collision = self._pc.signalingState != "stable"
        self._ignoring_offer = collision and not self.polite
        if self._ignoring_offer:
            self._log.debug("colliding_offer_ignored")
            return
        if collision or self._restarts_ice(sdp):
            await self._replace()
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        await self._send_local()

    async def _on_candidate(self, data: dict[str, Any]) -> None:
        # aiortc gathers before it answers, so our SDPs are complete; browsers trickle theirs.
        text = str(data.get("candidate", ""))
        if not text:
            return  # end of candidates: aiortc needs no notice
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
            candidate.sdpMid = data.get("sdpMid")
            candidate.sdpMLineIndex = data.get("sdpMLineIndex")
            await self._pc.addIceCandidate(candidate)
        except Exception:
            if not self._ignoring_offer:  # candidates of an ignored offer are expected to fail
                self._log.warning("candidate_rejected")

    def _restarts_ice(self, sdp: str) -> bool:
        """A new ICE ufrag means an ICE restart or a reloaded page: aiortc can do neither on
        an existing connection, so the offer gets a fresh one."""
        current = self._pc.remoteDescription
        if current is None:
            return False
        old, new = _UFRAG.search(current.sdp), _UFRAG.search(sdp)
        return old is not None and new is not None and old.group(1) != new.group(1)

    async def _send_local(self) -> None:
        local = self._pc.localDescription
        await self._send({"to": self.remote, "description": {"type": local.type, "sdp": local.sdp}})

    # --- the connection -----------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._config)
        self._tracks = {kind: self._media.track(kind) for kind in ("audio", "video")}
        for track in self._tracks.values():
            pc.addTransceiver(track, direction="sendrecv")
        pc.on("track", lambda track: self._on_track(self.remote, track))
        pc.on("connectionstatechange", lambda: self._state_changed(pc))
        return pc

    async def _replace(self) -> None:
        old, self._pc = self._pc, self._new_pc()
        self._replacements += 1
        self._log.info("connection_replaced")
        # Shielded: an RTCPeerConnection whose close() was cancelled half-way never finishes
        # closing, and a later close() on it waits forever.
        closing = asyncio.ensure_future(old.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        await asyncio.shield(closing)

    def _state_changed(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc:
            return
        self._log.debug("connection_state", state=pc.connectionState)
        # The impolite side offers, so it also restarts: a failed path gets a fresh one.
        if pc.connectionState == "failed" and not self.polite:
            self.restart()
