"""docker-compose.yml: valid, and wired as docs/deployment.md says (no Docker daemon here)."""

from __future__ import annotations

from pathlib import Path

from tests.compose import ROOT, bind_mounts, env_example, resolved, run_config


def test_the_file_resolves_with_env_example() -> None:
    services = resolved()["services"]
    assert set(services) == {"app", "app2", "caddy", "redis", "coturn", "janus"}
    assert services["app2"]["profiles"] == ["scale"]
    assert services["caddy"]["profiles"] == ["scale"]


def test_a_missing_secret_stops_compose_naming_it(tmp_path: Path) -> None:
    partial = tmp_path / "env"
    lines = (ROOT / ".env.example").read_text().splitlines()
    partial.write_text("\n".join(x for x in lines if not x.startswith("HOMEROOM_SECRET=")))
    done = run_config(partial, "--quiet")
    assert done.returncode != 0
    assert "set HOMEROOM_SECRET in .env" in done.stderr


def test_app_nodes_run_in_production_on_redis_with_their_own_names() -> None:
    services = resolved()["services"]
    example = env_example()
    nodes = [services["app"]["environment"], services["app2"]["environment"]]
    for env in nodes:
        assert env["HOMEROOM_ENV"] == "production"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["HOMEROOM_SECRET"] == example["HOMEROOM_SECRET"]
        assert env["HOMEROOM_PUBLIC_URL"].startswith("https://")
    assert {env["HOMEROOM_NODE_ID"] for env in nodes} == {"app-1", "app-2"}
    # Published on loopback only: the clinic's TLS proxy is in front.
    assert [str(port).split(":")[0] for port in services["app"]["ports"]] == ["127.0.0.1"]


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = resolved()["services"]["redis"]
    conf = bind_mounts("redis")["/usr/local/etc/redis/redis.conf"]
    assert conf == ROOT / "config/redis/redis.conf"
    settings = dict(
        line.split(None, 1) for line in conf.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )  # fmt: skip
    assert (settings["appendonly"], settings["appendfsync"]) == ("yes", "everysec")
    named = [v.split(":")[:2] for v in redis["volumes"] if not v.startswith("/")]
    # The redis image runs in /data, where the config (no `dir`) keeps its files.
    assert "dir" not in settings
    assert named == [["redis-data", "/data"]]
    assert "ports" not in redis


def test_coturn_shares_the_apps_turn_secret_and_denies_private_peers() -> None:
    services = resolved()["services"]
    command = services["coturn"]["command"]
    conf = bind_mounts("coturn")[command[command.index("-c") + 1]]
    assert conf == ROOT / "config/coturn/turnserver.conf"
    secret = services["app"]["environment"]["HOMEROOM_TURN_SECRET"]
    assert f"--static-auth-secret={secret}" in command
    lines = conf.read_text().splitlines()
    assert "use-auth-secret" in lines
    assert {"min-port=49160", "max-port=49400"} <= set(lines)
    for denied in ("10.0.0.0-10.255.255.255", "127.0.0.0-127.255.255.255",
                   "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255", "::1"):  # fmt: skip
        assert f"denied-peer-ip={denied}" in lines
    assert not any(line.startswith("allowed-peer-ip") for line in lines)


def test_janus_runs_from_config_janus_with_the_apps_api_secret() -> None:
    services = resolved()["services"]
    janus = services["janus"]
    assert bind_mounts("janus")["/etc/homeroom/janus"] == ROOT / "config/janus"
    assert janus["build"]["dockerfile"] == "deploy/janus.Dockerfile"
    app_secret = services["app"]["environment"]["HOMEROOM_JANUS_API_SECRET"]
    assert janus["environment"]["JANUS_API_SECRET"] == app_secret
    assert services["app"]["environment"]["HOMEROOM_JANUS_URLS"] == "ws://janus:8188/janus"


def test_the_scale_profile_puts_caddy_with_the_repositorys_config_in_front() -> None:
    caddyfile = bind_mounts("caddy")["/etc/caddy/Caddyfile"]
    assert caddyfile == ROOT / "config/caddy/Caddyfile"
    assert "reverse_proxy app:8080 app2:8080" in caddyfile.read_text()


def test_the_app_image_is_slim_unprivileged_locked_and_health_checked() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages[-1] == "FROM python:3.11-slim-bookworm"
    assert "pip install --require-hashes -r requirements-app.lock" in dockerfile
    assert "USER homeroom" in dockerfile
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
