"""The floor: the least any signaling server must do for a join, on the same stack as Homeroom.

Bare python-socketio on aiohttp. A connect with ``auth = {"session", "member"}`` writes the
membership with one Redis round trip (HSET), enters the session's room and broadcasts one
``joined`` event to it; a ``leave`` event removes the membership (HDEL) and is acknowledged.
No token, no validation model, no state document, no ledger, no logging: whatever Homeroom
spends beyond this is its own cost.

With ``--pattern homeroom`` it instead exchanges exactly the messages of Homeroom's join
lifecycle, with one Redis write for each of its three changes and nothing else (no token, no
validation, no state document, no ledger, no logging): on connect a write, ``welcome`` and a
view to the newcomer and a view to the others; ``admit`` a write, its ack and a view to both;
``leave`` a write, its ack and a view to the others. Views are sent to each connection directly
through its Engine.IO queue, as Homeroom does. What Homeroom spends beyond this is the cost of
its own logic, not of the messages its protocol exchanges.

Run: ``python -m bench.floor_server --port P --redis-url URL [--prefix P] [--fanout redis]
[--pattern join|homeroom]``. Engine.IO ping settings match Homeroom's, so idle connections
cost the same heartbeat.
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

import socketio
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis


def build_app(
    redis_url: str, prefix: str, fanout: str = "local", pattern: str = "join"
) -> web.Application:
    """The floor server's aiohttp application. ``fanout="redis"`` uses AsyncRedisManager, as
    Homeroom does, to separate the cost of multi-node fan-out from Homeroom's own."""
    channel = f"{prefix}:fanout"
    manager = socketio.AsyncRedisManager(redis_url, channel=channel) if fanout == "redis" else None
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        transports=["websocket"],
        ping_interval=10,
        ping_timeout=10,
        logger=False,
        engineio_logger=False,
    )
    # Waits for a free connection instead of failing at redis-py's default cap of 100.
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=64, decode_responses=True)
    redis = Redis(connection_pool=pool)
    members: dict[str, tuple[str, str]] = {}

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        session, member = _who(auth)
        await redis.hset(f"{prefix}:m:{session}", member, sid)
        members[sid] = (session, member)
        await sio.enter_room(sid, session)
        await sio.emit("joined", {"member": member}, room=session, skip_sid=sid)

    async def leave(sid: str, data: Any = None) -> dict[str, Any]:
        found = members.pop(sid, None)
        if found is None:
            return {"error": "not_joined"}
        await redis.hdel(f"{prefix}:m:{found[0]}", found[1])
        return {"ok": True}

    async def disconnect(sid: str, *_: Any) -> None:
        found = members.pop(sid, None)
        if found is not None:
            await redis.hdel(f"{prefix}:m:{found[0]}", found[1])

    if pattern == "homeroom":
        _homeroom_pattern(sio, redis, prefix)
    else:
        sio.on("connect", connect)
        sio.on("leave", leave)
        sio.on("disconnect", disconnect)
    app = web.Application()
    sio.attach(app)

    async def healthz(request: web.Request) -> web.Response:
        await redis.ping()
        return web.json_response({"status": "ok"})

    async def close_redis(app: web.Application) -> None:
        await redis.aclose()

    app.router.add_get("/healthz", healthz)
    app.on_cleanup.append(close_redis)
    return app


def _homeroom_pattern(sio: socketio.AsyncServer, redis: Redis, prefix: str) -> None:
    """Homeroom's message pattern over the least state: per session, who is in and admitted."""
    sessions: dict[str, dict[str, tuple[str, bool]]] = {}  # session -> member -> (sid, admitted)
    where: dict[str, tuple[str, str]] = {}  # sid -> (session, member)
    versions = itertools.count(1)

    def view(session: str, member: str) -> dict[str, Any]:
        members = sessions.get(session, {})
        entries = [{"endpoint": m, "admitted": a} for m, (_, a) in members.items()]
        return {
            "version": next(versions),
            "you": member,
            "admitted": members.get(member, ("", False))[1],
            "endpoints": [e for e in entries if e["admitted"]],
            "waiting": [e for e in entries if not e["admitted"]],
        }

    async def send(sid: str, event: str, data: Any) -> None:
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await sio.eio.send(eio_sid, "2" + json.dumps([event, data], separators=(",", ":")))

    async def views(session: str, skip: str | None = None) -> None:
        for member, (sid, _) in list(sessions.get(session, {}).items()):
            if sid != skip:
                await send(sid, "room", view(session, member))

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        session, member = _who(auth)
        admitted = auth.get("admitted") is True
        await redis.hset(f"{prefix}:m:{session}", member, "admitted" if admitted else "waiting")
        sessions.setdefault(session, {})[member] = (sid, admitted)
        where[sid] = (session, member)
        await send(sid, "welcome", {"endpoint": member})
        await send(sid, "room", view(session, member))
        await views(session, skip=sid)

    async def admit(sid: str, data: Any = None) -> dict[str, Any]:
        session = where.get(sid, ("", ""))[0]
        member = data.get("attendee") if isinstance(data, dict) else None
        found = sessions.get(session, {}).get(member) if isinstance(member, str) else None
        if found is None or not isinstance(member, str):
            return {"error": "not_found"}
        await redis.hset(f"{prefix}:m:{session}", member, "admitted")
        sessions[session][member] = (found[0], True)
        await views(session)
        return {"ok": True}

    async def leave(sid: str, data: Any = None) -> dict[str, Any]:
        found = where.pop(sid, None)
        if found is None:
            return {"error": "not_joined"}
        session, member = found
        await redis.hdel(f"{prefix}:m:{session}", member)
        sessions[session].pop(member, None)
        await views(session, skip=sid)
        return {"ok": True}

    async def disconnect(sid: str, *_: Any) -> None:
        found = where.pop(sid, None)
        if found is not None:
            await redis.hdel(f"{prefix}:m:{found[0]}", found[1])
            sessions[found[0]].pop(found[1], None)

    sio.on("connect", connect)
    sio.on("admit", admit)
    sio.on("leave", leave)
    sio.on("disconnect", disconnect)


def _who(auth: Any) -> tuple[str, str]:
    """The session and member a connect ``auth`` names; refused when it does not."""
    session = auth.get("session") if isinstance(auth, dict) else None
    member = auth.get("member") if isinstance(auth, dict) else None
    if not isinstance(session, str) or not isinstance(member, str):
        raise socketio.exceptions.ConnectionRefusedError("invalid_message")
    return session, member


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", default="floor")
    parser.add_argument("--fanout", choices=["local", "redis"], default="local")
    parser.add_argument("--pattern", choices=["join", "homeroom"], default="join")
    args = parser.parse_args()
    app = build_app(args.redis_url, args.prefix, args.fanout, args.pattern)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
