"""The floor: the least any signaling server must do for a join, on the same stack as Homeroom.

Bare python-socketio on aiohttp. A connect with ``auth = {"session", "member"}`` writes the
membership with one Redis round trip (HSET), enters the session's room and broadcasts one
``joined`` event to it; a ``leave`` event removes the membership (HDEL) and is acknowledged.
No token, no validation model, no state document, no ledger, no logging: whatever Homeroom
spends beyond this is its own cost.

Run: ``python -m bench.floor_server --port P --redis-url URL [--prefix P] [--fanout redis]``.
Engine.IO ping settings match Homeroom's, so idle connections cost the same heartbeat.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis


def build_app(redis_url: str, prefix: str, fanout: str = "local") -> web.Application:
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
        if not isinstance(auth, dict):
            raise socketio.exceptions.ConnectionRefusedError("invalid_message")
        session, member = auth.get("session"), auth.get("member")
        if not isinstance(session, str) or not isinstance(member, str):
            raise socketio.exceptions.ConnectionRefusedError("invalid_message")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", default="floor")
    parser.add_argument("--fanout", choices=["local", "redis"], default="local")
    args = parser.parse_args()
    app = build_app(args.redis_url, args.prefix, args.fanout)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
