"""HOMEROOM_ENV=production refuses a development or example secret and a start without TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings

HOMEROOM = Path(sys.executable).with_name("homeroom")
ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "HOMEROOM_ENV": "production",
    "HOMEROOM_SECRET": "9c" * 32,
    "HOMEROOM_PUBLIC_URL": "https://homeroom.clinic.test",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("HOMEROOM_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in {**GOOD, **env}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_a_real_secret_behind_https_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    assert load_settings().env == "production"


def test_the_generated_development_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, HOMEROOM_SECRET="")  # empty means unset: var/secret
    assert message.startswith("error: invalid_settings: refusing to start in production")
    assert "HOMEROOM_SECRET: must be set in production" in message


def test_every_secret_of_env_example_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    message = refusal(
        monkeypatch,
        HOMEROOM_SECRET=example["HOMEROOM_SECRET"],
        HOMEROOM_TURN_URLS="turn:turn.clinic.test:3478",
        HOMEROOM_TURN_SECRET=example["HOMEROOM_TURN_SECRET"],
        HOMEROOM_JANUS_URLS="ws://janus:8188/janus",
        HOMEROOM_JANUS_API_SECRET=example["JANUS_API_SECRET"],
    )
    assert "HOMEROOM_SECRET: is a development or example value" in message
    assert "HOMEROOM_TURN_SECRET: is a development or example value" in message
    assert "HOMEROOM_JANUS_API_SECRET: is a development or example value" in message
    # The refusal names variables, never the values.
    assert example["HOMEROOM_SECRET"] not in message


@pytest.mark.parametrize("public_url", ["http://homeroom.clinic.test", "http://127.0.0.1:8080", ""])
def test_no_tls_in_front_is_refused(monkeypatch: pytest.MonkeyPatch, public_url: str) -> None:
    message = refusal(monkeypatch, HOMEROOM_PUBLIC_URL=public_url)
    assert "HOMEROOM_PUBLIC_URL: must be the https:// address" in message


def test_development_starts_with_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMEROOM_SECRET", "change-me-" + "0" * 32)
    settings = load_settings()
    assert (settings.env, settings.public_url) == ("development", "http://127.0.0.1:8080")


def test_homeroom_serve_exits_with_the_reason(clean_env: Path) -> None:
    env = {**os.environ, **GOOD, "HOMEROOM_PUBLIC_URL": "http://homeroom.clinic.test"}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [str(HOMEROOM), "serve"],
        env=env, cwd=clean_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "refusing to start in production" in done.stderr
    assert "HOMEROOM_PUBLIC_URL" in done.stderr
