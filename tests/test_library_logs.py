"""Every log line of a real `homeroom serve`, from every logger (Homeroom's, aiohttp's,
python-socketio's and python-engineio's, asyncio's), at debug and at info level: no client
address, link or staff token, name, e-mail (plain or written ``%40``) or phone number, through
whatever input path a client puts them in: URL paths, query strings, headers (User-Agent,
Referer, Authorization, X-Forwarded-For, Cookie, Origin), malformed HTTP sent as raw bytes,
socket.io connect auth, event payloads and malformed frames, and the CLI's arguments.

aiohttp logs a request it cannot parse as "Error handling request from <address>" with the
parser's exception, whose message quotes the raw request bytes; python-engineio writes the
session id of a query string and the Origin header into its messages itself; an access line
with a raw path would carry whatever a client put in it. Lines are captured from the process's
output (json format), as a deployment would ship them, so nothing can log around the capture.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from rooms.tokens import StaffRole, issue_staff_token
from tests.served import COUPLES, HOMEROOM, ServedNode, token_of
from tests.signaling_harness import SECRET, connect_error
from tests.test_malformed_frames import send
from tests.test_websocket import RawClient

NAME, EMAIL, PHONE = "Quentin Zarathustra", "quentin.z@example.org", "+1 555 013 4477"
EMAIL_IN_URL = EMAIL.replace("@", "%40")
NAME_IN_URL = NAME.replace(" ", "%20")
#: The address a proxy says the client has (HOMEROOM_TRUST_FORWARDED_FOR is on).
FORWARDED = "203.0.113.77"
#: A client's websocket close frame (masked, no payload).
CLOSE = bytes((0x88, 0x80)) + os.urandom(4)
#: Headers a browser (or someone posing as one) sends with every request.
HEADERS = {
    "User-Agent": f"{NAME} <{EMAIL}> {PHONE}",
    "Referer": f"https://clinic.example/join?who={NAME_IN_URL}&e={EMAIL_IN_URL}",
    "X-Forwarded-For": FORWARDED,
    "Cookie": f"who={NAME_IN_URL}; e={EMAIL_IN_URL}; phone={PHONE.replace(' ', '')}",
}


def _secrets(*tokens: str) -> list[str]:
    words = [*NAME.split(), EMAIL, EMAIL_IN_URL, "example.org", PHONE, "555 013", "5550134477"]
    words += ["555-013", "+15550134477", FORWARDED, "127.0.0.1"]
    return [*words, *tokens, *(t[-40:] for t in tokens)]


async def _raw(node: ServedNode, request: bytes, *, then_eof: bool = False) -> bytes:
    """Send raw bytes as one HTTP request and read the answer until the server closes;
    ``then_eof``: the client stops sending (half-close) right after them."""
    port = int(node.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    if then_eof:
        writer.write_eof()
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            return await reader.read(1 << 20)
    finally:
        writer.close()


def _malformed(token: str, staff: str) -> list[str]:
    """Requests aiohttp's parser refuses, or that the server must refuse, each holding client
    data."""
    pad = f"X-Pad: {token * (9000 // len(token) + 1)}"
    verify = "POST /api/links/verify HTTP/1.1\r\nHost: x\r\n"
    return [
        # A header with a control character: aiohttp's parser refuses it, quoting bytes.
        f"GET /join/{token} HTTP/1.1\r\nHost: x\r\nX-Who: {NAME}\x01\r\n\r\n",
        f"GET /api/sessions/{NAME_IN_URL}?e={EMAIL_IN_URL} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: nope{PHONE}\r\n\r\n",
        f"{verify}Transfer-Encoding: {token}\r\n\r\n",
        f"GET /{EMAIL} HTTP/9.{PHONE}\r\n\r\n",
        f"GET /x HTTP/1.1\r\nHost: x\r\n{NAME}: {EMAIL}\r\n\r\n",
        f"{EMAIL} /join HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /join/{token}\r\n\r\n",
        f"GET /join?t={token} HTTP/1.1\r\nHost: x\r\n{pad}\r\n\r\n",
        f"GET /admin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {staff}\x7f{NAME}\r\n\r\n",
        f"GET /join HTTP/1.1\r\nHost: \xff{NAME}\r\nCookie: t={token}\x00\r\n\r\n",
        # A chunked body whose chunk size is a name.
        "POST /api/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: Bearer {staff}\r\n\r\n{NAME}\r\n{EMAIL}\r\n0\r\n\r\n",
        # Content-Length and body disagree: more body than declared.
        f"{verify}Content-Length: 3\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        f'{{"token": "{token}"}}',
    ]


def _cut_short(token: str) -> str:
    """A body cut short: the client declares 400 bytes, sends a token, and stops sending."""
    return (
        "POST /api/links/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f'Content-Length: 400\r\n\r\n{{"token": "{token}", "name": "{NAME}"'
    )


def _requests(token: str, staff: str, session: str) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path and query, extra headers, JSON body or None) of well-formed requests."""
    basic = base64.b64encode(f"{EMAIL}:{PHONE}".encode()).decode()
    auths = [f"Bearer {token}", f"Bearer {staff}x", f"Basic {basic}", f"Bearer {NAME}", staff]
    origin = {"Origin": f"https://{NAME.replace(' ', '')}.example.org"}
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", f"/join/{token}", {}, None),
        ("GET", f"/join?t={token}&name={NAME_IN_URL}&email={EMAIL_IN_URL}&phone={PHONE}", {}, None),
        ("GET", f"/api/sessions/{NAME_IN_URL}", {"Authorization": f"Bearer {staff}"}, None),
        ("GET", f"/api/sessions/{session}?who={EMAIL_IN_URL}", {"Authorization": auths[0]}, None),
        ("GET", f"/api/sessions?clinician={NAME_IN_URL}", {"Authorization": auths[1]}, None),
        ("GET", f"/api/attendance?attendee={EMAIL_IN_URL}&from={PHONE}", {}, None),
        ("GET", f"/static/{EMAIL_IN_URL}", {}, None),
        ("GET", f"/{PHONE.replace(' ', '-')}", {}, None),
        ("GET", f"/socket.io/{token}", {}, None),
        ("GET", f"/socket.io/?EIO=4&transport=polling&sid={token}", {}, None),
        ("GET", f"/socket.io/?EIO=4&transport=websocket&sid={NAME_IN_URL}", {}, None),
        ("POST", f"/socket.io/?EIO=4&transport=polling&sid={EMAIL_IN_URL}", {}, None),
        ("GET", f"/socket.io/?EIO={EMAIL_IN_URL}&transport=websocket", {}, None),
        ("GET", "/socket.io/?EIO=4&transport=websocket", origin, None),
        ("GET", "/socket.io/?EIO=4&transport=polling", origin, None),
        ("POST", "/api/links/verify", {}, {"token": token}),  # accepted: the token still unlogged
        ("POST", "/api/links/verify", {}, {"token": f"{NAME} {EMAIL} {PHONE}"}),
        ("POST", "/api/links/verify", {"Content-Type": "text/plain"}, {"token": NAME}),
        (
            "POST",
            "/api/sessions",
            {"Authorization": f"Bearer {staff}"},
            {"kind": "individual", "roster": [{"attendee": NAME, "role": "patient"}]},
        ),
        ("POST", "/api/tokens/revoke", {"Authorization": f"Bearer {staff}"}, {"token": EMAIL}),
        ("GET", "/metrics", {"Authorization": auths[1]}, None),
        ("PROPFIND", f"/join/{token}", {}, None),
    ]
    requests += [("GET", "/api/sessions", {"Authorization": a}, None) for a in auths]
    return requests


