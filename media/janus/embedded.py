"""The Janus child of ``homeroom serve`` when no Janus is configured (the embedded default).

One command, one process tree: Homeroom starts Janus from config/janus/ with an API secret
made for this start, listening on loopback only, and starts it again if it dies. Janus's own
log goes to a file under the var directory (it may name addresses; Homeroom's logs never do).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import structlog

from media.janus.config import JanusConfig
from media.janus.process import JanusProcess

log = structlog.get_logger("homeroom.media")

#: How often the supervisor looks at its child, and how long a start may take.
CHECK_SECONDS = 1.0
START_SECONDS = 30.0


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedJanus:
    """A supervised local Janus; ``url`` and ``api_secret`` are known before it starts."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.config = JanusConfig(ws_ip="127.0.0.1", ws_port=_free_loopback_port(), debug_level=2)
        self._process = JanusProcess(self.config, directory, binary=binary)
        self._watch: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def api_secret(self) -> str:
        return self.config.api_secret

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    async def start(self) -> None:
        """Start Janus, wait for its API, then keep it running."""
        await self._start()
        self._watch = asyncio.create_task(self._supervise(), name="janus-supervisor")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.to_thread(self._process.stop)

    async def _start(self) -> None:
        self._process.start()
        await asyncio.to_thread(self._process.wait_listening, START_SECONDS)
        log.info("janus_started", pid=self._process.pid)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            if self._process.running:
                continue
            self.restarts += 1
            log.warning("janus_died", restarts=self.restarts)
            try:
                await self._start()
            except (RuntimeError, TimeoutError, OSError) as error:
                log.error("janus_restart_failed", error=type(error).__name__)
