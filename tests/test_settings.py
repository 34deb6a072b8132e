"""Settings: every variable, its default, and a start-up failure naming the variable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from config.settings import IceServer, Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited HOMEROOM_* or REDIS_URL, and a scratch working directory (var/, .env)."""
    for name in list(os.environ):
        if name.startswith("HOMEROOM_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    s = load_settings()
    assert (s.env, s.host, s.port) == ("development", "127.0.0.1", 8080)
    assert s.public_url == "http://127.0.0.1:8080"
    assert (s.redis_url, s.redis_prefix) == (None, "hr")
    assert s.timezone == "America/New_York" and s.tz.key == "America/New_York"
    assert s.reconnect_grace_seconds == 30
    assert s.group_capacity == 12
    assert (s.link_lead_minutes, s.link_trail_minutes) == (30, 60)
    assert s.ice_servers == []  # nothing contacts a third party by default
    assert s.log_format == "console"
    assert s.node_id.endswith(f"-{os.getpid()}")
    assert s.var_dir == Path("var")


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "HOMEROOM_HOST": "10.1.2.3",
        "HOMEROOM_PORT": "9001",
        "HOMEROOM_SECRET": "x" * 40,
        "REDIS_URL": "redis://cache:6379/2",
        "HOMEROOM_REDIS_PREFIX": "clinic-a",
        "HOMEROOM_TIMEZONE": "America/Chicago",
        "HOMEROOM_RECONNECT_GRACE_SECONDS": "12.5",
        "HOMEROOM_GROUP_CAPACITY": "8",
        "HOMEROOM_LINK_LEAD_MINUTES": "15",
        "HOMEROOM_LINK_TRAIL_MINUTES": "90",
        "HOMEROOM_ICE_SERVERS": '[{"urls": "turn:turn.example:3478", "username": "u"}]',
        "HOMEROOM_LOG_FORMAT": "json",
        "HOMEROOM_NODE_ID": "node-a",
        "HOMEROOM_VAR_DIR": "/srv/homeroom",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.host, s.port, s.public_url) == ("10.1.2.3", 9001, "http://10.1.2.3:9001")
    assert s.signing_secret == "x" * 40
    assert (s.redis_url, s.redis_prefix) == ("redis://cache:6379/2", "clinic-a")
    assert s.timezone == "America/Chicago"
    assert s.reconnect_grace_seconds == 12.5
    assert s.group_capacity == 8
    assert (s.link_lead_minutes, s.link_trail_minutes) == (15, 90)
    assert s.ice_servers == [IceServer(urls="turn:turn.example:3478", username="u")]
    assert s.log_format == "json"
    assert s.node_id == "node-a"
    assert s.var_dir == Path("/srv/homeroom")


def test_public_url_is_explicit_or_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_HOST", "0.0.0.0")
    # A browser cannot open a link to "every interface".
    assert load_settings().public_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("HOMEROOM_PUBLIC_URL", "https://care.example.org/homeroom/")
    assert load_settings().public_url == "https://care.example.org/homeroom"


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_PORT", "9001")
    s = load_settings(port=9100)
    assert (s.port, s.public_url) == (9100, "http://127.0.0.1:9100")


def test_production_logs_json_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_ENV", "production")
    # What production insists on (tests/test_production.py): a real secret and https.
    monkeypatch.setenv("HOMEROOM_SECRET", "4f" * 32)
    monkeypatch.setenv("HOMEROOM_PUBLIC_URL", "https://homeroom.clinic.test")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("HOMEROOM_LOG_FORMAT", "console")
    assert load_settings().log_format == "console"


def test_development_secret_is_generated_once_and_private(clean_env: Path) -> None:
    first = load_settings().signing_secret
    path = clean_env / "var" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.encode()) >= 32
    # Links survive restarts: the next process reads the same secret.
    assert load_settings().signing_secret == first


def test_var_dir_decides_where_the_secret_lives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOMEROOM_VAR_DIR", str(tmp_path / "state"))
    secret = load_settings().signing_secret
    assert (tmp_path / "state" / "secret").read_text().strip() == secret


def test_explicit_secret_writes_nothing(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv("HOMEROOM_SECRET", "s" * 32)
    assert load_settings().signing_secret == "s" * 32
    assert not (clean_env / "var").exists()


def test_dotenv_file_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("HOMEROOM_PORT=9300\nREDIS_URL=redis://localhost:6390/0\n")
    s = load_settings()
    assert (s.port, s.redis_url) == (9300, "redis://localhost:6390/0")
    assert load_settings(env_file=None).port == 8080


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "")
    assert load_settings().redis_url is None


def test_redis_url_has_no_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_REDIS_URL", "redis://ignored:6379/0")
    assert load_settings().redis_url is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HOMEROOM_PORT", "eighty", "HOMEROOM_PORT: Input should be a valid integer"),
        ("HOMEROOM_PORT", "70000", "HOMEROOM_PORT: Input should be less than or equal to 65535"),
        ("HOMEROOM_SECRET", "too-short", "HOMEROOM_SECRET: must be at least 32 bytes"),
        ("HOMEROOM_TIMEZONE", "Mars/Olympus", "HOMEROOM_TIMEZONE: must be an IANA time zone"),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL: must start with redis://"),
        ("HOMEROOM_REDIS_PREFIX", "a:b", "HOMEROOM_REDIS_PREFIX: must be 1 to 32 letters"),
        ("HOMEROOM_PUBLIC_URL", "care.example.org", "HOMEROOM_PUBLIC_URL: must be an http"),
        ("HOMEROOM_ICE_SERVERS", "stun:x", "HOMEROOM_ICE_SERVERS: must be a JSON list"),
        ("HOMEROOM_ICE_SERVERS", "{}", "HOMEROOM_ICE_SERVERS: Input should be a valid list"),
        ("HOMEROOM_ICE_SERVERS", '[{"url": "stun:x"}]', "HOMEROOM_ICE_SERVERS[0][urls]: Field"),
        ("HOMEROOM_LOG_FORMAT", "xml", "HOMEROOM_LOG_FORMAT: Input should be 'json' or 'console'"),
        ("HOMEROOM_ENV", "staging", "HOMEROOM_ENV: Input should be 'development' or 'production'"),
        ("HOMEROOM_GROUP_CAPACITY", "0", "HOMEROOM_GROUP_CAPACITY: Input should be greater"),
        ("HOMEROOM_RECONNECT_GRACE_SECONDS", "-1", "HOMEROOM_RECONNECT_GRACE_SECONDS: Input"),
        ("HOMEROOM_LINK_LEAD_MINUTES", "soon", "HOMEROOM_LINK_LEAD_MINUTES: Input should be"),
        ("HOMEROOM_LINK_TRAIL_MINUTES", "-5", "HOMEROOM_LINK_TRAIL_MINUTES: Input should be"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith("error: invalid_settings: ")
    assert message in text
    # Derived defaults that could not be computed add noise, not information.
    assert "default factory" not in text


def test_settings_error_is_a_clean_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_PORT", "x")
    with pytest.raises(SystemExit) as caught:
        load_settings()
    assert caught.value.code != 0  # a message as exit code: printed to stderr, status 1


def test_settings_are_immutable() -> None:
    s = Settings(_env_file=None, secret="z" * 32)
    with pytest.raises(ValueError):
        s.port = 1  # type: ignore[misc]
