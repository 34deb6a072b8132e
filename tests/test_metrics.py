"""/metrics of a real `homeroom serve` during a real `homeroom probe`: admins only on the main
port, unauthenticated on its own port, and no label names a person, session or endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from media.participant import Participant
from rooms.errors import StoreUnavailable
from rooms.store import open_store
from rooms.tokens import StaffRole, issue_staff_token
from tests.redis_server import free_port
from tests.served import HOMEROOM, ServedNode, token_of
from tests.signaling_harness import SECRET
from web.metered_store import metered
from web.metrics import ForwarderSample, Metrics

#: What an id of a session, endpoint or the probe's attendees looks like.
IDS = re.compile(r"^(s-|e-|c-probe|p-probe)")
DASHBOARD = Path(__file__).resolve().parent.parent / "config" / "grafana" / "homeroom.json"


def staff(role: StaffRole) -> dict[str, str]:
    token = issue_staff_token(SECRET, role, "admin-1", datetime.now(UTC), timedelta(minutes=5))
    return {"Authorization": f"Bearer {token}"}


async def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """``{name{labels}: value}`` of every sample at ``url``."""
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
            assert not [v for v in sample.labels.values() if IDS.match(v)], sample
    return samples


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


async def test_metrics_during_a_real_probe(served: ServedNode, tmp_path: Path) -> None:
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_VAR_DIR": str(tmp_path / "cli")}
    probe = await asyncio.create_subprocess_exec(
        str(HOMEROOM), "probe", "--url", served.url, "--timeout", "60", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    url, admin = served.url + "/metrics", staff(StaffRole.ADMIN)
    during: dict[str, float] = {}

    async def probe_in_call() -> bool:
        during.update(await scrape(url, admin))
        return during["homeroom_endpoints_connected{}"] >= 2

    try:
        async with asyncio.timeout(60):
            while not await probe_in_call():
                assert probe.returncode is None, "the probe ended before it was seen"
                await asyncio.sleep(0.1)
    finally:
        output, _ = await probe.communicate()
    assert probe.returncode == 0, output.decode()
    assert during["homeroom_connects_total{result=join}"] >= 2
    assert during["homeroom_ledger_appends_total{kind=session_created}"] == 1
    assert total(during, "homeroom_ledger_appends_total") >= 4
    assert total(during, "homeroom_sessions{") >= 1
    after = await scrape(url, admin)
    assert after["homeroom_endpoints_connected{}"] == 0
    # The probe's patient waited and was admitted; the clinician's own admission is no wait.
    assert after["homeroom_admit_wait_seconds_count{}"] == 1
    assert after["homeroom_ledger_appends_total{kind=session_ended}"] == 1
    assert after["homeroom_signaling_events_total{event=admit,result=ok}"] == 1
    assert after["homeroom_store_seconds_count{op=transact}"] >= 4
    assert after["homeroom_sessions{kind=individual,status=ended}"] == 1
    assert after["homeroom_draining{}"] == 0


async def test_refused_events_are_counted_by_code(served: ServedNode) -> None:
    created = await served.create_session(
        {"kind": "individual", "roster": [
            {"attendee": "c-17", "role": "clinician"}, {"attendee": "p-201", "role": "patient"}
        ]}
    )  # fmt: skip
    patient = await Participant(served.url, token=token_of(created, "p-201")).join()
    try:
        assert (await patient.call("admit", {"attendee": "p-201"}))["error"] == "not_authorized"
        assert (await patient.call("no_such_event"))["error"] == "invalid_message"
    finally:
        await patient.close()
    after = await scrape(served.url + "/metrics", staff(StaffRole.ADMIN))
    assert after["homeroom_signaling_events_total{event=admit,result=not_authorized}"] == 1
    assert after["homeroom_signaling_events_total{event=unknown,result=invalid_message}"] == 1
    assert after["homeroom_waiting_room_attendees{}"] == 0


async def test_the_main_port_serves_metrics_to_admins_only(served: ServedNode) -> None:
    created = await served.create_session(
        {"kind": "individual", "roster": [
            {"attendee": "c-17", "role": "clinician"}, {"attendee": "p-201", "role": "patient"}
        ]}
    )  # fmt: skip
    link = {"Authorization": f"Bearer {token_of(created, 'p-201')}"}
    async with aiohttp.ClientSession() as http:
        for headers, status in [
            (None, 401),
            ({"Authorization": "Bearer nonsense"}, 401),
            (link, 401),  # a patient's link is not a staff token
            (staff(StaffRole.CLINICIAN), 403),
        ]:
            async with http.get(served.url + "/metrics", headers=headers) as response:
                assert response.status == status
                body = await response.json()
                assert "homeroom_" not in str(body)


async def test_a_metrics_port_of_its_own(tmp_path: Path) -> None:
    port = free_port()
    node = await ServedNode.start(tmp_path, name="n-1", HOMEROOM_METRICS_PORT=str(port))
    try:
        samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        assert samples["homeroom_endpoints_connected{}"] == 0
        assert "process_cpu_seconds_total{}" in samples
        async with (
            aiohttp.ClientSession() as http,
            http.get(node.url + "/metrics", headers=staff(StaffRole.ADMIN)) as response,
        ):
            assert response.status == 404  # only on its own port
    finally:
        await node.stop()


async def test_store_failures_and_latency_are_counted() -> None:
    metrics = Metrics()
    # A real Redis client pointed at a port nobody listens on.
    store = metered(open_store(f"redis://127.0.0.1:{free_port()}", prefix="hrt-x"), metrics)
    try:
        for _ in range(2):
            try:
                await store.ping()
            except StoreUnavailable:
                pass
            else:
                raise AssertionError("a store nobody serves answered")
    finally:
        await store.close()
    value = metrics.registry.get_sample_value
    assert value("homeroom_store_failures_total", {"op": "ping", "code": "store_unavailable"}) == 2
    assert value("homeroom_store_seconds_count", {"op": "ping"}) == 2


def test_forwarder_sources_are_read_at_each_scrape() -> None:
    metrics = Metrics()
    sample = ForwarderSample(instance="janus-1", rooms=2, publishers=7, healthy=True)
    reported = [sample]
    metrics.watch_forwarder(lambda: reported)
    assert metrics.registry.get_sample_value(
        "homeroom_forwarder_publishers", {"instance": "janus-1"}
    ) == 7  # fmt: skip
    reported[:] = [ForwarderSample(instance="janus-1", rooms=0, publishers=0, healthy=False)]
    assert metrics.registry.get_sample_value("homeroom_forwarder_up", {"instance": "janus-1"}) == 0
    metrics.checkin_picked_up(42.0)
    assert metrics.registry.get_sample_value("homeroom_checkin_queue_wait_seconds_count") == 1


def test_the_grafana_dashboard_asks_only_for_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    asked = {name for expr in exprs for name in re.findall(r"\bhomeroom_\w+", expr)}
    exposed = generate_latest(Metrics().registry).decode()
    # Families whose collectors the application registers (endpoints, draining) included.
    families = set(re.findall(r"^# TYPE (\w+)", exposed, re.M)) | {
        "homeroom_endpoints_connected",
        "homeroom_draining",
    }
    samples = {f + suffix for f in families for suffix in ("", "_total", "_bucket", "_count")}
    assert asked and asked <= samples, asked - samples
