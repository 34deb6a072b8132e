"""One Janus process started from config/janus/: rendered config, start, wait, stop.

The embedded default of ``homeroom serve`` and the media tests both start Janus through this;
the tests put a command prefix in front (``ip netns exec NAME``) to run it in a namespace.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from media.janus.config import JanusConfig

BINARY_NAMES = ("janus",)
SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin"


def find_binary() -> str | None:
    """The janus executable (the Debian package installs /usr/bin/janus), or None."""
    found = shutil.which("janus") or shutil.which("janus", path=SEARCH_PATH)
    return found


class JanusProcess:
    """A Janus child process; ``directory`` holds its rendered configuration and its log."""

    def __init__(
        self,
        config: JanusConfig,
        directory: Path,
        *,
        prefix: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        found = binary or find_binary()
        if found is None:
            raise FileNotFoundError("janus is not installed (Debian package `janus`)")
        self.config = config
        self.directory = directory
        self.binary = found
        self.prefix = list(prefix)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "janus.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start Janus (returns at once; ``wait_listening`` waits for its API)."""
        jcfg = self.config.render(self.directory / "conf")
        argv = [*self.prefix, self.binary, "-C", str(jcfg), "-F", str(jcfg.parent)]
        argv += ["-N", "-L", str(self.log_path)]
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Block until the API port accepts connections; raise if Janus exits or never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"janus exited at start-up; see {self.log_path}")
            try:
                with socket.create_connection((self.config.ws_ip, self.config.ws_port), 1.0):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"janus did not listen within {timeout} s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Janus (SIGTERM, then SIGKILL) and reap it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would; the supervisor and the failover tests use it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
