"""A clean stop on SIGTERM: stop accepting, move the endpoints elsewhere, flush, exit.

The order matters. First nothing new gets in (listening sockets closed, ``/readyz`` and new
socket.io connections answered 503 on connections still open, so a proxy sends them to
another node). Then the endpoints are drained (:mod:`signaling.drain`): told to resume
elsewhere, and those that did not are disconnected in the ledger. Only then does the
application clean up, the store last, so every ledger event is committed before it closes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from aiohttp import web

from signaling.drain import drain
from web.errors import Handler, error_response
from web.keys import SIGNALING

log = structlog.get_logger("web")

#: Seconds aiohttp waits for requests still running once the endpoints are gone (its
#: default, 60, is what a stop with a live call used to take: sockets nobody closed).
REQUESTS_GRACE_SECONDS = 0.5
_POLL_SECONDS = 0.02
#: What a draining node refuses: new socket.io connections and the readiness probe.
_REFUSED = ("/socket.io/", "/readyz")


@dataclass(slots=True)
class Draining:
    """Whether this node is shutting down; set once, never cleared."""

    started: bool = False


DRAINING = web.AppKey("draining", Draining)


def install(app: web.Application) -> None:
    """Wire the draining state and its middleware into ``app``."""
    app[DRAINING] = Draining()
    app.middlewares.append(refuse_while_draining)


@web.middleware
async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.app[DRAINING].started and request.path.startswith(_REFUSED):
        return error_response(503, "draining", "this node is shutting down: try another")
    return await handler(request)


async def shut_down(runner: web.AppRunner, within: float) -> None:
    """Stop ``runner``'s application cleanly, giving its endpoints ``within`` seconds to move."""
    app = runner.app
    app[DRAINING].started = True
    for site in list(runner.sites):
        await site.stop()  # closes the listening socket; open connections stay
    await drain(app[SIGNALING], within)
    await _connections_closed(runner)
    await runner.cleanup()
    log.info("stopped")


async def _connections_closed(runner: web.AppRunner) -> None:
    """Wait (briefly) for the connections to end once their endpoints are gone. aiohttp's own
    shutdown would wait out its whole timeout for a websocket handler even after its client
    closed the connection, twice: this makes the usual stop take milliseconds."""
    server = runner.server
    if server is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REQUESTS_GRACE_SECONDS
    # Polled: aiohttp tells nobody when its last connection ends.
    while server.connections and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_POLL_SECONDS)
