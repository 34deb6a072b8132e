"""End to end through real `homeroom serve` processes: embedded, Redis, two nodes, a node crash."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.redis_server import free_port
from tests.served import COUPLES, HOMEROOM, ServedNode, token_of
from tests.signaling_harness import SECRET, Client, until


async def test_a_couples_call_through_the_real_server(served: ServedNode) -> None:
    await _couples_call(served)


async def test_the_libraries_own_paths_serve_the_same_call(tmp_path: Path) -> None:
    """The switch the overrides' benchmark turns (bench/overrides.py): with python-engineio's
    websocket loop and python-socketio's packet handling instead of Homeroom's, a real call
    still works and a reserved event name is still refused, so the measured stock path is a
    working server, not a broken one."""
    node = await ServedNode.start(tmp_path, name="n-s", HOMEROOM_STOCK_PATHS="websocket,wire")
    try:
        created = await node.create_session(COUPLES)
        patient = await Client(node.url).connect(token=token_of(created, "p-201"))
        refused = await patient.sio.call("connect", ({}, {"v": 1}), timeout=5)
        assert refused["error"] == "invalid_message"
        await patient.close()
        await _couples_call(node, created)
    finally:
        await node.stop()
    assert not [line for line in node.lines if '"level":"error"' in line.replace(" ", "")]


async def _couples_call(served: ServedNode, created: dict[str, Any] | None = None) -> None:
    created = created or await served.create_session(COUPLES)
    host = await Client(served.url).connect(token=token_of(created, "c-17"))
    device = await Client(served.url).connect(token=token_of(created, "p-201"))
    assert (await device.call("attach", {"token": token_of(created, "p-202")}))["ok"] is True
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    assert (await host.call("admit", {"attendee": "p-202"}))["ok"] is True
    await until(lambda: device.room["admitted"] and device.room["status"] == "live")
    offer = {"to": host.endpoint, "description": {"type": "offer", "sdp": "v=0"}}
    assert (await device.call("signal", offer))["ok"] is True
    await until(lambda: len(host.signals) == 1)
    assert (await host.call("end"))["ok"] is True
    await until(lambda: [b["reason"] for b in device.byes] == ["ended"])
    for client in (host, device):
        await client.close()
    # The logs carry pseudonymous ids, never a person's name, phone or e-mail address.
    logged = [json.loads(line) for line in served.lines if line.startswith("{")]
    assert any(entry.get("event") == "joined" for entry in logged)


@pytest.fixture
async def two_nodes(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[ServedNode, ServedNode]]:
    env = {
        "REDIS_URL": redis_url,
        "HOMEROOM_REDIS_PREFIX": redis_prefix,
        "HOMEROOM_HEARTBEAT_SECONDS": "0.3",
    }
    a = await ServedNode.start(tmp_path, name="n-a", **env)
    b = await ServedNode.start(tmp_path, name="n-b", **env)
    yield a, b
    for node in (a, b):
        await node.stop()


async def test_two_nodes_then_one_crashes(
    two_nodes: tuple[ServedNode, ServedNode], redis_url: str, redis_prefix: str
) -> None:
    a, b = two_nodes
    created = await a.create_session(
        {**COUPLES, "kind": "individual", "roster": COUPLES["roster"][:2]}
    )
    host = await Client(a.url).connect(token=token_of(created, "c-17"))
    patient = await Client(b.url).connect(token=token_of(created, "p-201"))
    await until(lambda: len(host.room["waiting"]) == 1)
    assert (await host.call("admit", {"attendee": "p-201"}))["ok"] is True
    await until(lambda: patient.room["admitted"])
    answer = {"to": patient.endpoint, "description": {"type": "answer", "sdp": "v=0"}}
    assert (await host.call("signal", answer))["ok"] is True
    await until(lambda: len(patient.signals) == 1)
    # Node B dies without a word: node A's reaper closes its endpoint at B's last heartbeat.
    await b.stop(kill=True)
    await until(
        lambda: (
            not any(
                e["endpoint"] == patient.endpoint and e["connected"] for e in host.room["endpoints"]
            )
        ),
        within=15,
    )
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = await client.xrange(f"{redis_prefix}:s:{created['session']}:ev")
    finally:
        await client.aclose()
    events = [json.loads(fields["e"]) for _, fields in entries]
    lost = [e for e in events if e["kind"] == "disconnected" and e["attendee"] == "p-201"]
    assert len(lost) == 1 and lost[0]["data"]["reason"] == "node_lost"
    await host.close()


async def test_homeroom_probe_reports_media_both_ways(served: ServedNode, tmp_path: Path) -> None:
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        str(HOMEROOM), "probe", "--url", served.url, "--timeout", "60",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["ok"] is True
    for side in ("clinician", "patient"):
        assert report[side]["video_frames"] >= 10 and report[side]["audio_frames"] >= 25
        assert report[side]["first_video_ms"] > 0


async def test_homeroom_probe_without_a_server_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        str(HOMEROOM), "probe", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "5",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 1 and out == b""
    assert err.decode().startswith("error: unreachable:")


async def test_attendance_export_and_audit_verify_through_the_server(
    served: ServedNode, tmp_path: Path
) -> None:
    await served.create_session(COUPLES)
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)

    async def cli(*argv: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(HOMEROOM), *argv, "--url", served.url,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    day = "2000-01-01"
    code, out, _ = await cli("attendance", "export", "--from", day, "--to", day)
    assert code == 0 and out.startswith("session,kind,purpose,date_of_service,attendee,")
    code, out, _ = await cli("audit", "verify")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, err = await cli("attendance", "export", "--from", day, "--to", "1999-01-01")
    assert code == 1 and out == "" and err.startswith("error: invalid_message:")
