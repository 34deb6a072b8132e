"""How `homeroom serve` forwards group media: its embedded Janus child (restarted if it dies),
a configured Janus, or the mesh when there is no Janus; /healthz says which."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from config.settings import Settings
from media.janus.process import JanusProcess
from rooms.store import MemoryStore
from tests.redis_server import free_port
from web.app import create_app
from web.group_media import GROUP_MEDIA

DEADLINE = 60.0


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, port=free_port(), **values)  # type: ignore[arg-type]


async def _healthz(app_url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(f"{app_url}/healthz") as response:
        assert response.status == 200
        body: dict[str, object] = await response.json()
        return body


async def _serve(settings: Settings) -> tuple[aiohttp.web.AppRunner, str]:
    app = create_app(settings, MemoryStore())
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", settings.port).start()
    return runner, f"http://127.0.0.1:{settings.port}"


async def test_embedded_janus_is_started_supervised_and_reported(tmp_path: Path) -> None:
    runner, url = await _serve(_settings(tmp_path, janus_embedded=True))
    try:
        setup = runner.app[GROUP_MEDIA]
        assert setup.mode == "embedded" and setup.embedded is not None
        health = await _healthz(url)
        assert health["group_media"] == {
            "forwarded": True,
            "by": "janus",
            "mode": "embedded",
            "healthy": True,
        }
        # The child dies: the supervisor starts it again and groups are forwarded again.
        first = setup.embedded.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while True:
            health = await _healthz(url)
            media = health["group_media"]
            assert isinstance(media, dict)
            if setup.embedded.restarts >= 1 and media["healthy"] is True:
                break
            assert loop.time() < end, "the embedded janus was not restarted"
            await asyncio.sleep(0.2)
        assert setup.embedded.pid != first
        # Its config sits in the var directory, private, with this start's secret.
        conf = tmp_path / "janus" / "conf"
        assert (conf.stat().st_mode & 0o077) == 0
        assert setup.embedded.api_secret in (conf / "janus.jcfg").read_text()
    finally:
        await runner.cleanup()
    assert not setup.embedded.running


async def test_no_janus_binary_falls_back_to_the_mesh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing named janus there
    monkeypatch.setattr("media.janus.process.SEARCH_PATH", str(tmp_path))
    runner, url = await _serve(_settings(tmp_path, janus_embedded=True))
    try:
        health = await _healthz(url)
        assert health["group_media"] == {
            "forwarded": False,
            "by": "mesh",
            "reason": "the janus binary is not installed",
        }
    finally:
        await runner.cleanup()


async def test_configured_janus_is_used(tmp_path: Path, janus: JanusProcess) -> None:
    settings = _settings(
        tmp_path, janus_urls=janus.config.url, janus_api_secret=janus.config.api_secret
    )
    runner, url = await _serve(settings)
    try:
        health = await _healthz(url)
        assert health["group_media"] == {
            "forwarded": True,
            "by": "janus",
            "mode": "configured",
            "healthy": True,
            "instances": {"up": 1, "of": 1},
        }
    finally:
        await runner.cleanup()


def test_janus_urls_need_the_api_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="HOMEROOM_JANUS_API_SECRET"):
        _settings(tmp_path, janus_urls="ws://10.0.0.1:8188/janus")
    with pytest.raises(ValidationError, match="ws://"):
        _settings(tmp_path, janus_urls="http://x/janus", janus_api_secret="s" * 20)
