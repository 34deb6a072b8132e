"""`homeroom probe --kind group` against a real `homeroom serve` whose group sessions go
through a real Janus in a namespace (and, without Janus, through the mesh)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from media.janus.process import JanusProcess
from tests.served import HOMEROOM, ServedNode
from tests.signaling_harness import SECRET

#: A console line at error level or above, as the probe writes its log lines to stderr.
_ERROR_LINE = re.compile(r"^\S+ \[(?:error|critical)\s*\]", re.MULTILINE)


async def _probe(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "HOMEROOM_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        str(HOMEROOM), "probe", "--url", url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    assert out, err.decode()
    report: dict[str, Any] = json.loads(out)
    # Hanging up ends the forwarder's connections under the participants (aiortc then closes
    # them itself): a probe that worked says nothing alarming on the way out.
    if proc.returncode == 0:
        assert _ERROR_LINE.search(err.decode()) is None, err.decode()
    return proc.returncode, report


def _everyone_received_everyone(report: dict[str, Any]) -> None:
    members = report["members"]
    endpoints = {m["endpoint"] for m in members}
    assert len(members) == report["participants"]
    for member in members:
        assert set(member["received"]) == endpoints - {member["endpoint"]}
        for got in member["received"].values():
            assert got["video_frames"] >= 5 and got["audio_frames"] >= 5


async def test_group_probe_through_janus(tmp_path: Path, janus: JanusProcess) -> None:
    node = await ServedNode.start(
        tmp_path,
        name="n-1",
        HOMEROOM_JANUS_URLS=janus.config.url,
        HOMEROOM_JANUS_API_SECRET=janus.config.api_secret,
    )
    try:
        code, report = await _probe(
            node.url, "--kind", "group", "--participants", "4", "--timeout", "120"
        )
    finally:
        await node.stop()
    assert code == 0, report
    assert report["ok"] is True and report["forwarder"] == "janus"
    _everyone_received_everyone(report)
    # Through the forwarder each endpoint uploads one video stream.
    assert [m["uploads"] for m in report["members"]] == [1, 1, 1, 1]


async def test_group_probe_on_the_mesh_without_janus(tmp_path: Path) -> None:
    node = await ServedNode.start(tmp_path, name="n-1")  # tests run no embedded Janus
    try:
        code, report = await _probe(
            node.url, "--kind", "group", "--participants", "2", "--timeout", "120"
        )
    finally:
        await node.stop()
    assert code == 0, report
    assert report["forwarder"] == "mesh"
    _everyone_received_everyone(report)


async def test_group_probe_fails_when_media_cannot_flow(tmp_path: Path) -> None:
    # A configured Janus that is down: joining works, publishing does not; exit 1 with why.
    node = await ServedNode.start(
        tmp_path,
        name="n-1",
        HOMEROOM_JANUS_URLS="ws://127.0.0.1:9/janus",
        HOMEROOM_JANUS_API_SECRET="x" * 24,
    )
    try:
        code, report = await _probe(
            node.url, "--kind", "group", "--participants", "2", "--timeout", "20"
        )
    finally:
        await node.stop()
    assert code == 1
    assert report["ok"] is False and report["forwarder"] == "janus"
    assert "forwarder_unavailable" in report["detail"]