async def _http(node: ServedNode, token: str, staff: str, session: str) -> None:
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        for method, path, headers, body in _requests(token, staff, session):
            data = json.dumps(body).encode() if body is not None else None
            async with http.request(method, node.url + path, headers=headers, data=data) as answer:
                await answer.read()
                assert answer.status < 500, (method, path, answer.status)


async def _socketio(node: ServedNode, token: str, staff: str) -> None:
    # Connects refused for what their auth holds, with a browser's headers.
    for auth in (
        {"token": f"{NAME} {PHONE} {EMAIL}"},
        {"resume": f"{token}.{NAME}"},
        {"token": staff},
        {"token": token, "name": NAME, "email": EMAIL},
    ):
        assert "error" in await connect_error(node.url, **auth)
    # A real join with a browser's headers, then events carrying client data everywhere.
    patient = socketio.AsyncClient(reconnection=False)
    await patient.connect(
        node.url, auth={"v": 1, "token": token}, headers=HEADERS, transports=["websocket"]
    )
    for event, data in (
        ("hello", {"name": NAME, "email": EMAIL}),
        (f"hello {EMAIL}", {}),
        ("attach", {"token": staff}),
        ("mute", {"attendee": EMAIL}),
        ("admit", {"attendee": NAME}),
        ("signal", {"to": f"e-{PHONE}", "description": {"type": "offer", "sdp": f"s={NAME}"}}),
        ("leave", {"reason": f"{NAME} {PHONE} {token}"}),
    ):
        reply = await patient.call(event, data, timeout=10)
        assert isinstance(reply, dict), (event, reply)
        assert not any(s in json.dumps(reply) for s in (NAME, EMAIL, PHONE, token)), reply
    await patient.disconnect()
    # Malformed frames holding the same, before and after a connect.
    port = int(node.url.rsplit(":", 1)[1])
    for frames in (
        [f'40{{"v":1,"token":"{token}'],
        [f'40{{"v":1,"token":"{token}"}}', f'42["{NAME}",{{"email":"{EMAIL}"'],
        [f'40{{"v":1,"token":"{token}"}}', f'42[{"[" * 3000}"{PHONE}"{"]" * 3000}]'],
        [f"4\u0664{EMAIL}"],
        [f"\u0664{token}"],
        [f'42["hello",{{"who":"{NAME}"}}]'],
        [f'451-["hello",{{"_placeholder":true,"num":0,"n":"{NAME}"}}]'],
        [f'40/{EMAIL_IN_URL},{{"v":1,"token":"{token}"}}'],
        [f'49{{"v":1,"token":"{token}"}}'],
    ):
        raw = await RawClient.open(port)
        await raw.read_text()  # OPEN
        for text in frames:
            send(raw, text)
        raw.writer.write(CLOSE)  # then a close of our own: whatever the frames did, it ends
        async with asyncio.timeout(30):
            try:
                while await raw.next_not_ping() is not None:
                    pass
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
        raw.close()


