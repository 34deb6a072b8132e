"""ICE servers: empty by default; TURN credentials in coturn's REST-API scheme when configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import SettingsError, load_settings
from rooms.store import MemoryStore
from signaling.ice import IceRequest, TurnConfig, ice_servers, turn_credentials, turn_pseudonym
from tests.signaling_harness import Client, Node, create, link

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
ENDS = NOW + timedelta(minutes=45)
TURN = TurnConfig(
    urls=("turn:turn.clinic.test:3478",), secret="shared-with-coturn", pseudonym_key=b"k" * 32
)
ASK = IceRequest("s-abc", "p-201", ENDS, NOW)


def test_credentials_are_what_coturn_computes() -> None:
    entry = turn_credentials(TURN, "t0123", NOW + timedelta(hours=1))
    expiry, user = entry["username"].split(":")
    assert user == "t0123" and int(expiry) == int((NOW + timedelta(hours=1)).timestamp())
    expected = hmac.new(b"shared-with-coturn", entry["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(entry["credential"]) == expected
    assert entry["urls"] == ["turn:turn.clinic.test:3478"]


def test_credentials_live_for_the_session_plus_a_margin_not_a_working_day() -> None:
    (entry,) = ice_servers([], TURN, ASK)
    assert int(entry["username"].split(":")[0]) == int((ENDS + TURN.ttl).timestamp())
    late = IceRequest("s-abc", "p-201", ENDS, ENDS + timedelta(minutes=20))
    (late_entry,) = ice_servers([], TURN, late)
    expiry = ENDS + timedelta(minutes=20) + TURN.ttl
    assert int(late_entry["username"].split(":")[0]) == int(expiry.timestamp())
    assert TurnConfig(urls=(), secret="s").ttl == timedelta(hours=1)


def test_usernames_are_pseudonyms_per_attendee_and_session() -> None:
    (entry,) = ice_servers([], TURN, ASK)
    name = entry["username"].split(":", 1)[1]
    assert "p-201" not in entry["username"] and "s-abc" not in entry["username"]
    assert name == turn_pseudonym(TURN, "s-abc", "p-201")
    # The same attendee keeps it in the session (a resume), and no one else has it.
    assert ice_servers([], TURN, IceRequest("s-abc", "p-201", ENDS, ENDS))[0]["username"].endswith(
        ":" + name
    )
    others = {
        turn_pseudonym(TURN, "s-abc", "p-202"),
        turn_pseudonym(TURN, "s-xyz", "p-201"),
        turn_pseudonym(TurnConfig(urls=(), secret="x", pseudonym_key=b"j" * 32), "s-abc", "p-201"),
    }
    assert name not in others and len(others) == 3


def test_no_turn_no_third_party() -> None:
    assert ice_servers([], None, ASK) == []
    static = [{"urls": "stun:stun.clinic.test"}]
    assert ice_servers(static, TURN, ASK)[0] == static[0]


async def test_each_endpoint_gets_its_own_credentials() -> None:
    node = await Node(MemoryStore(), turn=TURN).start()
    try:
        state = await create(node.rooms, "individual", "c-17", "p-201")
        host = await Client(node.url).connect(token=link(state, "c-17"))
        patient = await Client(node.url).connect(token=link(state, "p-201"))
        (mine,), (theirs,) = host.welcome["ice_servers"], patient.welcome["ice_servers"]
        assert mine["username"].endswith(":" + turn_pseudonym(TURN, state.spec.id, "c-17"))
        assert theirs["username"].endswith(":" + turn_pseudonym(TURN, state.spec.id, "p-201"))
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
    assert settings.turn_ttl_seconds == 3600
