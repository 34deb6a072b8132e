"""Real `homeroom serve` processes for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rooms.tokens import StaffRole, issue_staff_token
from tests.redis_server import free_port
from tests.signaling_harness import SECRET

HOMEROOM = Path(sys.executable).with_name("homeroom")


@dataclass
class ServedNode:
    """One `homeroom serve` process; its output is drained into ``lines``."""

    url: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, tmp: Path, *, name: str, **env: str) -> ServedNode:
        port = free_port()
        environ = {
            **os.environ,
            "HOMEROOM_PORT": str(port),
            "HOMEROOM_SECRET": SECRET,
            "HOMEROOM_VAR_DIR": str(tmp / name),
            "HOMEROOM_NODE_ID": name,
            "HOMEROOM_LOG_FORMAT": "json",
            # One machine plays every client, from one address and as fast as it can: the
            # limits have tests of their own (test_ratelimit, test_budget); a test may set them.
            "HOMEROOM_RATE_LIMIT_PER_ADDRESS": "0",
            "HOMEROOM_RATE_LIMIT_PER_TOKEN": "0",
            "HOMEROOM_EVENT_RATE": "0",
            **env,
        }
        if "REDIS_URL" not in env:
            environ.pop("REDIS_URL", None)
        proc = await asyncio.create_subprocess_exec(
            str(HOMEROOM), "serve", env=environ, cwd=tmp,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        node = cls(f"http://127.0.0.1:{port}", proc)
        node._drain = asyncio.create_task(node._read())
        await node._ready()
        return node

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.lines.append(raw.decode())

    async def _ready(self) -> None:
        # Generous: on a loaded machine a cold start (imports, Redis, Janus) took over 20 s.
        async with asyncio.timeout(120), aiohttp.ClientSession() as http:
            while True:
                assert self.proc.returncode is None, "serve exited:\n" + "".join(self.lines)
                try:
                    async with http.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)

    async def stop(self, *, kill: bool = False) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            await self.proc.wait()
        if self._drain is not None:
            await self._drain

    async def create_session(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/sessions with an admin token; returns the 201 body."""
        token = issue_staff_token(
            SECRET, StaffRole.ADMIN, "admin-1", datetime.now(UTC), timedelta(minutes=5)
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/api/sessions", json=body, headers=headers) as response,
        ):
            created: dict[str, Any] = await response.json()
            assert response.status == 201, created
            return created


def token_of(created: dict[str, Any], attendee: str) -> str:
    url = next(link["url"] for link in created["links"] if link["attendee"] == attendee)
    return str(url.split("#t=", 1)[1])


COUPLES: dict[str, Any] = {
    "kind": "couples",
    "roster": [
        {"attendee": "c-17", "role": "clinician"},
        {"attendee": "p-201", "role": "patient"},
        {"attendee": "p-202", "role": "patient"},
    ],
}


@pytest.fixture(params=["memory", "redis"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[ServedNode]:
    """`homeroom serve` on the embedded store, then on a real Redis (ids memory/redis)."""
    env = {}
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        env = {"REDIS_URL": url, "HOMEROOM_REDIS_PREFIX": redis_prefix}
    node = await ServedNode.start(tmp_path, name="n-1", **env)
    yield node
    await node.stop()
