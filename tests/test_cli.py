"""The ``homeroom`` command, in process and as a real ``homeroom serve`` subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from rooms.clock import utcnow
from rooms.ids import SessionId
from rooms.store import open_store
from rooms.tokens import StaffRole, verify_staff_token
from tests.redis_server import free_port
from tests.served import COUPLES
from web.cli import build_parser, main

HOMEROOM = Path(sys.executable).parent / "homeroom"
SECRET = "cli-test-secret-" + "y" * 32


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A clean environment in a scratch directory; returned for subprocesses as well."""
    for name in list(os.environ):
        if name.startswith("HOMEROOM_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOMEROOM_SECRET", SECRET)
    return dict(os.environ)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- token --------------------------------------------------------------------------------


def test_token_prints_a_staff_token(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "token", "--role", "clinician", "--subject", "c-17", "--days", "2")
    assert code == 0
    claims = verify_staff_token(SECRET, out.strip(), utcnow())
    assert (claims.role, claims.subject) == (StaffRole.CLINICIAN, "c-17")
    assert claims.exp - utcnow() > timedelta(days=1, hours=23)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subject", "Jane Roe"], "error: invalid_message: --subject"),
        (["--subject", "a-1", "--days", "0"], "error: invalid_message: --days"),
    ],
)
def test_token_refuses_bad_input(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = _run(capsys, "token", "--role", "admin", *argv)
    assert (code, out) == (1, "")
    assert err.startswith(message)


def test_help_lists_every_command_with_its_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in commands._choices_actions}
    assert set(helps) == set(commands.choices)  # no command without a purpose
    for name, purpose in helps.items():
        assert purpose and " ".join(f"{name} {purpose}".split()) in " ".join(text.split())
    assert "``" not in text  # reStructuredText markup is for docstrings, not for people


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, subcommands included, with its command line."""
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += _parsers(child)
    return found


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    missing = [
        f"{prog} {action.option_strings[0]}"
        for prog, parser in _parsers(build_parser())
        for action in parser._actions
        if action.option_strings
        and action.help != argparse.SUPPRESS
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_unknown_role_is_a_usage_error(env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["token", "--role", "patient", "--subject", "p-1"])
    assert caught.value.code == 2


# --- session create, straight into Redis ---------------------------------------------------


@pytest.fixture
async def redis_env(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_prefix: str
) -> AsyncIterator[str]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HOMEROOM_REDIS_PREFIX", redis_prefix)
    yield redis_url
    client = Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await client.unlink(*keys)
    await client.aclose()


async def _stored(redis_url: str, prefix: str, session: str) -> str:
    store = open_store(redis_url, prefix=prefix)
    try:
        return str((await store.get(SessionId(session))).spec.kind)
    finally:
        await store.close()


async def _in_thread(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # main() runs its own event loop, so it cannot run on the test's.
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_session_create_writes_to_redis(
    redis_env: str, redis_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await _in_thread(
        capsys, "session", "create", "--kind", "couples", "--clinician", "c-17",
        "--patient", "p-201", "--patient", "p-202", "--identified-patient", "p-202",
        "--starts", "2026-12-01T09:30", "--minutes", "50",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert [(x["attendee"], x["role"]) for x in created["links"]] == [
        ("c-17", "clinician"),
        ("p-201", "patient"),
        ("p-202", "patient"),
    ]
    # A start without an offset is read in the program's time zone (America/New_York).
    assert datetime.fromisoformat(created["starts_at"]) == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert await _stored(redis_env, redis_prefix, created["session"]) == "couples"


async def test_session_create_group_options(
    redis_env: str, redis_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _in_thread(
        capsys, "session", "create", "--kind", "group", "--purpose", "family_education",
        "--clinician", "c-1:facilitator", "--clinician", "c-2", "--patient", "p-1",
        "--guest", "g-1", "--capacity", "5",
    )  # fmt: skip
    assert code == 0, err
    roles = [(x["attendee"], x["role"], x["function"]) for x in json.loads(out)["links"]]
    assert roles == [
        ("c-1", "clinician", "facilitator"),
        ("c-2", "clinician", "facilitator"),
        ("p-1", "patient", None),
        ("g-1", "guest", None),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kind", "couples", "--clinician", "c-1", "--patient", "p-1"],
         "error: invalid_roster: a couples session needs 2 patients; the roster has 1"),
        (["--kind", "individual", "--clinician", "c-1", "--patient", "jo@example.org"],
         "error: invalid_roster: roster.1.attendee: must be an id of 1 to 64 letters"),
        (["--kind", "couples", "--clinician", "c-1", "--patient", "p-1", "--patient", "p-2"],
         "error: invalid_roster: a couples session is billed under one partner's claim: say "
         "whose with --identified-patient, one of the two --patient ids "
         "(e.g. --identified-patient p-1)"),
        (["--kind", "individual", "--clinician", "c-1", "--patient", "p-1", "--starts", "soon"],
         "error: invalid_message: --starts: use ISO 8601"),
        (["--kind", "individual", "--clinician", "c-1", "--patient", "p-1", "--minutes", "1"],
         "error: invalid_message: --minutes: Input should be greater than or equal to 5"),
        (["--kind", "individual", "--clinician", "c-1:facilitator", "--patient", "p-1"],
         "error: invalid_roster: an individual session's clinicians must be one of"),
    ],
)  # fmt: skip
async def test_session_create_refuses_bad_rosters_and_stores_nothing(
    redis_env: str,
    redis_prefix: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, out, err = await _in_thread(capsys, "session", "create", *argv)
    assert (code, out) == (1, "")
    assert err.startswith(message), err
    client = Redis.from_url(redis_env)
    try:
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}:*")] == []
    finally:
        await client.aclose()


async def test_session_create_without_a_server(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMEROOM_PORT", str(free_port()))
    code, _, err = await _in_thread(
        capsys, "session", "create", "--kind", "individual", "--clinician", "c-1",
        "--patient", "p-1",
    )  # fmt: skip
    assert code == 1
    assert err.startswith("error: server_unreachable: no Homeroom server answered at")
    assert "make run" in err


# --- homeroom serve, as a real process ------------------------------------------------------


@dataclass
class Served:
    url: str
    cwd: Path
    env: dict[str, str]
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    def line_with(self, text: str) -> str:
        return next(line for line in self.lines if text in line)


async def _start(env: dict[str, str], cwd: Path, *argv: str) -> Served:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(HOMEROOM), "serve", "--port", str(port), *argv,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", cwd, env, proc)
    async with asyncio.timeout(20):
        while not served.lines or "Press Ctrl+C" not in served.lines[-1]:
            assert proc.stdout is not None
            raw = await proc.stdout.readline()
            assert raw, "homeroom serve exited:\n" + "".join(served.lines)
            served.lines.append(raw.decode())
    return served


async def _drain(served: Served) -> None:
    # The server logs every request to stdout; an unread pipe would eventually block it.
    assert served.proc.stdout is not None
    while raw := await served.proc.stdout.readline():
        served.lines.append(raw.decode())


@pytest.fixture
async def demo(env: dict[str, str], tmp_path: Path) -> AsyncIterator[Served]:
    """``homeroom serve --demo`` on a free port, on the embedded store, stopped by SIGTERM."""
    env = {k: v for k, v in env.items() if k != "HOMEROOM_SECRET"}  # the generated one
    served = await _start(env, tmp_path, "--demo")
    drain = asyncio.create_task(_drain(served))
    yield served
    served.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        assert await served.proc.wait() == 0
    await drain


async def _http(method: str, url: str, **kwargs: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json()


async def _poll_healthz(url: str) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                if (await _http("GET", f"{url}/healthz"))[0] == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)


def _sh(served: Served, command: str) -> subprocess.CompletedProcess[str]:
    """Run a printed command exactly as a newcomer would paste it."""
    return subprocess.run(
        ["bash", "-c", command], cwd=served.cwd, env=served.env,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


async def test_serve_demo_creates_links_that_work(demo: Served) -> None:
    await _poll_healthz(demo.url)
    assert (await _http("GET", f"{demo.url}/readyz"))[0] == 200
    host = demo.line_with("/host#t=").split()[-1]
    join = demo.line_with("/join#t=").split()[-1]
    assert host.startswith(f"{demo.url}/host#t=") and join.startswith(f"{demo.url}/join#t=")
    status, body = await _http(
        "POST", f"{demo.url}/api/links/verify", json={"token": join.split("#t=")[1]}
    )
    assert status == 200 and body["role"] == "patient" and body["kind"] == "individual"
    assert (demo.cwd / "var" / "secret").exists()


async def test_token_then_api_against_a_running_server(demo: Served) -> None:
    await _poll_healthz(demo.url)
    token = await asyncio.to_thread(_sh, demo, f"{HOMEROOM} token --role clinician --subject c-17")
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
    status, created = await _http("POST", f"{demo.url}/api/sessions", json=COUPLES, headers=headers)
    assert status == 201, created
    links = created["links"]
    assert isinstance(links, list)
    partner = links[2]["url"].split("#t=")[1]
    status, verified = await _http("POST", f"{demo.url}/api/links/verify", json={"token": partner})
    assert status == 200 and verified["attendee"] == "p-202"
    status, summary = await _http(
        "GET", f"{demo.url}/api/sessions/{created['session']}", headers=headers
    )
    assert status == 200 and summary["status"] == "scheduled"


async def test_printed_instructions_work_as_written(demo: Served) -> None:
    await _poll_healthz(demo.url)
    create = demo.line_with(" session create ").strip()
    assert f"--url {demo.url}" in create  # the port differs from the default, so it is said
    done = await asyncio.to_thread(_sh, demo, create)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert [link["role"] for link in created["links"]] == ["clinician", "patient"]
    if shutil.which("curl"):
        token_line = demo.line_with("TOKEN=$(").strip()
        curl_line = demo.line_with("curl -s").strip()
        done = await asyncio.to_thread(_sh, demo, f"{token_line}\n{curl_line}")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["kind"] == "individual"


async def test_serve_without_demo_says_how_to_start(env: dict[str, str], tmp_path: Path) -> None:
    served = await _start(env, tmp_path)
    try:
        banner = "".join(served.lines)
        assert "Homeroom is serving http://127.0.0.1:" in banner
        assert "session create --kind individual" in banner
        assert "/join#t=" not in banner
    finally:
        served.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            assert await served.proc.wait() == 0


def test_invalid_settings_stop_start_up(env: dict[str, str]) -> None:
    env = {**env, "HOMEROOM_PORT": "eighty"}
    done = subprocess.run(
        [str(HOMEROOM), "serve"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert "HOMEROOM_PORT: Input should be a valid integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(HOMEROOM), "serve", "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"error: cannot_listen: 127.0.0.1:{port}" in done.stderr
    # Refused before anything started: no embedded Janus (whose files the server already
    # on that port would share), no drain of a server that never served.
    said = done.stdout + done.stderr
    assert "janus_started" not in said and "drained" not in said, said


def test_archive_refuses_a_directory_it_would_not_write_to(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Without REDIS_URL the server writes the archive on its own disk: --dir cannot apply, and
    # is refused before anything is asked of a server (none runs here).
    wanted = tmp_path / "elsewhere"
    code, out, err = _run(
        capsys, "archive", "--from", "2026-12-01", "--to", "2026-12-01", "--dir", str(wanted)
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid_message: --dir works only when"), err
    assert not wanted.exists()
