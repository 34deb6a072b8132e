"""A headless endpoint's media through a forwarding unit: one publishing connection, one
receiving connection, whatever the size of the group.

The publisher offers (camera and microphone); the forwarder answers. The forwarder offers the
subscription, with which endpoint each m-line carries, and this side answers; later offers
add or remove other endpoints' streams on the same connection. Frames are counted per remote
endpoint, as the mesh does (media/reception.py). How offers and answers travel (socket.io in
the participant, direct calls in tests) is the caller's: ``send_offer`` and ``send_answer``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from media.negotiation import LocalMedia, close_connection
from media.reception import PeerStats, count_frames

log = structlog.get_logger("homeroom.media")

#: Publish an SDP offer, get the forwarder's answer.
SendOffer = Callable[[str], Awaitable[str]]
#: Give the forwarder our answer to its subscription offer.
SendAnswer = Callable[[str], Awaitable[None]]
#: Ask the forwarder for a fresh subscription (a new receiving connection).
Resubscribe = Callable[[], Awaitable[None]]


class ForwardedMedia:
    """One endpoint's two peer connections to the forwarder."""

    def __init__(
        self,
        config: RTCConfiguration,
        media: LocalMedia,
        *,
        send_offer: SendOffer,
        send_answer: SendAnswer,
        received: dict[str, PeerStats] | None = None,
        resubscribe: Resubscribe | None = None,
    ) -> None:
        # Max-bundle: the forwarder bundles every m-line on one transport. Under aiortc's
        # default (balanced) policy, the second and later video m-lines of one offer stay on
        # the first video m-line's transport, which the bundle then drops: their packets
        # reach the wrong receiver.
        self._config = RTCConfiguration(
            iceServers=config.iceServers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )
        self._media = media
        self._send_offer, self._send_answer = send_offer, send_answer
        self._resubscribe = resubscribe
        #: mids whose stream ended (Janus sent BYE): aiortc cannot receive on them again.
        self._retired: set[str] = set()
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self._tracks: dict[str, Any] = {}
        self._owners: dict[str, str] = {}  # subscription mid -> endpoint it carries
        self._received: dict[str, PeerStats] = {} if received is None else received
        self._inbox: asyncio.Lock = asyncio.Lock()  # subscription offers, one at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def received(self) -> dict[str, PeerStats]:
        return self._received

    async def publish(self) -> None:
        """(Re)publish this endpoint's feed on a fresh connection."""
        old, self.publisher = self.publisher, RTCPeerConnection(self._config)
        if old is not None:
            await close_connection(old)
        self._tracks = {kind: self._media.track(kind) for kind in ("audio", "video")}
        for track in self._tracks.values():
            self.publisher.addTransceiver(track, direction="sendonly")
        await self._offer(self.publisher)

    async def renegotiate(self) -> None:
        """Offer again on the same publishing connection (same feed, same DTLS)."""
        assert self.publisher is not None
        await self._offer(self.publisher)

    def set_sending(self, kind: str, on: bool) -> None:
        track = self._tracks.get(kind)
        if track is not None:
            track.enabled = on

    async def on_offer(self, sdp: str, streams: list[dict[str, Any]]) -> None:
        """The forwarder's (new or updated) subscription offer: answer it on our one
        receiving connection."""
        async with self._inbox:
            if self._closed:
                return
            active = {str(s["mid"]): str(s["endpoint"]) for s in streams}
            lost = self.subscriber is not None and self.subscriber.signalingState == "closed"
            if self._resubscribe is not None and (lost or self._retired & set(active)):
                # The connection closed by itself, or the forwarder reuses an ended m-line
                # for a newcomer (aiortc's receiver of that m-line stopped for good): start a
                # fresh receiving connection.
                await self._restart_subscription()
                return
            self._retired |= set(self._owners) - set(active)
            self._owners.update(active)
            if self.subscriber is None:
                self.subscriber = self._new_subscriber()
            pc = self.subscriber
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await self._send_answer(pc.localDescription.sdp)
            except Exception:
                if self._closed:
                    return  # closed while answering: nobody is left to take the answer
                raise

    def _new_subscriber(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._config)
        pc.on("track", self._on_track)

        @pc.on("connectionstatechange")
        def _changed() -> None:
            # aiortc closes a connection itself once every DTLS transport of it closed, and
            # a failed one receives nothing more: ask for a fresh one (as the pages do).
            if pc.connectionState in ("failed", "closed") and not self._closed:
                self._spawn(self._replace_lost(pc))

        return pc

    async def _replace_lost(self, pc: RTCPeerConnection) -> None:
        async with self._inbox:
            if self._closed or pc is not self.subscriber or self._resubscribe is None:
                return  # closed by us, already replaced, or nobody to ask
            log.info("subscription_lost", state=pc.connectionState)
            await self._restart_subscription()

    async def _restart_subscription(self) -> None:
        assert self._resubscribe is not None
        old, self.subscriber = self.subscriber, None
        self._owners, self._retired = {}, set()
        if old is not None:
            await close_connection(old)
        await self._resubscribe()

    async def outbound_video_streams(self) -> int:
        """Video RTP streams this endpoint uploads (one, whatever the group size)."""
        if self.publisher is None:
            return 0
        report = await self.publisher.getStats()
        return sum(
            1
            for stat in report.values()
            if stat.type == "outbound-rtp" and getattr(stat, "kind", "") == "video"
        )

    async def close(self) -> None:
        self._closed = True
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await close_connection(pc)
        self.publisher = self.subscriber = None
        # Closed connections end their remote tracks, and so the counters; one that still
        # waits after that is not worth hanging a shutdown for, but is not left pending.
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _offer(self, pc: RTCPeerConnection) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self._send_offer(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscriber is not None
        mid = next(
            (t.mid for t in self.subscriber.getTransceivers() if t.receiver.track is track), None
        )
        owner = self._owners.get(mid or "", "unknown")
        stats = self._received.setdefault(owner, PeerStats())
        self._spawn(count_frames(track, stats))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
