"""The store's presence contract: node heartbeats and which sessions each node serves.

Run against the embedded store and a real Redis alike, like test_store_contract.py.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from redis.asyncio import Redis

from rooms import membership
from rooms.errors import InvalidTransition
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.ledger import Ctx, LedgerEvent
from rooms.state import SessionState
from rooms.store import SessionStore
from tests.test_store_contract import T0, created

A, B, C = NodeId("n-a"), NodeId("n-b"), NodeId("n-c")
S1, S2, S3 = SessionId("s-1"), SessionId("s-2"), SessionId("s-3")
SECOND = timedelta(seconds=1)


async def test_stale_nodes_are_those_last_seen_before_the_limit_oldest_first(
    store: SessionStore,
) -> None:
    await store.node_heartbeat(B, T0 + 2 * SECOND)
    await store.node_heartbeat(A, T0 + 3 * SECOND)
    await store.node_heartbeat(C, T0)
    assert await store.stale_nodes(T0) == []  # strictly before
    assert await store.stale_nodes(T0 + 3 * SECOND) == [(C, T0), (B, T0 + 2 * SECOND)]
    assert await store.stale_nodes(T0 + 4 * SECOND) == [
        (C, T0),
        (B, T0 + 2 * SECOND),
        (A, T0 + 3 * SECOND),
    ]


async def test_the_latest_heartbeat_counts(store: SessionStore) -> None:
    await store.node_heartbeat(A, T0)
    await store.node_heartbeat(A, T0 + 10 * SECOND)
    assert await store.stale_nodes(T0 + 5 * SECOND) == []
    assert await store.stale_nodes(T0 + 11 * SECOND) == [(A, T0 + 10 * SECOND)]


async def test_heartbeat_times_come_back_exact_and_in_utc(store: SessionStore) -> None:
    odd = T0 + timedelta(microseconds=123_457)
    await store.node_heartbeat(A, odd.astimezone(timezone(timedelta(hours=-5))))
    [(node, seen)] = await store.stale_nodes(odd + timedelta(microseconds=1))
    assert (node, seen) == (A, odd)
    assert seen.utcoffset() == timedelta(0)
    assert await store.stale_nodes(odd) == []


async def test_naive_times_are_refused(store: SessionStore) -> None:
    with pytest.raises(ValueError):
        await store.node_heartbeat(A, T0.replace(tzinfo=None))
    assert await store.stale_nodes(T0 + SECOND) == []


async def test_track_untrack_and_node_sessions(store: SessionStore) -> None:
    assert await store.node_sessions(A) == []
    for session in (S2, S1, S2):
        await store.track(A, session)
    await store.track(B, S3)
    assert await store.node_sessions(A) == [S1, S2]
    assert await store.node_sessions(B) == [S3]
    await store.untrack(A, S2)
    await store.untrack(A, S2)  # idempotent
    await store.untrack(C, S1)  # never tracked
    assert await store.node_sessions(A) == [S1]
    await store.untrack(A, S1)
    assert await store.node_sessions(A) == []


async def test_a_committed_endpoint_tracks_its_session_for_its_node(store: SessionStore) -> None:
    sid = (await created(store)).spec.id
    at = Ctx(now=T0, node=A)
    await store.transact(sid, lambda s: join(s, at, "e-1", "c-1"))
    assert await store.node_sessions(A) == [sid]
    assert await store.node_sessions(B) == []
    # Untracked by hand, tracked again by the next commit while the endpoint is still there.
    await store.untrack(A, sid)
    await store.transact(sid, lambda s: join(s, Ctx(now=T0, node=B), "e-2", "p-1"))
    assert await store.node_sessions(A) == [sid]
    assert await store.node_sessions(B) == [sid]
    # Once it is gone, commits no longer track the session for its node.
    await store.transact(sid, lambda s: membership.leave(s, at, EndpointId("e-1")))
    await store.untrack(A, sid)
    await store.transact(sid, lambda s: membership.leave(s, at, EndpointId("e-2")))
    assert await store.node_sessions(A) == []


async def test_a_refused_change_tracks_nothing(store: SessionStore) -> None:
    sid = (await created(store)).spec.id

    def join_then_refuse(state: SessionState) -> list[LedgerEvent]:
        join(state, Ctx(now=T0, node=A), "e-1", "c-1")
        raise InvalidTransition("changed my mind")

    with pytest.raises(InvalidTransition):
        await store.transact(sid, join_then_refuse)
    assert await store.node_sessions(A) == []


async def test_forget_node_drops_heartbeat_and_sessions(store: SessionStore) -> None:
    await store.node_heartbeat(A, T0)
    await store.node_heartbeat(B, T0)
    await store.track(A, S1)
    await store.track(B, S1)
    assert await store.forget_node(A) is True
    assert await store.stale_nodes(T0 + SECOND) == [(B, T0)]
    assert await store.node_sessions(A) == []
    assert await store.node_sessions(B) == [S1]
    assert await store.forget_node(A) is True  # nothing left: still fine


async def test_forget_node_keeps_a_node_that_came_back_or_serves_a_session(
    store: SessionStore,
) -> None:
    await store.node_heartbeat(A, T0)
    [(_, seen)] = await store.stale_nodes(T0 + SECOND)
    await store.track(A, S1)
    assert await store.forget_node(A, last_seen=seen) is False  # still in a session
    assert await store.node_sessions(A) == [S1]
    await store.untrack(A, S1)
    await store.node_heartbeat(A, T0 + SECOND)
    assert await store.forget_node(A, last_seen=seen) is False  # beat since: it is back
    assert await store.stale_nodes(T0 + 2 * SECOND) == [(A, T0 + SECOND)]
    assert await store.forget_node(A, last_seen=T0 + SECOND) is True
    assert await store.stale_nodes(T0 + 2 * SECOND) == []


async def test_presence_is_shared_by_every_client(
    store_pair: tuple[SessionStore, SessionStore],
) -> None:
    first, second = store_pair
    await first.node_heartbeat(A, T0)
    await first.track(A, S1)
    assert await second.stale_nodes(T0 + SECOND) == [(A, T0)]
    assert await second.node_sessions(A) == [S1]
    await second.untrack(A, S1)
    assert await second.forget_node(A, last_seen=T0) is True
    assert await first.stale_nodes(T0 + SECOND) == []


async def test_redis_presence_keys(
    redis_store: SessionStore, redis_url: str, redis_prefix: str
) -> None:
    await redis_store.node_heartbeat(A, T0)
    await redis_store.track(A, S1)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.zscore(f"{redis_prefix}:nodes", A) == T0.timestamp()
        assert await client.smembers(f"{redis_prefix}:node:{A}:sessions") == {S1}
    finally:
        await client.aclose()


def join(state: SessionState, ctx: Ctx, endpoint: str, attendee: str) -> list[LedgerEvent]:
    return membership.join(state, ctx, EndpointId(endpoint), AttendeeId(attendee))
