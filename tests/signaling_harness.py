"""A real signaling server on a free port, and socket.io clients that talk to it like a page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import socketio
from aiohttp import web

from media.forwarder import Forwarder
from rooms.ids import NodeId
from rooms.kinds import Role
from rooms.roster import RosterEntry
from rooms.service import CreateSession, Rooms
from rooms.state import SessionState
from rooms.store import SessionStore
from rooms.tokens import issue_link_token
from signaling.deltas import apply_delta
from signaling.ice import TurnConfig
from signaling.protocol import SERVER_EVENTS
from signaling.server import SignalingConfig, SignalingServer
from tests.redis_server import free_port
from web.app import AccessLogger

SECRET = "test-secret-" + "x" * 32
GRACE = timedelta(seconds=30)


class Node:
    """One Homeroom signaling node: aiohttp + socket.io on 127.0.0.1:<port>."""

    def __init__(
        self,
        store: SessionStore,
        *,
        name: str = "n-1",
        redis_url: str | None = None,
        channel: str = "homeroom",
        turn: TurnConfig | None = None,
        forwarder: Forwarder | None = None,
    ):
        self.rooms = Rooms(store, node=NodeId(name))
        config = SignalingConfig(
            secret=SECRET, grace=GRACE, redis_url=redis_url, channel=channel, turn=turn
        )
        self.server = SignalingServer(self.rooms, config, forwarder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> Node:
        # The access log as `homeroom serve` keeps it (aiohttp's own would log addresses).
        app = web.Application(handler_args={"access_log_class": AccessLogger})
        self.server.attach(app)
        self.server.start()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def link(state: SessionState, attendee: str) -> str:
    entry = state.spec.entry(attendee)  # type: ignore[arg-type]
    assert entry is not None
    return issue_link_token(SECRET, state.spec, entry, timedelta(minutes=30), timedelta(hours=1))


async def create(
    rooms: Rooms, kind: str, clinician: str, *patients: str, **extra: Any
) -> SessionState:
    roster = [RosterEntry(attendee=clinician, role=Role.CLINICIAN)]
    roster += [RosterEntry(attendee=p, role=Role.PATIENT) for p in patients]
    return await rooms.create_session(
        CreateSession.model_validate({"kind": kind, "roster": roster, **extra}),
        created_by="c-admin",
    )


class Client:
    """A socket.io client holding one endpoint, recording everything the server pushes.

    Every pushed payload is checked against its model in ``signaling.protocol.SERVER_EVENTS``
    (the protocol's definition), so each signaling test also checks the wire shapes.
    """

    def __init__(self, url: str):
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.rooms: list[dict[str, Any]] = []
        self.signals: list[dict[str, Any]] = []
        self.byes: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.welcomes: list[dict[str, Any]] = []
        self._welcomed = asyncio.Event()
        self.sio.on("welcome", self._on("welcome", self.welcomes))
        self.sio.on("room", self._on("room", self.rooms))
        self.sio.on("signal", self._on("signal", self.signals))
        self.sio.on("bye", self._on("bye", self.byes))
        #: Every ``room_delta`` received; each is applied, and the view it makes is in rooms.
        self.deltas: list[dict[str, Any]] = []
        self.sio.on("room_delta", self._on_delta)

    def _on(self, event: str, into: list[dict[str, Any]]) -> Callable[[Any], None]:
        model = SERVER_EVENTS[event]

        def record(data: Any) -> None:
            model.model_validate(data)  # a malformed push fails the test that received it
            into.append(data)
            if event == "welcome":
                self.welcome = data
                self._welcomed.set()

        return record

    async def _on_delta(self, delta: dict[str, Any]) -> None:
        SERVER_EVENTS["room_delta"].model_validate(delta)
        self.deltas.append(delta)
        mine = [r for r in self.rooms if r["you"] == delta["you"]]
        current = max(mine, key=lambda r: r["version"]) if mine else None
        if current is not None and delta["version"] <= current["version"]:
            return  # late: a newer view is here already
        view = apply_delta(current, delta) if current is not None else None
        if view is None:  # not on top of what we hold: ask for the whole view, as pages do
            reply = await self.sio.call("hello", {}, timeout=5)
            view = reply["room"]
        SERVER_EVENTS["room"].model_validate(view)
        self.rooms.append(view)

    async def connect(self, **auth: Any) -> Client:
        """Connect; the server pushes ``welcome`` and the first ``room`` view unasked."""
        self._welcomed.clear()
        await self.sio.connect(
            self.url, auth={"v": 1, **auth}, transports=["websocket"], wait_timeout=5
        )
        await asyncio.wait_for(self._welcomed.wait(), 5)
        await until(lambda: any(r["you"] == self.endpoint for r in self.rooms))
        return self

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(
            event, data if data is not None else {}, timeout=5
        )
        return reply

    @property
    def endpoint(self) -> str:
        return str(self.welcome["endpoint"])

    @property
    def room(self) -> dict[str, Any]:
        """The newest room view (views carry a version; late ones never replace newer ones)."""
        return max(self.rooms, key=lambda r: r["version"])

    async def close(self) -> None:
        await self.sio.disconnect()


async def connect_error(url: str, **auth: Any) -> dict[str, Any]:
    """Try to connect and return the server's refusal (``{"error": code, "detail": ...}``)."""
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    sio.on("connect_error", lambda data: refusals.append(data))
    try:
        await sio.connect(
            url, auth={"v": 1, **auth} if auth else {}, transports=["websocket"], wait_timeout=5
        )
    except socketio.exceptions.ConnectionError:
        assert refusals, "refused without a reason"
        # socket.io carries the refusal as {"message": code, "data": {"error", "detail"}}.
        refusal = refusals[0]
        assert refusal["message"] == refusal["data"]["error"], refusal
        data: dict[str, Any] = refusal["data"]
        return data
    await sio.disconnect()
    raise AssertionError("the server accepted the connection")


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until ``predicate()`` holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
