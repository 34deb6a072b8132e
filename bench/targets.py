"""What one join lifecycle is, on Homeroom and on the floor, driven through the lean client.

Homeroom (an individual session; its clinician connected once, outside the timing): the patient
connects with its link token (verified, waiting room; the server pushes its ``welcome`` and
first room view before accepting the connection); the clinician sees it waiting and admits it
(membership + attendance event); the patient sees itself admitted and sends ``leave``; on the
ack it hangs up. The floor: connect (HSET, enter room, broadcast),
``leave`` (HDEL), hang up. Join latency is from the lifecycle's scheduled start to the
server's ``40`` (connection accepted), so a lagging generator cannot hide queueing.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.servers import Served, create_session
from bench.sio_client import Endpoint, View

#: Concurrent connection attempts while filling the idle endpoints.
_CONNECTING = 32


class BenchError(Exception):
    """The server answered something a correct server never would: the bench is broken."""


@dataclass(frozen=True, slots=True)
class Sample:
    join: float
    total: float


def expect_ok(ack: Any, what: str) -> None:
    if not isinstance(ack, dict) or ack.get("ok") is not True:
        raise BenchError(f"{what}: {ack!r}")


class Target(ABC):
    """A server under test, with a pool of sessions ready for lifecycles."""

    name: str

    def __init__(self, served: Served, http: aiohttp.ClientSession) -> None:
        self.served, self.http = served, http
        self._pool: asyncio.Queue[Any] = asyncio.Queue()
        self._held: list[Endpoint] = []

    def endpoint(self) -> Endpoint:
        return Endpoint(self.http, self.served.url)

    async def lifecycle(self, due: float) -> Sample:
        seat = await self._pool.get()
        try:
            return await self._run(seat, due)
        finally:
            self._pool.put_nowait(seat)

    async def connect_idle(
        self, n: int, per_session: int
    ) -> tuple[list[Endpoint], list[BaseException]]:
        """``n`` endpoints that connect and then just stay (answering pings); those that
        could not connect come back as their exceptions (a server too slow to accept them
        is a finding, not a broken bench)."""
        auths = await self._idle_auths(n, per_session)
        gate = asyncio.Semaphore(_CONNECTING)

        async def one(auth: dict[str, Any]) -> Endpoint:
            async with gate:
                ep = self.endpoint()
                try:
                    await ep.connect(auth)
                    await self._after_connect(ep)
                except BaseException:
                    await ep.close()
                    raise
                return ep

        results = await asyncio.gather(*(one(a) for a in auths), return_exceptions=True)
        connected = [r for r in results if isinstance(r, Endpoint)]
        return connected, [r for r in results if not isinstance(r, Endpoint)]

    async def close(self) -> None:
        await asyncio.gather(*(ep.close() for ep in self._held), return_exceptions=True)

    @abstractmethod
    async def prepare(self, pool: int) -> None: ...

    @abstractmethod
    async def _run(self, seat: Any, due: float) -> Sample: ...

    @abstractmethod
    async def _idle_auths(self, n: int, per_session: int) -> list[dict[str, Any]]: ...

    async def _after_connect(self, ep: Endpoint) -> None:
        return None


@dataclass(slots=True)
class _Seat:
    clinician: Endpoint
    patient: str
    #: What the patient connects with.
    auth: dict[str, Any]


class _AdmitLifecycle(Target):
    """Homeroom's join lifecycle, against any server that speaks its messages: the patient
    connects and is welcomed, the clinician sees it waiting and admits it, the patient sees
    itself admitted and leaves."""

    async def _run(self, seat: _Seat, due: float) -> Sample:
        loop = asyncio.get_running_loop()
        patient = self.endpoint()
        try:
            await patient.connect(seat.auth)
            joined = loop.time()
            me = _welcomed(patient)["endpoint"]
            await seat.clinician.until_view(lambda view: is_waiting(view, me))
            expect_ok(await seat.clinician.call("admit", {"attendee": seat.patient}), "admit")
            await patient.until_view(lambda view: bool(view["admitted"]))
            expect_ok(await patient.call("leave"), "leave")
        finally:
            await patient.close()
        return Sample(joined - due, loop.time() - due)


class Homeroom(_AdmitLifecycle):
    name = "Homeroom"

    async def prepare(self, pool: int) -> None:
        for i in range(pool):
            clinician, patient = f"c-{i}", f"p-{i}"
            roster = [
                {"attendee": clinician, "role": "clinician"},
                {"attendee": patient, "role": "patient"},
            ]
            body = {"kind": "individual", "roster": roster, "planned_minutes": 600}
            tokens = await create_session(self.http, self.served.url, body)
            ep = self.endpoint()
            await ep.connect({"v": 1, "token": tokens[clinician]})
            await self._after_connect(ep)
            self._held.append(ep)
            self._pool.put_nowait(_Seat(ep, patient, {"v": 1, "token": tokens[patient]}))

    async def _idle_auths(self, n: int, per_session: int) -> list[dict[str, Any]]:
        auths: list[dict[str, Any]] = []
        group = 0
        while len(auths) < n:
            size = min(per_session, n - len(auths))
            patients = [f"g{group}-p{k}" for k in range(size)]
            roster = [{"attendee": f"g{group}-f", "role": "clinician"}]
            roster += [{"attendee": p, "role": "patient"} for p in patients]
            body = {
                "kind": "group",
                "purpose": "therapy_group",
                "capacity": max(size, 1),
                "roster": roster,
                "planned_minutes": 600,
            }
            tokens = await create_session(self.http, self.served.url, body)
            auths += [{"v": 1, "token": tokens[p]} for p in patients]
            group += 1
        return auths

    async def _after_connect(self, ep: Endpoint) -> None:
        _welcomed(ep)


class Floor(Target):
    name = "floor"

    async def prepare(self, pool: int) -> None:
        for i in range(pool):
            ep = self.endpoint()
            await ep.connect({"session": f"s-{i}", "member": "observer"})
            self._held.append(ep)
            self._pool.put_nowait(f"s-{i}")

    async def _run(self, seat: str, due: float) -> Sample:
        loop = asyncio.get_running_loop()
        patient = self.endpoint()
        try:
            await patient.connect({"session": seat, "member": "patient"})
            joined = loop.time()
            expect_ok(await patient.call("leave"), "leave")
        finally:
            await patient.close()
        return Sample(joined - due, loop.time() - due)

    async def _idle_auths(self, n: int, per_session: int) -> list[dict[str, Any]]:
        return [{"session": f"idle-{i // per_session}", "member": f"m-{i}"} for i in range(n)]


class FloorPattern(_AdmitLifecycle):
    """The floor server exchanging Homeroom's messages (``--pattern homeroom``), driven by the
    same steps as :class:`Homeroom`'s lifecycle."""

    name = "floor, Homeroom's messages"

    async def prepare(self, pool: int) -> None:
        for i in range(pool):
            ep = self.endpoint()
            await ep.connect({"session": f"s-{i}", "member": "c", "admitted": True})
            _welcomed(ep)
            self._held.append(ep)
            self._pool.put_nowait(_Seat(ep, "p", {"session": f"s-{i}", "member": "p"}))

    async def _idle_auths(self, n: int, per_session: int) -> list[dict[str, Any]]:
        raise NotImplementedError("only the CPU figure is measured for this floor")


def _welcomed(ep: Endpoint) -> dict[str, Any]:
    """The welcome and first view pushed before the server accepted the connection."""
    if ep.welcome is None or ep.view is None:
        raise BenchError("connected without a welcome and a room view")
    return ep.welcome


def is_waiting(view: View, endpoint: str) -> bool:
    return any(e["endpoint"] == endpoint for e in view.get("waiting", ()))
