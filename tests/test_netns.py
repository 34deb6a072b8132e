"""The namespace fixture and a real Janus started inside it from config/janus/."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from media.janus.process import JanusProcess
from tests.janus_server import start_janus
from tests.netns import Namespace, network_namespace

ECHO = (
    "import socket,sys; s=socket.create_server((sys.argv[1], 7001)); print('up', flush=True); "
    "c,_=s.accept(); c.sendall(c.recv(16))"
)


def _echoes_through_pair(ns: Namespace) -> bool:
    """A TCP echo inside the namespace answers from the root namespace through the pair."""
    server = ns.popen([sys.executable, "-c", ECHO, ns.inner_address], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        with socket.create_connection((ns.inner_address, 7001), timeout=30) as conn:
            conn.sendall(b"hello")
            return conn.recv(16) == b"hello"
    finally:
        server.kill()
        server.wait()


def test_namespace_pair_is_reachable_and_removed() -> None:
    with network_namespace() as ns:
        inside = ns.run(["ip", "-o", "-4", "addr", "show", "dev", ns.inner_link]).stdout
        assert f"inet {ns.inner_address}/24" in inside
        # The namespace has no route out: only the pair's subnet.
        routes = ns.run(["ip", "-4", "route", "show"]).stdout
        assert "default" not in routes
        assert _echoes_through_pair(ns)
        name, outer = ns.name, ns.outer_link
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in names.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f" {outer}@" not in links and f" {outer}:" not in links


def test_two_namespaces_get_distinct_subnets() -> None:
    with network_namespace() as first, network_namespace() as second:
        assert first.name != second.name
        assert first.inner_address.rsplit(".", 1)[0] != second.inner_address.rsplit(".", 1)[0]


async def _request(process: JanusProcess, body: dict[str, object]) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(process.config.url, protocols=("janus-protocol",)) as ws,
    ):
        await ws.send_str(json.dumps(body))
        answer: dict[str, object] = json.loads(await ws.receive_str(timeout=30))
        return answer


async def test_janus_answers_only_with_its_api_secret(janus: JanusProcess) -> None:
    secret = janus.config.api_secret
    info = await _request(janus, {"janus": "info", "transaction": "t1", "apisecret": secret})
    assert info["janus"] == "server_info"
    plugins = info["plugins"]
    transports = info["transports"]
    assert isinstance(plugins, dict) and isinstance(transports, dict)
    assert set(plugins) == {"janus.plugin.videoroom"}
    assert set(transports) == {"janus.transport.websockets"}
    refused = await _request(janus, {"janus": "create", "transaction": "t2", "apisecret": "no"})
    assert refused["janus"] == "error"


def test_janus_config_files_stay_private(janus: JanusProcess) -> None:
    conf = janus.directory / "conf"
    assert (conf.stat().st_mode & 0o077) == 0
    text = (conf / "janus.jcfg").read_text()
    assert janus.config.api_secret in text
    assert re.search(r"@[A-Z_]+@", text) is None


def test_start_fails_clearly_when_janus_exits(tmp_path: Path) -> None:
    with network_namespace() as ns:
        process = start_janus(ns, tmp_path / "first")
        try:
            # A second Janus on the same address cannot bind: it exits, and we say so.
            second = JanusProcess(process.config, tmp_path / "second", prefix=ns.prefix)
            second.start()
            try:
                second.wait_listening(timeout=60.0)
            except RuntimeError as error:
                assert "exited" in str(error)
            else:
                # It may still be starting when the first accepts on its behalf: then it dies.
                assert _exits(second)
            finally:
                second.stop()
        finally:
            process.stop()


def _exits(process: JanusProcess) -> bool:
    proc = process._process
    assert proc is not None
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        return False
    return True
