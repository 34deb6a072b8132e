"""Part: room views. The bytes a clinician receives while n patients join, against n.

A clinician sees the whole waiting room, so whole views sent on every arrival cost the
clinician n views of up to n endpoints: bytes growing as n^2 (500 connections: 31.8 MB).
Homeroom sends a whole view once and then ``room_delta`` (signaling/deltas.py). The
figures, for n and 4n patients joining one by one a group session's waiting room on a real
`homeroom serve`: the bytes the clinician received per patient (flat when growth is linear),
and, as the floor in the same run, what the whole views of the same states would have cost
(the views the clinician's client rebuilt, each as JSON). The growth figure is
bytes(4n) / bytes(n): 4 is linear, 16 quadratic.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from bench.params import Params
from bench.report import Report, Row
from bench.servers import RedisProc, create_session, start_homeroom
from bench.sio_client import Endpoint

PART = "views"


async def _one_room(http: aiohttp.ClientSession, url: str, n: int) -> tuple[int, int]:
    """Bytes the clinician received while ``n`` patients joined, and what whole views of the
    same states would have been."""
    patients = [f"p-{i}" for i in range(n)]
    roster = [{"attendee": "c-1", "role": "clinician"}]
    roster += [{"attendee": p, "role": "patient"} for p in patients]
    body = {"kind": "group", "purpose": "therapy_group", "capacity": 200, "roster": roster}
    tokens = await create_session(http, url, body)
    host = Endpoint(http, url, timeout=60)
    await host.connect({"v": 1, "token": tokens["c-1"]})
    await host.until_view(lambda view: view["you"] is not None)
    start, whole = host.received, 0
    joined: list[Endpoint] = []
    for patient in patients:
        ep = Endpoint(http, url, timeout=60)
        await ep.connect({"v": 1, "token": tokens[patient]})
        joined.append(ep)
        count = len(joined)
        view = await host.until_view(lambda v, count=count: len(v["waiting"]) == count)
        whole += len(json.dumps(["room", view], separators=(",", ":")))
    received = host.received - start
    for ep in [host, *joined]:
        await ep.close()
    return received, whole


async def run(p: Params, out: Path, report: Report) -> None:
    small = p.view_joins
    redis = RedisProc(out / "redis-views")
    try:
        served = await start_homeroom(out, redis.url, "bench-views")
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                got_small, whole_small = await _one_room(http, served.url, small)
                got_large, whole_large = await _one_room(http, served.url, 4 * small)
        finally:
            served.proc.stop()
    finally:
        redis.stop()
    for n, got, whole in ((small, got_small, whole_small), (4 * small, got_large, whole_large)):
        report.add(Row(PART, f"clinician bytes per joining patient, n={n}", "B", got / n,
                       whole / n, "flat in n"))  # fmt: skip
    report.add(Row(PART, "growth of the clinician's bytes, n to 4n", "x",
                   got_large / got_small, whole_large / whole_small, "4 (linear)"))  # fmt: skip
    report.notes.append(
        f"views: the clinician received {got_large / 1e3:.0f} kB while {4 * small} patients "
        f"joined; whole views of the same states: {whole_large / 1e3:.0f} kB"
    )
