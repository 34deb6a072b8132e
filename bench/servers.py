"""The processes a benchmark measures: a private redis-server, `homeroom serve`, the floor.

Servers run pinned to core 0 and Redis beside the load generator on core 1, when the machine
has two cores or more (``SERVER_CORE``/``LOAD_CORE``); CPU time and RSS are read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis

from rooms.tokens import StaffRole, issue_staff_token

SECRET = "bench-secret-" + "b" * 40
REPO = Path(__file__).resolve().parent.parent
HOMEROOM = Path(sys.executable).with_name("homeroom")
#: Pinning needs two cores; on one core everything shares it (the figures say so).
PINNED = (os.cpu_count() or 1) >= 2
SERVER_CORE, LOAD_CORE = 0, 1
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pin_self_to_load_core() -> None:
    if PINNED:
        os.sched_setaffinity(0, {LOAD_CORE})


def _pinned(core: int, argv: list[str]) -> list[str]:
    if PINNED and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *argv]
    return argv


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proc:
    """A server subprocess whose output goes to a log file."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.name, self.log = name, log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env or None, cwd=cwd
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


class RedisProc(Proc):
    """A private redis-server on a free port: AOF with fsync every second, as deployed."""

    def __init__(self, directory: Path, core: int = LOAD_CORE) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (make check-redis installs it)")
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        argv = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(directory),
        ]  # fmt: skip
        super().__init__("redis-server", _pinned(core, argv), directory / "redis.log", {})
        self._wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                self.check()
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING")
                time.sleep(0.02)
        finally:
            client.close()


@dataclass
class Served:
    """A running HTTP server (Homeroom or the floor) pinned to the server core."""

    proc: Proc
    url: str

    async def ready(self, path: str) -> None:
        async with asyncio.timeout(30), aiohttp.ClientSession() as http:
            while True:
                self.proc.check()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)


def homeroom_env(out: Path, port: int, redis_url: str, prefix: str) -> dict[str, str]:
    """The environment `homeroom serve` runs with in a benchmark."""
    return {
        **os.environ,
        "HOMEROOM_HOST": "127.0.0.1",
        "HOMEROOM_PORT": str(port),
        "HOMEROOM_SECRET": SECRET,
        "HOMEROOM_VAR_DIR": str(out / "var"),
        "HOMEROOM_NODE_ID": "bench-1",
        "HOMEROOM_LOG_FORMAT": "json",
        "HOMEROOM_ENV": "production",
        # Production refuses a plain-http public address; the bench reaches the port directly.
        "HOMEROOM_PUBLIC_URL": "https://bench.homeroom.test",
        "REDIS_URL": redis_url,
        "HOMEROOM_REDIS_PREFIX": prefix,
        # The load generator is one address reusing a pool of link tokens thousands of times
        # a minute: what the limits exist to refuse. Measured without them (each connect would
        # add two counter updates in Redis).
        "HOMEROOM_RATE_LIMIT_PER_ADDRESS": "0",
        "HOMEROOM_RATE_LIMIT_PER_TOKEN": "0",
    }


def floor_argv(port: int, redis_url: str, prefix: str, fanout: str, pattern: str) -> list[str]:
    """The floor server's command line (run from the repository, unpinned)."""
    return [sys.executable, "-m", "bench.floor_server", "--port", str(port),
            "--redis-url", redis_url, "--prefix", prefix, "--fanout", fanout,
            "--pattern", pattern]  # fmt: skip


async def start_homeroom(
    out: Path, redis_url: str, prefix: str, extra_env: dict[str, str] | None = None
) -> Served:
    port = free_port()
    env = {**homeroom_env(out, port, redis_url, prefix), **(extra_env or {})}
    # Its own working directory: a developer's .env must not change what is measured.
    argv = _pinned(SERVER_CORE, [str(HOMEROOM), "serve"])
    proc = Proc("homeroom serve", argv, out / f"{prefix}.log", env, cwd=out)
    served = Served(proc, f"http://127.0.0.1:{port}")
    await served.ready("/readyz")
    return served


async def start_floor(
    out: Path, redis_url: str, prefix: str, fanout: str = "local", pattern: str = "join"
) -> Served:
    port = free_port()
    argv = floor_argv(port, redis_url, prefix, fanout, pattern)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = Proc("floor server", _pinned(SERVER_CORE, argv), out / f"{prefix}.log", env, cwd=REPO)
    served = Served(proc, f"http://127.0.0.1:{port}")
    await served.ready("/healthz")
    return served


def admin_headers() -> dict[str, str]:
    token = issue_staff_token(
        SECRET, StaffRole.ADMIN, "bench-admin", datetime.now(UTC), timedelta(hours=2)
    )
    return {"Authorization": f"Bearer {token}"}


async def create_session(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> dict[str, str]:
    """POST /api/sessions; returns attendee -> link token."""
    async with http.post(url + "/api/sessions", json=body, headers=admin_headers()) as response:
        created: dict[str, Any] = await response.json()
        if response.status != 201:
            raise RuntimeError(f"session create failed: {response.status} {created}")
    return {link["attendee"]: link["url"].split("#t=", 1)[1] for link in created["links"]}
