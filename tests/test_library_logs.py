"""aiohttp's own log lines and the access log, from a real `homeroom serve`: no client
address, token, name, e-mail or phone number, however the request was malformed.

aiohttp logs a request it cannot parse as "Error handling request from <address>" with the
parser's exception, whose message quotes the raw request bytes; and an access line with a
raw path would carry whatever a client put in it. Lines are captured from the process's
output (json format), as a deployment would ship them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.served import COUPLES, ServedNode, token_of

NAME, EMAIL, PHONE = "Quentin Zarathustra", "quentin.z@example.org", "+1 555 013 4477"
EMAIL_IN_URL = EMAIL.replace("@", "%40")


async def _raw(node: ServedNode, request: bytes) -> bytes:
    """Send raw bytes as one HTTP request and read the answer (the server closes)."""
    port = int(node.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()


def _secrets(token: str) -> list[str]:
    words = [*NAME.split(), EMAIL, EMAIL_IN_URL, "example.org", PHONE, "555 013", "5550134477"]
    return [*words, "127.0.0.1", token, token[-40:]]


async def test_no_client_data_in_any_line_of_a_real_server(tmp_path: Path) -> None:
    node = await ServedNode.start(tmp_path, name="n-logs")
    try:
        created = await node.create_session(COUPLES)
        token = token_of(created, "p-201")
        name_path = NAME.replace(" ", "%20")
        malformed = [
            # A header with a control character: aiohttp's parser refuses it, quoting bytes.
            f"GET /join/{token} HTTP/1.1\r\nHost: x\r\nX-Who: {NAME}\x01\r\n\r\n",
            f"GET /api/sessions/{name_path}?e={EMAIL_IN_URL} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: nope{PHONE}\r\n\r\n",
            f"POST /api/links/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {token}\r\n\r\n",
            f"GET /{EMAIL} HTTP/9.{PHONE}\r\n\r\n",
            f"GET /x HTTP/1.1\r\nHost: x\r\n{NAME}: {EMAIL}\r\n\r\n",
        ]
        for text in malformed:
            answer = await _raw(node, text.encode())
            assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:80]
        async with aiohttp.ClientSession() as http:
            for path in (
                f"/join/{token}",
                f"/api/sessions/{name_path}",
                f"/static/{EMAIL_IN_URL}",
                f"/{PHONE.replace(' ', '-')}",
            ):
                async with http.get(node.url + path) as response:
                    assert response.status in (400, 401, 404), path
        await asyncio.sleep(0)  # the last lines are read by the node's drain task
    finally:
        await node.stop()
    # Log lines are JSON objects; the rest is the start-up banner (links, commands).
    lines = [line for line in node.lines if line.startswith("{")]
    assert any('"Error handling request' in line for line in lines), lines
    assert any('"/api/sessions/{session}"' in line for line in lines), lines
    for line in lines:
        entry = json.loads(line)  # one pipeline: every line is the configured JSON
        if entry["event"] == "serving":
            line = line.replace(entry["url"], "")  # the server's own address, not a client's
        for secret in _secrets(token):
            assert secret not in line, (secret, line)
