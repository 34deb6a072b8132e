"""The compose file's services, run natively from the very files it mounts (no Docker here).

Redis from config/redis/redis.conf, coturn from config/coturn/turnserver.conf and Janus from
config/janus/ through deploy/janus-start.sh (the janus image's entrypoint), each path read
from `docker-compose config`'s resolved mounts; then `homeroom serve` in production on them,
`homeroom probe --relay-only` through them, and a group call of three relay-only aiortc
participants through coturn and that Janus. coturn and Janus run in this test's network
namespace (Janus gathers no loopback candidates); Redis and Homeroom on loopback.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from media.janus.client import JanusConnection
from media.janus.errors import JanusError
from media.participant import Participant
from media.synthetic import MediaSpec
from tests.compose import ROOT, bind_mounts, resolved
from tests.netns import Namespace, network_namespace
from tests.redis_server import free_port
from tests.served import HOMEROOM, ServedNode, token_of
from tests.signaling_harness import SECRET
from tests.turn_server import TurnServer

JANUS_START = ROOT / "deploy/janus-start.sh"
JANUS_PORT = 8188
SMALL = MediaSpec(width=160, height=120, fps=10)


@dataclass
class Services:
    namespace: Namespace
    redis_url: str
    redis_dir: Path
    turn: TurnServer
    janus_url: str
    janus_secret: str


def start_redis(conf: Path, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """redis-server from the compose file's config; only what a test must own is overridden."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing (apt-get install redis-server)", pytrace=False)
    port = free_port()
    argv = [binary, str(conf), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    with (directory / "console.log").open("ab") as console:
        process = subprocess.Popen(argv, stdout=console, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, socket_timeout=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (directory / "console.log").read_text()
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError("redis-server did not answer within 60 s")


def start_janus(
    namespace: Namespace, templates: Path, directory: Path, secret: str
) -> subprocess.Popen[bytes]:
    """Janus through the janus image's entrypoint script, in the namespace."""
    low = random.randrange(20000, 59000, 1000)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "JANUS_API_SECRET": secret,
        "JANUS_TEMPLATES": str(templates),
        "JANUS_CONF_DIR": str(directory / "conf"),
        "JANUS_WS_IP": namespace.inner_address,
        "JANUS_WS_PORT": str(JANUS_PORT),
        "JANUS_ICE_ENFORCE": namespace.inner_address,
        "JANUS_RTP_PORT_RANGE": f"{low}-{low + 199}",
    }
    with (directory / "janus.log").open("ab") as log:
        process = namespace.popen(
            ["sh", str(JANUS_START)], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (directory / "janus.log").read_text()
        try:
            with socket.create_connection((namespace.inner_address, JANUS_PORT), 1.0):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("janus did not listen within 90 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    redis_conf = bind_mounts("redis")["/usr/local/etc/redis/redis.conf"]
    janus_templates = bind_mounts("janus")["/etc/homeroom/janus"]
    redis_dir, janus_dir = tmp_path / "redis", tmp_path / "janus"
    redis_dir.mkdir()
    janus_dir.mkdir()
    redis_process, redis_url = start_redis(redis_conf, redis_dir)
    try:
        with network_namespace() as namespace:
            turn = TurnServer(namespace, secrets.token_hex(32), tmp_path / "coturn")
            turn.start()
            janus_secret = secrets.token_hex(24)
            janus = start_janus(namespace, janus_templates, janus_dir, janus_secret)
            try:
                yield Services(
                    namespace, redis_url, redis_dir, turn,
                    f"ws://{namespace.inner_address}:{JANUS_PORT}/janus", janus_secret,
                )  # fmt: skip
            finally:
                stop(janus)
                turn.stop()
    finally:
        stop(redis_process)


def test_the_services_start_from_the_files_the_compose_file_mounts() -> None:
    assert (
        bind_mounts("redis")["/usr/local/etc/redis/redis.conf"] == ROOT / "config/redis/redis.conf"
    )
    command = resolved()["services"]["coturn"]["command"]
    assert bind_mounts("coturn")[command[command.index("-c") + 1]] == TurnServer.config_path()
    assert bind_mounts("janus")["/etc/homeroom/janus"] == ROOT / "config/janus"


async def test_a_probe_runs_through_redis_coturn_and_homeroom(
    services: Services, tmp_path: Path
) -> None:
    node = await ServedNode.start(
        tmp_path, name="app-1",
        HOMEROOM_ENV="production", HOMEROOM_PUBLIC_URL="https://homeroom.clinic.test",
        REDIS_URL=services.redis_url, HOMEROOM_REDIS_PREFIX="native",
        HOMEROOM_TURN_URLS=services.turn.url, HOMEROOM_TURN_SECRET=services.turn.secret,
    )  # fmt: skip
    try:
        env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path / "cli")}
        env.pop("REDIS_URL", None)
        probe = await asyncio.create_subprocess_exec(
            str(HOMEROOM), "probe", "--url", node.url, "--relay-only", "--timeout", "120",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(probe.communicate(), 180)
    finally:
        await node.stop()
    assert probe.returncode == 0, (out + err).decode()
    assert b'"ok": true' in out
    services.turn.stop()  # coturn writes its log out as it exits
    assert "ALLOCATE processed, success" in services.turn.log_text
    # The session and its ledger went to the Redis started from the compose config, which
    # keeps an append-only file as that config says.
    client = redis.Redis.from_url(services.redis_url)
    streams = [key for key in client.scan_iter("native:s:*:ev")]
    assert streams and all(client.xlen(key) > 0 for key in streams)
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert any(services.redis_dir.rglob("*.aof")), "no append-only file"


async def until(check: Callable[[], bool], what: str, deadline: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            pytest.fail(f"not within {deadline} s: {what}")
        await asyncio.sleep(0.05)


def receives_everyone(members: list[Participant]) -> bool:
    return all(
        me.received(other.endpoint).video_frames >= 3
        and me.received(other.endpoint).audio_frames >= 3
        for me in members
        for other in members
        if other is not me
    )


async def test_a_group_call_runs_through_coturn_and_janus(
    services: Services, tmp_path: Path
) -> None:
    node = await ServedNode.start(
        tmp_path, name="app-1",
        HOMEROOM_ENV="production", HOMEROOM_PUBLIC_URL="https://homeroom.clinic.test",
        REDIS_URL=services.redis_url, HOMEROOM_REDIS_PREFIX="native-group",
        HOMEROOM_TURN_URLS=services.turn.url, HOMEROOM_TURN_SECRET=services.turn.secret,
        HOMEROOM_JANUS_URLS=services.janus_url, HOMEROOM_JANUS_API_SECRET=services.janus_secret,
    )  # fmt: skip
    members: list[Participant] = []
    try:
        roster = [{"attendee": "c-1", "role": "clinician"}] + [
            {"attendee": p, "role": "patient"} for p in ("p-1", "p-2")
        ]
        created = await node.create_session(
            {"kind": "group", "purpose": "therapy_group", "roster": roster}
        )
        for attendee in ("c-1", "p-1", "p-2"):
            # Relay only: the media reach Janus through coturn's relays, as from a strict network.
            member = Participant(
                node.url, token=token_of(created, attendee), spec=SMALL, relay_only=True
            )
            members.append(member)
            await member.join()
            if attendee != "c-1":
                await until(lambda: bool(members[0].room["waiting"]), f"{attendee} waits")
                assert (await members[0].admit(attendee))["ok"] is True
        assert all(m.welcome["target"] == "server" for m in members)
        await until(lambda: receives_everyone(members), "every endpoint receives every other")
    finally:
        for member in members:
            await member.close()
        await node.stop()
    services.turn.stop()  # coturn writes its log out as it exits
    assert "ALLOCATE processed, success" in services.turn.log_text


async def test_janus_answers_with_the_api_secret_only(services: Services) -> None:
    connection = JanusConnection(services.janus_url, services.janus_secret)
    await connection.connect()
    try:
        info = await connection.info()
        assert info.janus == "server_info"
        session = await connection.create_session()
        handle = await session.attach()
        assert handle is not None
        await session.destroy()
    finally:
        await connection.close()
    stranger = JanusConnection(services.janus_url, "not-the-secret")
    await stranger.connect()
    try:
        with pytest.raises(JanusError):
            await stranger.create_session()
    finally:
        await stranger.close()
