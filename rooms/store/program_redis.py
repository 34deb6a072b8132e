"""The program store in Redis: shared by every node, each move one Lua compare-and-set."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from importlib.resources import files
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.checkins import CheckinId, CheckinRecord, CheckinRequest, CheckinStatus
from rooms.enrollment import Enrollment
from rooms.errors import CheckinNotFound, StoreUnavailable
from rooms.ids import AttendeeId
from rooms.store.program import ProgramStore

_ADD_LUA = files("rooms.store").joinpath("checkin_add.lua").read_text(encoding="utf-8")
_MOVE_LUA = files("rooms.store").joinpath("checkin_move.lua").read_text(encoding="utf-8")
#: Seconds one call may take before the caller gets StoreUnavailable (as the session store).
TIMEOUT = 5.0
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
_T = TypeVar("_T")


class RedisProgramStore(ProgramStore):
    """Keys under ``{prefix}:enr:`` (enrollments) and ``{prefix}:ci:`` (check-ins). Requests
    and the log are records: they never expire."""

    def __init__(self, client: Redis, *, prefix: str = "hr", timeout: float = TIMEOUT) -> None:
        self._redis = client
        self._p = prefix
        self._timeout = timeout
        self._add = client.register_script(_ADD_LUA)
        self._move = client.register_script(_MOVE_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "hr") -> RedisProgramStore:
        return cls(
            Redis.from_url(url, decode_responses=True, socket_connect_timeout=2.0), prefix=prefix
        )

    async def enrollment(self, patient: AttendeeId) -> Enrollment | None:
        doc = await self._call(self._redis.get(f"{self._p}:enr:{patient}"))
        return None if doc is None else Enrollment.model_validate_json(doc)

    async def put_enrollment(self, enrollment: Enrollment) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(f"{self._p}:enr:{enrollment.patient}", enrollment.model_dump_json())
        pipe.sadd(f"{self._p}:enr", enrollment.patient)
        await self._call(pipe.execute())

    async def enrollments(self) -> list[Enrollment]:
        patients = sorted(cast(set[str], await self._call(self._redis.smembers(f"{self._p}:enr"))))
        if not patients:
            return []
        docs = await self._call(self._redis.mget([f"{self._p}:enr:{p}" for p in patients]))
        return [Enrollment.model_validate_json(d) for d in docs if d is not None]

    async def add_request(self, req: CheckinRequest, record: CheckinRecord) -> CheckinRequest:
        keys = [self._req(req.id), self._waiting, self._all, self._log]
        keys += [self._open(p) for p in req.people()]
        score = str(int(req.requested_at.timestamp() * 1000))
        args = [req.id, req.model_dump_json(), score, record.model_dump_json(exclude={"seq"})]
        reply: list[Any] = await self._call(self._add(keys=keys, args=args))
        if reply[0] == 1 or reply[1] == req.id:  # queued (maybe by a retried first send)
            return req
        return await self.request(CheckinId(reply[1]))

    async def request(self, checkin: CheckinId) -> CheckinRequest:
        doc = await self._doc(checkin)
        if doc is None:
            raise CheckinNotFound("no such check-in request")
        return CheckinRequest.model_validate_json(doc)

    async def waiting(self) -> list[CheckinRequest]:
        ids = cast(list[str], await self._call(self._redis.zrange(self._waiting, 0, -1)))
        return await self._many(ids, lambda r: r.status is CheckinStatus.WAITING)

    async def open_request(self, attendee: AttendeeId) -> CheckinRequest | None:
        found = cast(str | None, await self._call(self._redis.get(self._open(attendee))))
        return None if found is None else await self.request(CheckinId(found))

    async def requests_between(self, since: datetime, until: datetime) -> list[CheckinRequest]:
        lo, hi = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
        ids = cast(list[str], await self._call(self._redis.zrangebyscore(self._all, lo, f"({hi}")))
        return await self._many(ids, lambda r: since <= r.requested_at < until)

    async def records(self, after_seq: int = 0) -> list[CheckinRecord]:
        docs = await self._call(self._redis.lrange(self._log, max(after_seq, 0), -1))
        return [CheckinRecord.model_validate_json(d) for d in docs]

    async def _doc(self, checkin: CheckinId) -> str | None:
        return cast(str | None, await self._call(self._redis.get(self._req(checkin))))

    async def _swap(self, before: str, after: CheckinRequest, record: CheckinRecord) -> str | None:
        keys = [self._req(after.id), self._waiting, self._log]
        keys += [self._open(p) for p in after.people()]
        leaves = "1" if after.status is not CheckinStatus.WAITING else "0"
        args = [
            before,
            after.model_dump_json(),
            after.id,
            record.model_dump_json(exclude={"seq"}),
            leaves,
        ]
        reply: list[Any] = await self._call(self._move(keys=keys, args=args))
        return None if reply[0] == 1 else (reply[1] or None)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _many(self, ids: list[str], keep: Any) -> list[CheckinRequest]:
        if not ids:
            return []
        docs = await self._call(self._redis.mget([self._req(CheckinId(i)) for i in ids]))
        found = [CheckinRequest.model_validate_json(d) for d in docs if d is not None]
        return [r for r in found if keep(r)]

    async def _call(self, pending: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._timeout):
                return await pending
        except _UNREACHABLE as exc:
            raise StoreUnavailable("redis is unreachable") from exc

    def _req(self, checkin: CheckinId) -> str:
        return f"{self._p}:ci:r:{checkin}"

    def _open(self, attendee: AttendeeId) -> str:
        return f"{self._p}:ci:open:{attendee}"

    @property
    def _waiting(self) -> str:
        return f"{self._p}:ci:waiting"

    @property
    def _all(self) -> str:
        return f"{self._p}:ci:all"

    @property
    def _log(self) -> str:
        return f"{self._p}:ci:log"
