"""One endpoint's presence in a Janus room: its publisher handle and its one subscription.

The publisher handle joins the room when the endpoint is admitted (before it publishes) so
that it hears of every feed; the subscriber handle is made once there is a feed to receive,
and updated as feeds appear. Janus removes departed feeds from the subscription by itself
(``autoupdate``) and sends a fresh offer, which is relayed like the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import structlog

from media.forwarder import EndpointCallbacks, StreamInfo, SubscriptionOffer
from media.janus.client import JanusHandle, JanusSession
from media.janus.errors import JanusError
from media.janus.messages import Jsep, Reply
from media.janus.videoroom import (
    Configure,
    Feed,
    JoinPublisher,
    JoinSubscriber,
    Publish,
    Start,
    Update,
)

log = structlog.get_logger("homeroom.media")

_FINGERPRINT = re.compile(r"^a=fingerprint:(.+)$", re.MULTILINE)
_NO_SUCH_FEED = 428


class JanusEndpoint:
    """An admitted endpoint's handles in one room (``room``, ``pin``; its feed id ``feed``)."""

    def __init__(
        self,
        session: JanusSession,
        *,
        room: int,
        pin: str,
        endpoint: str,
        feed: int,
        callbacks: EndpointCallbacks,
    ) -> None:
        self._session = session
        self.room, self._pin, self.endpoint, self.feed = room, pin, endpoint, feed
        self._callbacks = callbacks
        self.publisher: JanusHandle | None = None
        self.subscriber: JanusHandle | None = None
        self._feeds: set[int] = set()  # other feeds publishing now
        self._subscribed: set[int] = set()
        self._offered_fingerprint: str | None = None
        #: The mids of this endpoint's published audio (what ``moderate`` addresses).
        self.audio_mids: tuple[str, ...] = ()
        #: The streams of the subscription as last offered.
        self.streams: tuple[StreamInfo, ...] = ()
        self._lock = asyncio.Lock()  # one subscription change at a time
        self._relay = asyncio.Lock()  # offers go out in the order Janus made them
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def join(self) -> None:
        """Attach the publisher handle (once) and join the room as a not yet sending publisher."""
        if self.publisher is None:
            self.publisher = await self._session.attach()
            self.publisher.on_event(self._on_publisher_event)
        body = JoinPublisher(room=self.room, pin=self._pin, id=self.feed, display=self.endpoint)
        reply = await self.publisher.send_async(body.body())
        self._add_feeds(reply.plugin_data.get("publishers", []))

    async def publish(self, offer_sdp: str) -> str:
        """Publish the endpoint's feed, or renegotiate it; a new peer connection (another DTLS
        fingerprint) is published afresh. Returns Janus's answer."""
        assert self.publisher is not None
        fingerprint = _first(_FINGERPRINT, offer_sdp)
        request: Publish | Configure = Publish()
        if self._offered_fingerprint is not None:
            if fingerprint == self._offered_fingerprint:
                request = Configure()
            else:
                with contextlib.suppress(JanusError):
                    await self.publisher.send_async({"request": "unpublish"})
        reply = await self.publisher.send_async(request.body(), Jsep(type="offer", sdp=offer_sdp))
        if reply.jsep is None:
            raise JanusError(None, "janus answered the publish without an SDP")
        self._offered_fingerprint = fingerprint
        self.audio_mids = _audio_mids(reply.jsep.sdp)
        return reply.jsep.sdp

    async def answer(self, answer_sdp: str) -> None:
        if self.subscriber is None:
            raise JanusError(None, "no subscription offer to answer")
        await self.subscriber.send_async(Start().body(), Jsep(type="answer", sdp=answer_sdp))

    async def resubscribe(self) -> None:
        """Drop the subscription and make a fresh one of the same feeds (new offer)."""
        async with self._lock:
            old, self.subscriber = self.subscriber, None
            self._subscribed = set()
            self.streams = ()
            if old is not None:
                await old.detach()
        await self._sync()

    def video_mids_of(self, endpoint: str) -> list[str]:
        """The subscription's mids carrying ``endpoint``'s video."""
        return [s.mid for s in self.streams if s.endpoint == endpoint and s.kind == "video"]

    async def close(self) -> None:
        """Detach both handles (Janus stops the feed and the subscription); idempotent."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        handles = [h for h in (self.subscriber, self.publisher) if h is not None]
        self.subscriber = self.publisher = None
        for handle in handles:
            await handle.detach()

    # --- feeds -------------------------------------------------------------------------

    def _on_publisher_event(self, reply: Reply) -> None:
        data = reply.plugin_data
        if reply.janus == "detached" or data.get("leaving") == "ok":
            reason = "kicked" if data.get("reason") == "kicked" else "forwarder_lost"
            if not self._closed:
                self._spawn(self._callbacks.closed(reason))
            return
        if "publishers" in data:
            self._add_feeds(data["publishers"])
        for key in ("unpublished", "leaving", "kicked"):
            gone = data.get(key)
            if isinstance(gone, int):
                self._feeds.discard(gone)
                self._subscribed.discard(gone)  # Janus updates the subscription itself

    def _add_feeds(self, publishers: list[dict[str, Any]]) -> None:
        fresh = {int(p["id"]) for p in publishers if int(p["id"]) != self.feed}
        if fresh - self._feeds:
            self._feeds |= fresh
            self._spawn(self._sync())

    async def _sync(self) -> None:
        async with self._lock:
            if self._closed:
                return
            wanted = set(self._feeds)
            add = sorted(wanted - self._subscribed)
            if not add:
                return
            try:
                reply = await self._subscribe(add)
            except JanusError as error:
                if error.status != _NO_SUCH_FEED:
                    raise
                self._feeds -= set(add)  # gone again before we got to it: a later event says
                return
            self._subscribed |= set(add)
        await self._relay_offer(reply)

    async def _subscribe(self, feeds: list[int]) -> Reply:
        streams = [Feed(feed=f) for f in feeds]
        if self.subscriber is None:
            self.subscriber = await self._session.attach()
            self.subscriber.on_event(self._on_subscriber_event)
            join = JoinSubscriber(room=self.room, pin=self._pin, streams=streams)
            return await self.subscriber.send_async(join.body())
        return await self.subscriber.send_async(Update(subscribe=streams).body())

    def _on_subscriber_event(self, reply: Reply) -> None:
        if reply.jsep is not None:
            self._spawn(self._relay_offer(reply))

    async def _relay_offer(self, reply: Reply) -> None:
        if reply.jsep is None or reply.jsep.type != "offer":
            return  # "updating": Janus sends the offer later, as an event
        streams = tuple(
            StreamInfo(mid=str(s["mid"]), kind=str(s["type"]), endpoint=str(s["feed_display"]))
            for s in reply.plugin_data.get("streams", [])
            if s.get("active", True) and s.get("feed_display") and s.get("type") != "data"
        )
        async with self._relay:
            if not self._closed:
                self.streams = streams
                await self._callbacks.offer(SubscriptionOffer(sdp=reply.jsep.sdp, streams=streams))

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("janus_endpoint_task_failed", error=type(task.exception()).__name__)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1).strip() if found else None


def _audio_mids(sdp: str) -> tuple[str, ...]:
    """The mids of the audio m-lines of an SDP."""
    mids: list[str] = []
    kind = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and kind == "audio":
            mids.append(line.removeprefix("a=mid:").strip())
    return tuple(mids)
