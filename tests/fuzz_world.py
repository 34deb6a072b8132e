"""The world the fuzz suites play in: one real `homeroom serve` on a real Redis, a couples session
with its clinician and an admitted patient connected, and the checks every input must pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from signaling.protocol import CLIENT_EVENTS
from tests.fuzzing import Portal, bad_log_lines, is_refusal, session_snapshot
from tests.served import COUPLES, ServedNode, token_of
from tests.signaling_harness import Client, until

#: Stand-ins drawn by the strategies, replaced at send time by what they name in the world as
#: it is then (endpoints and sessions change when an input ends the call).
HOST_EP, PATIENT_EP = "\x00host-endpoint", "\x00patient-endpoint"
PARTNER_TOKEN, PATIENT_TOKEN, HOST_TOKEN = (
    "\x00partner-token",
    "\x00patient-token",
    "\x00host-token",
)
OTHER_TOKEN = "\x00other-session-token"
ROSTER = ("c-17", "p-201", "p-202")

#: Accepted events after which the call is not what the next input expects any more.
DISRUPTIVE = frozenset({"remove", "deny", "end", "leave"})


class World:
    """One server and the people in one session on it; ``rebuild`` starts a fresh session."""

    def __init__(self, node: ServedNode, redis: Redis, prefix: str):
        self.node, self.redis, self.prefix = node, redis, prefix
        self.tokens: dict[str, str] = {}
        self.session = ""
        self.host: Client | None = None
        self.patient: Client | None = None
        self.log_mark = 0
        #: The session as the last refused input left it (only inputs change it).
        self._known: tuple[Any, ...] | None = None
        self.inputs = 0
        self.accepted = 0
        self.rebuilds = 0

    @classmethod
    async def open(cls, tmp: Path, redis_url: str, prefix: str, **env: str) -> World:
        node = await ServedNode.start(
            tmp, name="n-fuzz", REDIS_URL=redis_url, HOMEROOM_REDIS_PREFIX=prefix, **env
        )
        world = cls(node, Redis.from_url(redis_url, decode_responses=True), prefix)
        other = await node.create_session(COUPLES)
        world.tokens[OTHER_TOKEN] = token_of(other, "p-201")
        await world.rebuild()
        return world

    async def close(self) -> None:
        await self._hang_up()
        await self.redis.aclose()
        await self.node.stop()

    async def rebuild(self) -> None:
        """A new couples session: the clinician joins, the patient joins and is admitted."""
        await self._hang_up()
        created = await self.node.create_session(COUPLES)
        self.session = created["session"]
        tokens = {a: token_of(created, a) for a in ROSTER}
        self.tokens |= {HOST_TOKEN: tokens["c-17"], PATIENT_TOKEN: tokens["p-201"]}
        self.tokens[PARTNER_TOKEN] = tokens["p-202"]
        self.host = await Client(self.node.url).connect(token=tokens["c-17"])
        self.patient = await Client(self.node.url).connect(token=tokens["p-201"])
        await until(lambda: bool(self.host and self.host.room["waiting"]), within=20)
        assert (await self.host.call("admit", {"attendee": "p-201"}))["ok"] is True
        await until(lambda: bool(self.patient and self.patient.room["admitted"]), within=20)
        self.rebuilds += 1
        self._known = None

    async def _hang_up(self) -> None:
        for client in (self.host, self.patient):
            if client is not None and client.sio.connected:
                await client.close()

    def resolve(self, value: Any) -> Any:
        """``value`` with every stand-in replaced by what it names now."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if value == HOST_EP and self.host is not None:
            return self.host.endpoint
        if value == PATIENT_EP and self.patient is not None:
            return self.patient.endpoint
        return self.tokens.get(value, value) if isinstance(value, str) else value

    def summary(self) -> str:
        return f"{self.inputs} inputs ({self.accepted} accepted), {self.rebuilds} sessions"

    def connected(self) -> bool:
        return all(c is not None and c.sio.connected for c in (self.host, self.patient))

    async def snapshot(self) -> tuple[Any, ...]:
        return await session_snapshot(self.redis, self.prefix, self.session)

    def check_logs(self) -> None:
        """No line since the last check is an error or not a log line at all."""
        lines = self.node.lines[self.log_mark :]
        self.log_mark += len(lines)
        bad = bad_log_lines(lines)
        assert not bad, "error-level or unparsable log lines:\n" + "".join(bad[:5])

    async def events(self, inputs: list[tuple[str, str, Any]]) -> None:
        for sender, event, payload in inputs:
            await self.event(sender, event, payload)

    async def event(self, sender: str, event: str, payload: Any) -> None:
        """Send one event and check what it must and must not have done."""
        if not self.connected():
            await self.rebuild()
        client = self.host if sender == "host" else self.patient
        assert client is not None
        payload = self.resolve(payload)
        before = self._known or await self.snapshot()
        # No answer within 10 s fails the input. A None payload is sent as no payload at all,
        # which the protocol reads as {}.
        reply = await client.sio.call(event, payload, timeout=10)
        self.inputs += 1
        if isinstance(reply, dict) and reply.get("ok") is True and event in CLIENT_EVENTS:
            # The server accepted it, so the protocol's model accepts it too.
            CLIENT_EVENTS[event].model_validate_json(json.dumps({} if payload is None else payload))
            self.accepted += 1
            self._known = None
            if event in DISRUPTIVE:
                await self.rebuild()
        else:
            assert is_refusal(reply), reply
            self._known = await self.snapshot()
            assert self._known == before, f"refused {event} changed the session"
        self.check_logs()

    async def real_join(self) -> None:
        """The server still serves a whole join: session, clinician, patient, admission."""
        await self.rebuild()
        assert self.patient is not None
        events = await self.redis.xrange(f"{self.prefix}:s:{self.session}:ev")
        kinds = [json.loads(fields["e"])["kind"] for _, fields in events]
        assert "admitted" in kinds, kinds
        self.check_logs()


def world(portal: Portal, tmp: Path, redis_url: str, prefix: str, **env: str) -> Iterator[World]:
    """A fixture body: one world for a test (its server's environment plus ``env``);
    afterwards its server must have logged no error."""
    opened = portal.run(World.open(tmp, redis_url, prefix, **env))
    try:
        yield opened
    finally:
        portal.run(opened.close())
    opened.check_logs()