async def _cli(node: ServedNode, token: str) -> list[str]:
    """The CLI given names and e-mails as arguments: what it prints (it logs to stderr)."""
    env = {**os.environ, "HOMEROOM_SECRET": SECRET, "HOMEROOM_LOG_LEVEL": "debug"}
    env.pop("REDIS_URL", None)
    out: list[str] = []
    for args in (
        ["session", "create", "--kind=individual", "--clinician=c-1", f"--patient={NAME}"],
        ["token", "revoke", f"{NAME} {EMAIL} {PHONE}"],
        ["token", "revoke", token],
    ):
        proc = await asyncio.create_subprocess_exec(
            str(HOMEROOM), *args, "--url", node.url, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode != 0, args  # each is refused
        out += err.decode().splitlines()
    return out


@pytest.mark.parametrize("level", ["debug", "info"])
async def test_no_client_data_in_any_line_through_any_input_path(
    tmp_path: Path, level: str
) -> None:
    node = await ServedNode.start(
        tmp_path,
        name="n-logs",
        HOMEROOM_LOG_LEVEL=level,
        # The limits look at the client's address (and the proxy's word for it): on, roomy.
        HOMEROOM_RATE_LIMIT_PER_ADDRESS="100000",
        HOMEROOM_RATE_LIMIT_PER_TOKEN="100000",
        HOMEROOM_TRUST_FORWARDED_FOR="true",
    )
    try:
        created = await node.create_session(COUPLES)
        token, session = token_of(created, "p-201"), created["session"]
        now = datetime.now(UTC)
        staff = issue_staff_token(SECRET, StaffRole.ADMIN, "admin-1", now, timedelta(hours=1))
        for text in _malformed(token, staff):
            answer = await _raw(node, text.encode())
            assert answer.split(b" ", 2)[1][:1] in (b"2", b"4"), (text[:60], answer[:80])
        # The client stopped sending: it may get no answer at all, and no 500 was logged.
        await _raw(node, _cut_short(token).encode(), then_eof=True)
        await _http(node, token, staff, session)
        await _socketio(node, token, staff)
        cli = await _cli(node, token)
    finally:
        await node.stop()
    lines = node.lines
    # Log lines are JSON objects; the rest is the start-up banner (links, commands), printed
    # once: plain text anywhere else is a line that skipped the pipeline.
    first = next(i for i, line in enumerate(lines) if line.startswith("Homeroom is serving"))
    banner = first
    while banner < len(lines) and not lines[banner].startswith("{"):
        banner += 1
    stray = [
        line for i, line in enumerate(lines) if not line.startswith("{") and not first <= i < banner
    ]
    assert stray == [], stray
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    loggers = {entry.get("logger") for entry in entries}
    assert {"aiohttp.server"} <= loggers, loggers
    assert any(entry["event"] == "http_request" for entry in entries)
    assert any(entry.get("path") == "/api/sessions/{session}" for entry in entries)
    if level == "debug":
        assert any(entry["level"] == "debug" for entry in entries), "nothing at debug level"
    # What clients did wrong is not the server's error.
    assert [e for e in entries if e["level"] in ("error", "critical")] == []
    leaks = []
    for line in lines + cli:
        line = line.replace(node.url, "")  # the server's own address, not a client's
        leaks += [(secret, line) for secret in _secrets(token, staff) if secret in line]
    assert leaks == [], leaks
    print(f"\n{len(lines)} lines from {sorted(map(str, loggers))} at {level}")
