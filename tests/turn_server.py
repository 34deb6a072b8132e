"""A real coturn (``turnserver``) of one test, inside the test's own network namespace, started
from config/coturn/turnserver.conf: the very file docker-compose.yml mounts.

The file denies relaying to private and loopback ranges; the test allows exactly the one
namespace address coturn listens and relays on (``--allowed-peer-ip``), so the relays reach
each other there and nothing else. The other flags are what docker-compose.yml passes
(``--static-auth-secret``, ``--realm``) and what a test must own: its addresses, log, pid file
and user database in the test's directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns import Namespace

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config/coturn/turnserver.conf"
MISSING = (
    "turnserver is missing: the TURN tests need the Debian package coturn "
    "(make test installs it when run as root; or apt-get install coturn)"
)
PORT = 3478
#: A STUN Binding request (RFC 5389): coturn answers it without credentials once listening.
_MAGIC = bytes.fromhex("2112a442")


@dataclass
class TurnServer:
    """A turnserver process in ``namespace``, reachable at ``url``."""

    namespace: Namespace
    secret: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def config_path() -> Path:
        return CONFIG

    @property
    def url(self) -> str:
        return f"turn:{self.namespace.inner_address}:{PORT}?transport=udp"

    @property
    def log_text(self) -> str:
        # coturn names its log file with a date suffix when given a path.
        return "".join(
            path.read_text(errors="replace") for path in self.directory.glob("turn*.log")
        )

    def argv(self) -> list[str]:
        binary = shutil.which("turnserver") or "/usr/bin/turnserver"
        inner = self.namespace.inner_address
        return [
            binary, "-c", str(CONFIG),
            # What docker-compose.yml adds to the file:
            f"--static-auth-secret={self.secret}", "--realm=homeroom.test",
            # This test's own: its address (and no other) as listener, relay and allowed peer.
            f"--listening-ip={inner}", f"--relay-ip={inner}", f"--allowed-peer-ip={inner}",
            # --verbose: a line per allocation, which the tests read.
            f"--log-file={self.directory / 'turn.log'}", "--no-stdout-log", "--verbose",
            f"--pidfile={self.directory / 'turnserver.pid'}",
            f"--userdb={self.directory / 'turndb'}",
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> None:
        if shutil.which("turnserver") is None and not Path("/usr/bin/turnserver").exists():
            pytest.fail(MISSING, pytrace=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = self.namespace.popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_answering(timeout)

    def _wait_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.5)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"turnserver exited at start-up:\n{self.log_text}")
                request = b"\x00\x01\x00\x00" + _MAGIC + os.urandom(12)
                probe.sendto(request, (self.namespace.inner_address, PORT))
                try:
                    answer = probe.recv(2048)
                except TimeoutError:
                    continue
                if answer[:2] == b"\x01\x01" and answer[8:20] == request[8:20]:
                    return
        raise RuntimeError(f"turnserver did not answer within {timeout} s:\n{self.log_text}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
