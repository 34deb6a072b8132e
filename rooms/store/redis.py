"""The Redis store: state in a hash, ledger in a stream, changes by compare-and-set in Lua."""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.audit import AdminAuditEntry, next_admin_entry
from rooms.errors import SessionExists, SessionNotFound, StoreConflict, StoreUnavailable
from rooms.ids import NodeId, SessionId
from rooms.ledger import LedgerEvent, Scalar
from rooms.session import SessionSpec, SessionStatus
from rooms.state import SessionState
from rooms.store.base import (
    FORWARDER_PIN_SECONDS,
    Mutation,
    SessionStore,
    check_spare,
    utc,
)
from rooms.store.deadlines import Deadlines
from rooms.store.script import Script

#: Connections one process keeps to Redis at most.
MAX_CONNECTIONS = 64
#: Seconds a store call may take, waiting for a connection included, before StoreUnavailable.
TIMEOUT = 5.0
_CAS_LUA = files("rooms.store").joinpath("cas.lua").read_text(encoding="utf-8")
_FORGET_LUA = files("rooms.store").joinpath("forget_node.lua").read_text(encoding="utf-8")
_ADMIN_LUA = files("rooms.store").joinpath("admin_audit.lua").read_text(encoding="utf-8")
_PIN_LUA = files("rooms.store").joinpath("pin.lua").read_text(encoding="utf-8")
#: Entries read per XREVRANGE page when tailing the ledger.
_PAGE = 256
#: Stream entries as the client returns them with ``decode_responses=True``.
_Entries = list[tuple[str, dict[str, str]]]

#: What a Redis that is down, restarting or not answering raises (TimeoutError: ours).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


@dataclass(slots=True)
class _Seen:
    """The last document this process saw of a session, with the state its last transaction
    here returned (``out``) until the caller gives it back (then ``spare``: the document,
    already parsed; see :meth:`SessionStore.release`)."""

    doc: str
    out: SessionState | None = None
    spare: SessionState | None = None


