"""The :class:`~media.forwarder.Forwarder` of group sessions on one Janus VideoRoom.

One WebSocket and one Janus session per Homeroom process; a control handle for the room
requests (create, destroy, moderate, kick, list) and two handles per admitted local endpoint
(:class:`~media.janus.endpoint.JanusEndpoint`). Rooms, secrets, pins and feed ids are derived
from a server-side key (:mod:`media.janus.naming`), so they never need to be sent anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from media.forwarder import EndpointCallbacks, ForwarderHealth, IceCandidateInit, PeerRole
from media.janus.client import JanusConnection, JanusHandle, JanusSession
from media.janus.endpoint import JanusEndpoint
from media.janus.errors import JanusError, JanusUnavailable
from media.janus.messages import Candidate
from media.janus.naming import RoomNames
from media.janus.peek import published_mids
from media.janus.videoroom import (
    Configure,
    CreateRoom,
    DestroyRoom,
    Kick,
    ListRooms,
    Moderate,
    StreamLayer,
)

log = structlog.get_logger("homeroom.media")

_ROOM_EXISTS, _NO_SUCH_ROOM, _NO_SUCH_FEED, _ID_EXISTS = 427, 426, 428, 436
#: Per-publisher video cap: tiles on a phone need no more (Janus tells senders by REMB).
PUBLISHER_BITRATE = 512_000

Key = tuple[str, str]


class JanusForwarder:
    """Group media on one Janus (``url`` + ``api_secret``); ``key`` derives rooms and secrets."""

    def __init__(self, url: str, api_secret: str, key: bytes) -> None:
        self.url = url
        self._secret = api_secret
        self._names = RoomNames(key)
        self._connection: JanusConnection | None = None
        self._session: JanusSession | None = None
        self._control: JanusHandle | None = None
        self._connecting = asyncio.Lock()
        self._rooms: set[str] = set()
        self._endpoints: dict[Key, JanusEndpoint] = {}
        #: Muted or not, per endpoint, as last asked: applied again after each publish.
        self._muted: dict[Key, bool] = {}

    @property
    def name(self) -> str:
        return "janus"

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, live_sessions: set[str]) -> None:
        control = await self._ensure()
        listed = await control.send(ListRooms(admin_key=self._secret).body())
        for room in listed.plugin_data.get("list", []):
            session = RoomNames.session_of(str(room.get("description", "")))
            if session is not None and session not in live_sessions:
                await self._destroy(control, session)
                log.info("janus_room_collected", session=session)

    async def close(self) -> None:
        for key in list(self._endpoints):
            await self._drop(key)
        if self._session is not None:
            await self._session.destroy()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._session = self._control = None

    async def health(self) -> ForwarderHealth:
        try:
            await (await self._connected()).info()
        except JanusError as error:
            return ForwarderHealth(self.name, False, error.code)
        return ForwarderHealth(self.name, True)

    async def load(self) -> tuple[int, int]:
        """Publishers in Homeroom's rooms on this Janus, and the number of those rooms."""
        control = await self._ensure()
        listed = await control.send(ListRooms(admin_key=self._secret).body())
        ours = [
            room
            for room in listed.plugin_data.get("list", [])
            if RoomNames.session_of(str(room.get("description", ""))) is not None
        ]
        return sum(int(room.get("num_participants", 0)) for room in ours), len(ours)

    async def disconnect(self) -> None:
        """Drop the connection (Janus stopped answering): every endpoint in it hears
        "forwarder_lost"; the next use connects again."""
        if self._connection is not None:
            await self._connection.close()

    # --- rooms -------------------------------------------------------------------------

    async def open_room(self, session: str, publishers: int) -> None:
        if session in self._rooms:
            return
        control = await self._ensure()
        create = CreateRoom(
            room=self._names.room(session),
            description=RoomNames.description(session),
            secret=self._names.secret(session),
            pin=self._names.pin(session),
            admin_key=self._secret,
            publishers=publishers,
            bitrate=PUBLISHER_BITRATE,
        )
        try:
            await control.send(create.body())
        except JanusError as error:
            if error.status != _ROOM_EXISTS:
                raise
        self._rooms.add(session)

    async def close_room(self, session: str) -> None:
        for key in [k for k in self._endpoints if k[0] == session]:
            await self._drop(key)
        self._rooms.discard(session)
        self._muted = {k: v for k, v in self._muted.items() if k[0] != session}
        await self._destroy(await self._ensure(), session)

    # --- endpoints ---------------------------------------------------------------------

    async def join(self, session: str, endpoint: str, callbacks: EndpointCallbacks) -> None:
        key = (session, endpoint)
        await self._drop(key)  # a resumed endpoint starts afresh
        janus = await self._ensure()
        assert self._session is not None
        member = JanusEndpoint(
            self._session,
            room=self._names.room(session),
            pin=self._names.pin(session),
            endpoint=endpoint,
            feed=self._names.feed(session, endpoint),
            callbacks=callbacks,
        )
        self._endpoints[key] = member
        try:
            await self._join(janus, member, session)
        except BaseException:
            await self._drop(key)
            raise

    async def _join(self, control: JanusHandle, member: JanusEndpoint, session: str) -> None:
        try:
            await member.join()
        except JanusError as error:
            if error.status != _ID_EXISTS:
                raise
            # The endpoint's feed from before a lost connection is still there: replace it.
            await self._kick_feed(control, session, member.feed)
            await member.join()

    async def publish(self, session: str, endpoint: str, offer_sdp: str) -> str:
        member = self._member(session, endpoint)
        answer = await member.publish(offer_sdp)
        if self._muted.get((session, endpoint)):
            await self._apply_moderation(session, member, True)
        return answer

    async def answer(self, session: str, endpoint: str, answer_sdp: str) -> None:
        await self._member(session, endpoint).answer(answer_sdp)

    async def resubscribe(self, session: str, endpoint: str) -> None:
        await self._member(session, endpoint).resubscribe()

    async def trickle(
        self, session: str, endpoint: str, role: PeerRole, candidate: IceCandidateInit
    ) -> None:
        member = self._member(session, endpoint)
        handle = member.publisher if role == "publisher" else member.subscriber
        if handle is None:
            return  # a candidate for a connection Janus has not offered yet: nothing to add
        payload = (
            Candidate(
                candidate=candidate.candidate,
                sdpMid=candidate.sdp_mid,
                sdpMLineIndex=candidate.sdp_mline_index,
            )
            if candidate.candidate
            else None
        )
        await handle.trickle(payload)

    async def configure_substream(
        self, session: str, endpoint: str, source: str, substream: int
    ) -> None:
        member = self._member(session, endpoint)
        mids = member.video_mids_of(source)
        if member.subscriber is None or not mids:
            return
        layers = [StreamLayer(mid=mid, substream=substream) for mid in mids]
        await member.subscriber.send_async(Configure(streams=layers).body())

    async def moderate(self, session: str, endpoint: str, muted: bool) -> None:
        key = (session, endpoint)
        member = self._endpoints.get(key)
        if member is None:  # held by another node: moderate the feed found in the room
            self._muted[key] = muted
            await self._moderate_remote(session, endpoint, muted)
            return
        if self._muted.get(key, False) == muted and muted is False:
            return
        self._muted[key] = muted
        await self._apply_moderation(session, member, muted)

    async def kick(self, session: str, endpoint: str) -> None:
        await self._drop((session, endpoint))
        control = await self._ensure()
        await self._kick_feed(control, session, self._names.feed(session, endpoint))

    async def leave(self, session: str, endpoint: str) -> None:
        await self._drop((session, endpoint))

    # --- inside ------------------------------------------------------------------------

    def _member(self, session: str, endpoint: str) -> JanusEndpoint:
        member = self._endpoints.get((session, endpoint))
        if member is None or member.publisher is None:
            raise JanusUnavailable("this endpoint has no media in the room (join first)")
        return member

    async def _drop(self, key: Key) -> None:
        member = self._endpoints.pop(key, None)
        if member is not None:
            await member.close()

    async def _apply_moderation(self, session: str, member: JanusEndpoint, muted: bool) -> None:
        await self._moderate_mids(session, member.feed, member.audio_mids, muted)

    async def _moderate_remote(self, session: str, endpoint: str, muted: bool) -> None:
        await self._ensure()
        assert self._session is not None
        feed = self._names.feed(session, endpoint)
        room, pin = self._names.room(session), self._names.pin(session)
        mids = await published_mids(self._session, room=room, pin=pin, feed=feed, kind="audio")
        await self._moderate_mids(session, feed, mids, muted)

    async def _moderate_mids(
        self, session: str, feed: int, mids: tuple[str, ...], muted: bool
    ) -> None:
        control = await self._ensure()
        room, secret = self._names.room(session), self._names.secret(session)
        for mid in mids:
            request = Moderate(room=room, secret=secret, id=feed, mid=mid, mute=muted)
            try:
                await control.send(request.body())
            except JanusError as error:
                if error.status not in (_NO_SUCH_FEED, _NO_SUCH_ROOM):
                    raise

    async def _kick_feed(self, control: JanusHandle, session: str, feed: int) -> None:
        kick = Kick(room=self._names.room(session), secret=self._names.secret(session), id=feed)
        try:
            await control.send(kick.body())
        except JanusError as error:
            if error.status not in (_NO_SUCH_FEED, _NO_SUCH_ROOM):
                raise

    async def _destroy(self, control: JanusHandle, session: str) -> None:
        destroy = DestroyRoom(room=self._names.room(session), secret=self._names.secret(session))
        try:
            await control.send(destroy.body())
        except JanusError as error:
            if error.status != _NO_SUCH_ROOM:
                raise

    async def _connected(self) -> JanusConnection:
        await self._ensure()
        assert self._connection is not None
        return self._connection

    async def _ensure(self) -> JanusHandle:
        """The control handle, connecting (again) first when the connection is gone."""
        async with self._connecting:
            if self._connection is not None and self._connection.connected:
                assert self._control is not None
                return self._control
            if self._connection is not None:
                with contextlib.suppress(JanusError):
                    await self._connection.close()
            self._rooms.clear()  # a new Janus (or a restarted one) has none of them
            connection = JanusConnection(self.url, self._secret)
            await connection.connect()
            session = await connection.create_session()
            self._control = await session.attach()
            self._connection, self._session = connection, session
            return self._control
