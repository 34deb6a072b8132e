"""ICE servers: empty by default; TURN credentials in coturn's REST-API scheme when configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from config.settings import SettingsError, load_settings
from rooms.store import MemoryStore
from signaling.ice import TurnConfig, ice_servers, turn_credentials
from tests.signaling_harness import Client, Node, create, link

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
TURN = TurnConfig(urls=("turn:turn.clinic.test:3478",), secret="shared-with-coturn")


def test_credentials_are_what_coturn_computes() -> None:
    entry = turn_credentials(TURN, "e-abcd", NOW)
    expiry, user = entry["username"].split(":")
    assert user == "e-abcd" and int(expiry) == int((NOW + TURN.ttl).timestamp())
    expected = hmac.new(b"shared-with-coturn", entry["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(entry["credential"]) == expected
    assert entry["urls"] == ["turn:turn.clinic.test:3478"]


def test_no_turn_no_third_party() -> None:
    assert ice_servers([], None, "e-abcd", NOW) == []
    static = [{"urls": "stun:stun.clinic.test"}]
    assert ice_servers(static, TURN, "e-abcd", NOW)[0] == static[0]


async def test_each_endpoint_gets_its_own_credentials() -> None:
    node = await Node(MemoryStore(), turn=TURN).start()
    try:
        state = await create(node.rooms, "individual", "c-17", "p-201")
        host = await Client(node.url).connect(token=link(state, "c-17"))
        patient = await Client(node.url).connect(token=link(state, "p-201"))
        (mine,), (theirs,) = host.welcome["ice_servers"], patient.welcome["ice_servers"]
        assert mine["username"].endswith(":" + host.endpoint)
        assert theirs["username"].endswith(":" + patient.endpoint)
        await host.close()
        await patient.close()
    finally:
        await node.stop()


def test_turn_settings_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_SECRET", "x" * 40)
    monkeypatch.setenv("HOMEROOM_TURN_URLS", "turn:a.test:3478, turns:b.test:5349")
    with pytest.raises(SettingsError, match="HOMEROOM_TURN_URLS and HOMEROOM_TURN_SECRET"):
        load_settings(env_file=None)
    monkeypatch.setenv("HOMEROOM_TURN_SECRET", "s3cret")
    settings = load_settings(env_file=None)
    assert settings.turn_urls == ["turn:a.test:3478", "turns:b.test:5349"]
    assert settings.turn_ttl_seconds == 8 * 3600