class _Turns:
    """A session's transactions in this process, one at a time: the lock they take turns at
    and how many hold or wait for it (the entry goes when the last one is done)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RedisStore(SessionStore):
    """Sessions in Redis, shared by every node.

    Each transaction reads the document, applies the change locally and commits it with one
    EVALSHA that checks the version. Two shortcuts keep the common case at one round trip:
    the last document this process saw of each session is cached (a stale cache only costs a
    failed compare-and-set, whose reply carries the current document), and writers of one
    session in this process queue on a lock instead of racing each other. A third spares the
    parse: a state given back by its caller (``release``) stands in for the cached document
    it was committed as.

    Every write carries a token stored beside the document, so when the client re-sends a
    command whose reply was lost, the compare-and-set it then fails is recognised as its own
    commit rather than re-applied. ``client`` must decode responses.

    Each session's spec is also kept under its own key, never expired (the state is, once the
    session ends), and the admin audit log is one stream whose head is compare-and-set.

    Every command goes through ``_call``: at most ``MAX_CONNECTIONS`` at a time (the rest wait
    their turn), and each bounded by ``timeout`` seconds, the wait and the client's retries
    included, after which the caller gets StoreUnavailable. The bounds live here rather than
    in the client, whose socket and pool timeouts cost a task and a timer per command: give
    the client no socket timeout (``from_url`` does not).
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "hr",
        ended_ttl_seconds: int = 7 * 86400,
        max_attempts: int = 100,
        cache_size: int = 1024,
        timeout: float = TIMEOUT,
    ) -> None:
        if ended_ttl_seconds < 1:
            raise ValueError("ended_ttl_seconds must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if not client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the Redis client must be created with decode_responses=True")
        self._redis = client
        self._prefix = prefix
        self._ttl = str(ended_ttl_seconds)
        self._max_attempts = max_attempts
        # One connection per command in flight, so this bounds the connections too.
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._deadlines = Deadlines(timeout)
        # The hot path: every change is one call of this script (rooms.store.script).
        self._cas = Script(client.connection_pool, _CAS_LUA)
        self._forget = client.register_script(_FORGET_LUA)
        self._append_admin = client.register_script(_ADMIN_LUA)
        self._pin = client.register_script(_PIN_LUA)
        # Appenders in this process queue here; other processes' are caught by the script.
        self._audit_lock = asyncio.Lock()
        self._cache: OrderedDict[SessionId, _Seen] = OrderedDict()
        self._cache_size = cache_size
        self._turns: dict[SessionId, _Turns] = {}
        # Write tokens: unique per attempt, so a retried command recognises its own commit.
        self._writer = secrets.token_hex(6)
        self._attempts = itertools.count()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "hr",
        ended_ttl_seconds: int = 7 * 86400,
        timeout: float = TIMEOUT,
    ) -> RedisStore:
        """A store on a new connection pool. Connects lazily, on first use."""
        pool = ConnectionPool.from_url(
            url,
            # The store's semaphore keeps commands within this, so the pool never refuses
            # one; were it ever to, the caller would get StoreUnavailable, not a hang.
            max_connections=MAX_CONNECTIONS,
            decode_responses=True,
            socket_connect_timeout=2.0,
            # No timeout per socket operation (redis-py's default is 5 s, which costs a task
            # per send and a timer per read): the store times each call as a whole instead.
            socket_timeout=None,
            # A couple of quick retries ride out a Redis restart; beyond that, callers
            # get StoreUnavailable rather than a request that hangs.
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2),
        )
        client = Redis.from_pool(pool)  # the client owns the pool and closes it
        return cls(client, prefix=prefix, ended_ttl_seconds=ended_ttl_seconds, timeout=timeout)

    async def create(self, state: SessionState, events: list[LedgerEvent]) -> None:
        sid = state.spec.id
        doc = state.model_dump_json()
        token = self._token()
        score = repr(state.spec.starts_at.timestamp())
        spec = state.spec.model_dump_json()
        reply = await self._commit(sid, "", state, doc, token, events, score, spec)
        if reply[0] != 1 and reply[3] != token:
            raise SessionExists(f"session {sid} exists")
        self._remember(sid, doc)

    async def get(self, session: SessionId) -> SessionState:
        return SessionState.model_validate_json(await self._read(session))

    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        turns = self._turns.get(session)
        if turns is None:
            turns = self._turns[session] = _Turns()
        turns.users += 1
        try:
            async with turns.lock:
                return await self._transact(session, change)
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[session]

    def release(self, state: SessionState) -> None:
        seen = self._cache.get(state.spec.id)
        if seen is not None and seen.out is state:
            seen.out, seen.spare = None, state

    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        key = self._events_key(session)
        if after_seq <= 0:
            entries = cast(_Entries, await self._call(self._redis.xrange, key))
            return [LedgerEvent.model_validate_json(fields["e"]) for _, fields in entries]
        return await self._tail(key, after_seq)

    async def sessions_starting(self, since: datetime, until: datetime) -> list[SessionId]:
        found = cast(
            list[str],
            await self._call(
                self._redis.zrangebyscore,
                self._index_key,
                repr(since.timestamp()),
                "(" + repr(until.timestamp()),
            ),
        )
        return [SessionId(s) for s in found]

    async def spec(self, session: SessionId) -> SessionSpec:
        doc = cast(str | None, await self._call(self._redis.get, self._spec_key(session)))
        if doc is not None:
            return SessionSpec.model_validate_json(doc)
        # Sessions stored before specs were kept apart have theirs in the state only.
        return (await self.get(session)).spec

    async def append_admin_audit(
        self, actor: str, action: str, detail: dict[str, Scalar], at: datetime
    ) -> AdminAuditEntry:
        async with self._audit_lock:
            return await self._append_admin_entry(actor, action, detail, at)

    async def _append_admin_entry(
        self, actor: str, action: str, detail: dict[str, Scalar], at: datetime
    ) -> AdminAuditEntry:
        """Chain an entry to the head and append it with compare-and-set on the head."""
        head = cast(
            list[str | None], await self._call(self._redis.hmget, self._audit_head_key, ["s", "h"])
        )
        last_seq, last_hash = int(head[0] or 0), head[1] or ""
        for _ in range(self._max_attempts):
            entry = next_admin_entry(
                last_seq, last_hash, actor=actor, action=action, detail=detail, at=at
            )
            token = self._token()
            args = [last_hash, str(entry.seq), entry.hash, entry.model_dump_json(), token]
            reply: list[Any] = await self._call(
                self._append_admin, keys=[self._audit_key, self._audit_head_key], args=args
            )
            # A retried command whose first attempt landed finds its own token at the head.
            if reply[0] == 1 or reply[3] == token:
                return entry
            last_seq, last_hash = int(reply[1]), reply[2]
        raise StoreConflict("the admin audit log is too busy, try again")

    async def admin_audit(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AdminAuditEntry]:
        if limit is not None and limit <= 0:
            return []
        entries = cast(
            _Entries,
            await self._call(
                self._redis.xrange,
                self._audit_key,
                min=f"{max(after_seq, 0) + 1}-0",
                max="+",
                count=limit,
            ),
        )
        return [AdminAuditEntry.model_validate_json(fields["e"]) for _, fields in entries]

    async def node_heartbeat(self, node: NodeId, at: datetime) -> None:
        await self._call(self._redis.zadd, self._nodes_key, {node: utc(at).timestamp()})

    async def track(self, node: NodeId, session: SessionId) -> None:
        await self._call(self._redis.sadd, self._node_key(node), session)

    async def untrack(self, node: NodeId, session: SessionId) -> None:
        await self._call(self._redis.srem, self._node_key(node), session)

    async def node_sessions(self, node: NodeId) -> list[SessionId]:
        found = cast(set[str], await self._call(self._redis.smembers, self._node_key(node)))
        return sorted(SessionId(s) for s in found)

    async def stale_nodes(self, older_than: datetime) -> list[tuple[NodeId, datetime]]:
        found = cast(
            list[tuple[str, float]],
            await self._call(
                self._redis.zrangebyscore,
                self._nodes_key,
                "-inf",
                "(" + repr(utc(older_than).timestamp()),
                withscores=True,
            ),
        )
        return [(NodeId(node), datetime.fromtimestamp(score, UTC)) for node, score in found]

    async def forget_node(self, node: NodeId, *, last_seen: datetime | None = None) -> bool:
        seen = "" if last_seen is None else repr(utc(last_seen).timestamp())
        reply = await self._call(
            self._forget, keys=[self._nodes_key, self._node_key(node)], args=[node, seen]
        )
        return bool(reply)

    async def hit(self, key: str, window: int, now: datetime, amount: int = 1) -> tuple[int, float]:
        moment = utc(now).timestamp()
        bucket = int(moment // window)
        name = f"{self._prefix}:rl:{key}:{window}:{bucket}"

        async def count() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(name, amount)
                pipe.expire(name, window + 1)
                replies: list[Any] = await pipe.execute()
                return replies

        replies = await self._call(count)
        return int(replies[0]), (bucket + 1) * window - moment

    async def revoke_token(self, jti: str, until: datetime, now: datetime) -> None:
        # Kept until the token would have expired anyway (a second past, for clock rounding).
        seconds = max(1, int((until - now).total_seconds()) + 2)
        await self._call(self._redis.set, f"{self._prefix}:revoked:{jti}", "1", ex=seconds)

    async def token_revoked(self, jti: str) -> bool:
        return bool(await self._call(self._redis.exists, f"{self._prefix}:revoked:{jti}"))

    async def forwarder_pin(self, session: SessionId) -> str | None:
        return cast(str | None, await self._call(self._redis.get, self._pin_key(session)))

    async def pin_forwarder(
        self, session: SessionId, instance: str | None, *, replacing: str | None
    ) -> str | None:
        args = [replacing or "", instance or "", str(FORWARDER_PIN_SECONDS)]
        held = await self._call(self._pin, keys=[self._pin_key(session)], args=args)
        return str(held) if held else None

    async def ping(self) -> None:
        await self._call(self._redis.ping)

    async def close(self) -> None:
        await self._cas.close()
        await self._redis.aclose()

    async def _transact(
        self, sid: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        seen = self._cache.get(sid)
        state: SessionState | None = None
        if seen is None:
            doc, fresh = await self._read(sid), True
        else:
            doc, fresh, state, seen.spare = seen.doc, False, seen.spare, None
            if state is not None:
                check_spare(state, doc)
        for attempt in range(self._max_attempts):
            if state is None:
                state = SessionState.model_validate_json(doc)
            expected = str(state.version)
            try:
                events = change(state)
            except Exception:
                if fresh:
                    raise
                # Only the current state may refuse a change, never a cached one.
                doc, fresh, state = await self._read(sid), True, None
                continue
            state.version += 1
            new_doc, token = state.model_dump_json(), self._token()
            reply = await self._commit(sid, expected, state, new_doc, token, events, "", "")
            if reply[0] == 1 or reply[3] == token:
                self._remember(sid, new_doc, out=state)
                return state, events
            if not reply[1]:
                self._cache.pop(sid, None)
                raise SessionNotFound(f"session {sid} not found")
            doc, fresh, state = reply[2], True, None
            self._remember(sid, doc)
            if attempt:
                # Another node keeps winning: spread the racers out a little.
                await asyncio.sleep(random.uniform(0, min(0.02, 0.0005 * 2**attempt)))
        raise StoreConflict(f"session {sid} is too busy, try again")

    async def _commit(
        self,
        sid: SessionId,
        expected: str,
        state: SessionState,
        doc: str,
        token: str,
        events: list[LedgerEvent],
        score: str,
        spec: str,
    ) -> list[Any]:
        ttl = self._ttl if state.status is SessionStatus.ENDED else "0"
        keys = [self._state_key(sid), self._events_key(sid), self._index_key, self._spec_key(sid)]
        # Track the session for every node with an endpoint in it, in the same write.
        keys.extend(self._node_key(n) for n in sorted({e.node for e in state.endpoints.values()}))
        args = [expected, str(state.version), doc, token, ttl, score, sid, spec]
        args.extend(e.model_dump_json() for e in events)
        reply: list[Any] = await self._call(self._cas, keys, args)
        return reply

    async def _read(self, sid: SessionId) -> str:
        doc = cast(str | None, await self._call(self._redis.hget, self._state_key(sid), "doc"))
        if doc is None:
            self._cache.pop(sid, None)
            raise SessionNotFound(f"session {sid} not found")
        self._remember(sid, doc)
        return doc

    async def _tail(self, key: str, after_seq: int) -> list[LedgerEvent]:
        """Events after ``after_seq``, read newest first so a tail costs only its own length."""
        newer: list[LedgerEvent] = []
        upper = "+"
        while True:
            page = cast(
                _Entries,
                await self._call(self._redis.xrevrange, key, max=upper, min="-", count=_PAGE),
            )
            for entry_id, fields in page:
                event = LedgerEvent.model_validate_json(fields["e"])
                if event.seq <= after_seq:
                    return newer[::-1]
                newer.append(event)
                upper = "(" + entry_id
            if len(page) < _PAGE:
                return newer[::-1]

    async def _call(self, command: Callable[..., Any], *params: Any, **options: Any) -> Any:
        """``await command(*params, **options)``, bounded: every Redis command goes through here.

        Beyond MAX_CONNECTIONS commands in flight, callers queue (an uncontended acquire does
        not suspend). A Redis that does not answer within the timeout (one timer bounds every
        call: rooms.store.deadlines), or cannot be reached after the client's retries, is
        StoreUnavailable. A command cancelled by the timeout mid-send or mid-read loses its
        connection (redis-py disconnects on any exception there), so no pooled connection is
        left holding half a reply.
        """
        call = self._deadlines.start()
        try:
            async with self._slots:
                return await command(*params, **options)
        except asyncio.CancelledError:
            if call.expired():
                raise StoreUnavailable("redis is unreachable") from TimeoutError()
            raise
        except _UNREACHABLE as exc:
            raise StoreUnavailable("redis is unreachable") from exc
        finally:
            call.done = True

    def _remember(self, sid: SessionId, doc: str, out: SessionState | None = None) -> None:
        """Cache ``doc`` as the session's document (``out``: the state a transaction returns
        with it). Reading the document already cached keeps its given-back state."""
        seen = self._cache.get(sid)
        if seen is None or out is not None or seen.doc != doc:
            self._cache[sid] = _Seen(doc, out)
        self._cache.move_to_end(sid)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _token(self) -> str:
        return f"{self._writer}.{next(self._attempts)}"

    def _state_key(self, sid: SessionId) -> str:
        if ":" in sid:  # would name another key of a session (rooms.ids.parse_session_id)
            raise SessionNotFound("no such session")
        return f"{self._prefix}:s:{sid}"

    def _pin_key(self, sid: SessionId) -> str:
        return self._state_key(sid) + ":fwd"

    def _events_key(self, sid: SessionId) -> str:
        return self._state_key(sid) + ":ev"

    def _spec_key(self, sid: SessionId) -> str:
        return self._state_key(sid) + ":spec"

    @property
    def _audit_key(self) -> str:
        return f"{self._prefix}:audit"

    @property
    def _audit_head_key(self) -> str:
        return f"{self._prefix}:audit:head"

    @property
    def _index_key(self) -> str:
        return f"{self._prefix}:sessions"

    @property
    def _nodes_key(self) -> str:
        return f"{self._prefix}:nodes"

    def _node_key(self, node: NodeId) -> str:
        return f"{self._prefix}:node:{node}:sessions"
