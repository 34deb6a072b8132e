"""A headless Homeroom endpoint: joins from a link like a page does, and sends and counts media.

It speaks the signaling protocol (signaling/protocol.py) over a socket.io websocket, keeps one
:class:`~media.negotiation.PeerLink` per other endpoint of the call (a mesh) or, when the
welcome's target is "server" (group sessions through the forwarder), one publishing and one
receiving connection (:class:`~media.forwarded.ForwardedMedia`); it sends a synthetic tone and
picture, and counts the frames it decodes from each endpoint. Tests,
benchmarks and ``homeroom probe`` use it; it imports nothing from the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Sequence
from typing import Any

import socketio
import structlog
from aiortc import MediaStreamTrack

from media.errors import JoinRefused
from media.forwarded import ForwardedMedia
from media.negotiation import LocalMedia, PeerLink, rtc_configuration
from media.reception import PeerStats, count_frames
from media.room_delta import apply_delta
from media.synthetic import MediaSpec

log = structlog.get_logger("homeroom.media")
#: After a media_reset the forwarder may still be restarting: publish again for up to a minute.
REPUBLISH_ATTEMPTS, REPUBLISH_PAUSE = 60, 1.0


class Participant:
    """One endpoint of a session. ``await join()``, then ``call()`` any client event."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        resume: str | None = None,
        spec: MediaSpec | None = None,
        media: LocalMedia | None = None,
        timeout: float = 10.0,
        elsewhere: Sequence[str] = (),
        obey_mute: bool = True,
        relay_only: bool = False,
    ) -> None:
        if (token is None) == (resume is None):
            raise ValueError("give exactly one of token or resume")
        self.url = url
        #: Other addresses of the same deployment, tried before ``url`` when the node asks us
        #: to move (``moving``); behind one address (a proxy), leave it empty.
        self.elsewhere = tuple(elsewhere)
        #: Media only through the TURN relays the server hands out (iceTransportPolicy relay).
        self.relay_only = relay_only
        self._auth: dict[str, Any] = (
            {"v": 1, "token": token} if token else {"v": 1, "resume": resume}
        )
        self._timeout = timeout
        #: What it sends: a synthetic picture and tone of ``spec``, unless ``media`` says else.
        self._media = media or LocalMedia(spec or MediaSpec())
        self._microphone, self._camera = True, True  # the person's own choices
        #: False: a modified client that keeps sending audio when a clinician mutes it.
        self._obey_mute = obey_mute
        self._forwarded: ForwardedMedia | None = None
        #: Why the server refused this endpoint's feed (group sessions), if it did.
        self.media_refused: str | None = None
        self._sio = self._client()
        self._welcome: dict[str, Any] = {}
        self._greeted: asyncio.Future[dict[str, Any]] | None = None
        self._room: dict[str, Any] | None = None
        self._early: list[dict[str, Any]] = []  # signals that came before our welcome
        self._links: dict[str, PeerLink] = {}
        self._away: set[str] = set()  # endpoints whose signaling was last seen disconnected
        self._received: dict[str, PeerStats] = {}
        #: Work under way (negotiation, frame counters): cancelled by ``close()``.
        self._tasks: set[asyncio.Task[None]] = set()
        #: Connections being closed: awaited by ``close()``, never cancelled (an aiortc
        #: connection whose close() was cancelled half-way never finishes closing).
        self._closing: set[asyncio.Task[None]] = set()
        self._refusal: Any = None
        self._closed = False
        #: Why the server closed this endpoint (``bye``): removed, denied, ended, ...
        self.bye_reason: str | None = None
        #: Seconds from the start of ``join()`` to the server's ``welcome``.
        self.join_seconds: float | None = None
        #: Times this endpoint resumed on another node because its node shut down.
        self.moves = 0
        self._log = log

    # --- what tests and the probe read ---------------------------------------------------

    @property
    def endpoint(self) -> str:
        return str(self._welcome["endpoint"])

    @property
    def welcome(self) -> dict[str, Any]:
        return self._welcome

    @property
    def room(self) -> dict[str, Any]:
        """The newest room view (by ``version``)."""
        assert self._room is not None, "join() first"
        return self._room

    @property
    def forwarded(self) -> ForwardedMedia | None:
        """The connections to the forwarder (group sessions with ``target`` "server")."""
        return self._forwarded

    @property
    def peers(self) -> dict[str, PeerLink]:
        """The open peer connections, by remote endpoint."""
        return dict(self._links)

    @property
    def first_video_at(self) -> float | None:
        """``loop.time()`` of the first video frame decoded from any endpoint."""
        times = [s.first_video_at for s in self._received.values() if s.first_video_at is not None]
        return min(times, default=None)

    def stats(self) -> dict[str, PeerStats]:
        """A snapshot of what was received, by remote endpoint."""
        return {remote: dataclasses.replace(s) for remote, s in self._received.items()}

    def received(self, remote: str) -> PeerStats:
        return dataclasses.replace(self._received.get(remote) or PeerStats())

    # --- actions -------------------------------------------------------------------------

    async def join(self) -> Participant:
        """Connect, take the ``welcome``, and start negotiating with whoever is in the call."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._connect(self._auth)
        self.join_seconds = loop.time() - started
        return self

    async def resume(self) -> None:
        """Drop the socket and come back with the resume credential; media keeps flowing."""
        await self._sio.disconnect()
        await self._connect({"v": 1, "resume": self._welcome["resume"]})

    async def call(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a client event and return its ack (``{"ok": true, ...}`` or ``{"error": ...}``)."""
        reply: dict[str, Any] = await self._sio.call(event, data or {}, timeout=self._timeout)
        return reply

    async def admit(self, attendee: str) -> dict[str, Any]:
        return await self.call("admit", {"attendee": attendee})

    async def attach(self, token: str) -> dict[str, Any]:
        """Add a second attendee to this device with that person's own link token."""
        return await self.call("attach", {"token": token})

    def set_microphone(self, on: bool) -> None:
        """Switch the microphone here only (a page would also send ``mute`` for itself); a
        clinician's mute in the room view silences it regardless."""
        self._microphone = on
        self._apply_sending()

    async def set_camera(self, on: bool) -> dict[str, Any]:
        """Stop or restart video, and report the modality (it decides the billing modifier)."""
        self._camera = on
        self._apply_sending()
        return await self.call("modality", {"modality": "video" if on else "audio"})

    async def renegotiate(self) -> None:
        """Offer again on the publishing connection, as a page changing devices would (group
        sessions)."""
        assert self._forwarded is not None, "not in a forwarded call"
        await self._forwarded.renegotiate()

    async def close(self) -> None:
        """Stop the work under way, close every peer connection, disconnect: once it returns,
        nothing of this participant runs. Safe to call twice."""
        self._closed = True  # from here on nothing new is spawned but closings
        # First the offers and answers under way: they would only fail on connections being
        # closed under them, or on the socket once it is gone.
        await self._stop_work()
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))
        if self._forwarded is not None:
            forwarded, self._forwarded = self._forwarded, None
            await forwarded.close()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._sio.connected:
            await self._sio.disconnect()
        await self._stop_work()  # counters of tracks that came while closing

    async def _stop_work(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- socket.io -----------------------------------------------------------------------

    def _client(self) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        # Handlers are plain functions: python-socketio runs each event in its own task, and
        # a handler with no await runs whole in arrival order, so signals stay in order.
        # Views and signals count from any of our connections (one may still be closing
        # after a move); a ``bye`` or ``moving`` only from the current one.
        client.on("welcome", self._on_welcome)
        client.on("room", self._on_room)
        client.on("room_delta", lambda delta: self._on_room_delta(client, delta))
        client.on("signal", self._on_signal)
        client.on("media_offer", self._on_media_offer)
        client.on("media_reset", self._on_media_reset)
        client.on("bye", lambda data: self._on_bye(data) if client is self._sio else None)
        client.on("moving", lambda _: self._spawn(self._move()) if client is self._sio else None)
        client.on("connect_error", self._on_refused)
        return client

    async def _move(self) -> None:
        """Our node is shutting down: resume through another address while still connected
        here (the new node takes the endpoint over, so presence has no gap), then close the
        old connection. With nowhere to go, stay until the node closes us."""
        old = self._sio
        for url in [*self.elsewhere, self.url]:
            self._sio = self._client()
            try:
                await self._connect({"v": 1, "resume": self._welcome["resume"]}, url)
            except JoinRefused as exc:
                self._log.info("move_refused", code=exc.code)
                await self._sio.eio.disconnect()  # its HTTP session, left open by the failure
                continue
            self.url, self.moves = url, self.moves + 1
            self._log.info("moved")
            await old.disconnect()
            return
        self._sio = old

    async def _connect(self, auth: dict[str, Any], url: str | None = None) -> None:
        self._refusal = None
        # The server pushes ``welcome`` (then the first ``room``) as it accepts the connection.
        greeted = self._greeted = asyncio.get_running_loop().create_future()
        try:
            await self._sio.connect(
                url or self.url, auth=auth, transports=["websocket"], wait_timeout=self._timeout
            )
        except socketio.exceptions.ConnectionError as exc:
            data = (self._refusal or {}).get("data") or {}
            raise JoinRefused(
                data.get("error", "unreachable"), data.get("detail", str(exc))
            ) from None
        try:
            welcome = await asyncio.wait_for(greeted, self._timeout)
        except TimeoutError:
            await self._sio.disconnect()
            raise JoinRefused("timeout", "connected, but no welcome came") from None
        self._welcome = welcome
        self._log = log.bind(endpoint=self.endpoint)
        for link in self._links.values():  # back from a resume: offers may have been lost
            link.signaling_restored()
        if self._forwarded is not None:  # the server let go of our feed with the old socket
            stale, self._forwarded = self._forwarded, None
            self._spawn_closing(stale.close())
        if self._room is not None:  # the first view may have come before the welcome's turn
            self._apply_sending()
        self._reconcile()  # views may have come before the welcome; act on the newest now
        early, self._early = self._early, []
        for signal in early:
            self._on_signal(signal)

    def _on_welcome(self, welcome: dict[str, Any]) -> None:
        if self._greeted is not None and not self._greeted.done():
            self._greeted.set_result(welcome)

    def _on_refused(self, data: Any = None) -> None:
        self._refusal = data if isinstance(data, dict) else {}

    def _on_room_delta(self, client: socketio.AsyncClient, delta: dict[str, Any]) -> None:
        if self._room is not None and delta["version"] <= self._room["version"]:
            return  # late
        view = apply_delta(self._room, delta) if self._room is not None else None
        if view is not None:
            self._on_room(view)
            return

        async def whole() -> None:  # not on top of our view: ask for the whole one
            reply = await client.call("hello", {}, timeout=self._timeout)
            if isinstance(reply, dict) and "room" in reply:
                self._on_room(reply["room"])

        self._spawn(whole())

    def _on_room(self, view: dict[str, Any]) -> None:
        if self._room is not None and view["version"] <= self._room["version"]:
            return  # late: a newer view already arrived
        self._room = view
        if self._welcome:
            self._apply_sending()
            self._reconcile()

    def _on_signal(self, signal: dict[str, Any]) -> None:
        if not self._welcome:
            self._early.append(signal)
            return
        remote = str(signal.get("from", ""))
        link = self._links.get(remote)
        if link is None and remote and self._in_call():
            # The server relays only between admitted endpoints: the view saying so may
            # simply not be here yet (events from another node are not ordered with ours).
            link = self._link(remote)
        if link is not None:
            link.deliver(signal)

    def _on_bye(self, data: dict[str, Any]) -> None:
        self.bye_reason = str(data.get("reason", ""))
        self._log.info("bye", reason=self.bye_reason)
        for remote in list(self._links):
            self._drop(remote)
        self._leave_forwarder()

    # --- through the forwarder (welcome.target "server") ---------------------------------

    def _forwarding(self) -> bool:
        return self._welcome.get("target") == "server"

    def _on_media_reset(self, _: Any = None) -> None:
        """The forwarder lost our media (it restarted): publish again until it is back."""
        self._leave_forwarder()
        if self._in_call():
            self._enter_forwarder(retry=True)

    def _enter_forwarder(self, *, retry: bool = False) -> None:
        media = ForwardedMedia(
            rtc_configuration(self._welcome.get("ice_servers", []), relay_only=self.relay_only),
            self._media,
            send_offer=self._publish_offer,
            send_answer=self._send_answer,
            received=self._received,
            resubscribe=self._resubscribe,
        )
        self._forwarded = media
        self._apply_sending()
        self._spawn(self._publish_feed(media, attempts=REPUBLISH_ATTEMPTS if retry else 1))

    async def _publish_feed(self, media: ForwardedMedia, attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await media.publish()
                return
            except JoinRefused as exc:
                if attempt == attempts or media is not self._forwarded:
                    self.media_refused = exc.code
                    self._log.info("publish_refused", code=exc.code)
                    return
            await asyncio.sleep(REPUBLISH_PAUSE)

    def _leave_forwarder(self) -> None:
        if self._forwarded is not None:
            media, self._forwarded = self._forwarded, None
            self._spawn_closing(media.close())

    async def _publish_offer(self, sdp: str) -> str:
        reply = await self.call("media_publish", {"description": {"type": "offer", "sdp": sdp}})
        if not reply.get("ok"):
            raise JoinRefused(str(reply.get("error")), "the forwarder refused our feed")
        return str(reply["description"]["sdp"])

    async def _send_answer(self, sdp: str) -> None:
        reply = await self.call("media_answer", {"description": {"type": "answer", "sdp": sdp}})
        if not reply.get("ok"):
            self._log.info("answer_refused", code=reply.get("error"))

    async def _resubscribe(self) -> None:
        reply = await self.call("media_resubscribe")
        if not reply.get("ok"):
            self._log.info("resubscribe_refused", code=reply.get("error"))

    def _on_media_offer(self, data: dict[str, Any]) -> None:
        if self._forwarded is not None:
            offer = data["description"]["sdp"]
            self._spawn(self._forwarded.on_offer(offer, data.get("streams", [])))

    # --- the mesh ------------------------------------------------------------------------

    def _in_call(self) -> bool:
        return bool(
            self._room and self._room["admitted"] and not self._closed and not self.bye_reason
        )

    def _reconcile(self) -> None:
        """One link per other connected endpoint of the call; none while waiting. Through the
        forwarder: one feed published once admitted, none while waiting."""
        if self._forwarding():
            if not self._in_call():
                self._leave_forwarder()
            elif self._forwarded is None:
                self._enter_forwarder()
            return
        room = self._room
        if room is None or not self._in_call():
            for remote in list(self._links):
                self._drop(remote)
            return
        others = {e["endpoint"]: e for e in room["endpoints"] if e["endpoint"] != room["you"]}
        for remote in list(self._links):
            if remote not in others:
                self._drop(remote)
        self._away &= set(others)
        for remote, view in others.items():
            if not view["connected"]:
                # Its link stays (media may flow on while its signaling reconnects), but it
                # gets no new one: nobody would answer the offer.
                self._away.add(remote)
                continue
            if remote not in self._links:
                self._link(remote)
            elif remote in self._away:
                self._links[remote].signaling_restored()
            self._away.discard(remote)

    def _link(self, remote: str) -> PeerLink:
        link = PeerLink(
            remote,
            polite=self.endpoint < remote,
            config=rtc_configuration(
                self._welcome.get("ice_servers", []), relay_only=self.relay_only
            ),
            media=self._media,
            send=self._send_signal,
            on_track=self._on_track,
        )
        self._links[remote] = link
        return link

    def _drop(self, remote: str) -> None:
        self._spawn_closing(self._links.pop(remote).close())

    async def _send_signal(self, data: dict[str, Any]) -> None:
        if not self._sio.connected:
            return  # resuming; the remote will not hear this one either way
        reply = await self.call("signal", data)
        if not reply.get("ok"):
            self._log.info("signal_refused", code=reply.get("error"))

    def _on_track(self, remote: str, track: MediaStreamTrack) -> None:
        stats = self._received.setdefault(remote, PeerStats())
        self._spawn(count_frames(track, stats))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()  # closing: an offer or a counter now would outlive ``close()``
            return
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _spawn_closing(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._closing.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is None:
            return
        # Retrieved here, so that none goes unseen. An offer that raced the end of the call
        # (its connection closed, the socket gone) failed as expected.
        expected = self._closed or self.bye_reason is not None
        level = self._log.debug if expected else self._log.warning
        level("task_failed", task=task.get_name(), error=repr(error))

    # --- microphone and camera -----------------------------------------------------------

    def _apply_sending(self) -> None:
        muted = self._muted_in_room() and self._obey_mute
        self._media.sending["audio"] = self._microphone and not muted
        self._media.sending["video"] = self._camera
        if self._forwarded is not None:
            for kind, on in self._media.sending.items():
                self._forwarded.set_sending(kind, on)
        for link in self._links.values():
            for kind, on in self._media.sending.items():
                link.set_sending(kind, on)

    def _muted_in_room(self) -> bool:
        """This device's microphone is off when a clinician muted anyone on it (the device has
        one microphone, and a clinician's mute binds) or when everyone on it muted themselves.
        In peer-to-peer calls the server cannot enforce this: the endpoint must."""
        room = self._room
        if room is None:
            return False
        views = [*room["endpoints"], *room.get("waiting", [])]
        mine = next((e for e in views if e["endpoint"] == room["you"]), None)
        people = mine["attendees"] if mine else []
        return any(a["clinician_muted"] for a in people) or (
            bool(people) and all(a["muted"] for a in people)
        )
