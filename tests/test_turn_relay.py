"""TURN for real: a call relayed by coturn with the credentials Homeroom hands out, and coturn
refusing credentials that are expired or not signed with the shared secret.

coturn runs in this test's own network namespace from config/coturn/turnserver.conf; Homeroom
(`homeroom serve`) and the aiortc participants run in the root namespace and reach it over the
namespace's veth pair. The participants gather relay candidates only (iceTransportPolicy
relay), so media can flow through coturn alone.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from media.negotiation import rtc_configuration
from media.probe import probe
from rooms.tokens import StaffRole, issue_staff_token
from signaling.ice import TurnConfig, turn_credentials
from tests.netns import network_namespace
from tests.served import ServedNode
from tests.signaling_harness import SECRET
from tests.turn_server import TurnServer


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    with network_namespace() as namespace:
        server = TurnServer(namespace, secrets.token_hex(32), tmp_path / "coturn")
        server.start()
        try:
            yield server
        finally:
            server.stop()


async def test_a_relay_only_call_goes_through_coturn(turn: TurnServer, tmp_path: Path) -> None:
    node = await ServedNode.start(
        tmp_path, name="n-1", HOMEROOM_TURN_URLS=turn.url, HOMEROOM_TURN_SECRET=turn.secret
    )
    try:
        token = issue_staff_token(
            SECRET, StaffRole.ADMIN, "admin-1", datetime.now(UTC), timedelta(minutes=10)
        )
        report = await probe(node.url, token, timeout=90, relay_only=True)
    finally:
        await node.stop()
    assert report.ok, report.detail
    assert report.clinician.video_frames >= 10 and report.patient.audio_frames >= 25
    turn.stop()  # coturn writes its log out as it exits
    log = turn.log_text
    # coturn allocated relays for the pseudonyms Homeroom handed out, never for attendee ids.
    assert "ALLOCATE processed, success" in log, log
    assert re.search(r"user <\d+:t[0-9a-f]{16}>", log), "no allocation under a pseudonym"
    assert "c-probe" not in log and "p-probe" not in log


async def relay_candidates(turn: TurnServer, username: str, credential: str) -> list[str]:
    """The relay candidates an aiortc peer gathers with these credentials (relay policy)."""
    entry = {"urls": [turn.url], "username": username, "credential": credential}
    pc = RTCPeerConnection(rtc_configuration([entry], relay_only=True))
    try:
        pc.addTransceiver("audio")
        await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), 60)
        sdp = pc.localDescription.sdp
        return [line for line in sdp.splitlines() if "typ relay" in line]
    finally:
        await pc.close()


async def test_coturn_refuses_expired_and_forged_credentials(turn: TurnServer) -> None:
    config = TurnConfig(urls=(turn.url,), secret=turn.secret)
    now = datetime.now(UTC)
    valid = turn_credentials(config, "tvalid", now + timedelta(minutes=5))
    expired = turn_credentials(config, "texpired", now - timedelta(minutes=1))
    forged = turn_credentials(
        TurnConfig(urls=(turn.url,), secret=secrets.token_hex(32)),
        "tforged",
        now + timedelta(hours=1),
    )
    # The contrast proves the setup: the same peer with the real credential gets a relay.
    assert await relay_candidates(turn, valid["username"], valid["credential"])
    assert await relay_candidates(turn, expired["username"], expired["credential"]) == []
    assert await relay_candidates(turn, forged["username"], forged["credential"]) == []
    turn.stop()  # coturn writes its log out as it exits
    log = turn.log_text
    assert "tvalid" in log and "ALLOCATE processed, success" in log
    for refused in ("texpired", "tforged"):
        lines = [line for line in log.splitlines() if refused in line]
        assert lines and not any("success" in line for line in lines), lines
