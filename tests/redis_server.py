"""A real ``redis-server`` for tests: started on a free port in a temp dir, restartable with AOF."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

MISSING = (
    "redis-server is not on PATH. The store tests run against a real Redis: install the Debian "
    "package `redis-server` (apt-get install redis-server), or set REDIS_URL to a server you run."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process. ``restart()`` keeps its port, directory and append-only file."""

    def __init__(self, directory: Path, *, port: int | None = None, appendfsync: str = "always"):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        # fsync on every write, so a killed server loses nothing it acknowledged; the restart
        # test relies on it.
        self.appendfsync = appendfsync
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING (after loading its AOF)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--dir", str(self.directory),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--logfile", "redis.log",
        ]  # fmt: skip
        # Startup errors (a bad option) go to the console before the log file opens.
        with (self.directory / "console.log").open("ab") as console:
            self._process = subprocess.Popen(args, stdout=console, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """SHUTDOWN cleanly, or with ``kill`` end it with SIGKILL as a crash would."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        if kill:
            process.kill()
        else:
            # NOSAVE skips only the RDB snapshot; the AOF is still flushed and fsynced.
            with self._client(timeout) as client:
                client.shutdown(nosave=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        self._process = None

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same port and directory: data comes back from the AOF."""
        self.stop(kill=kill)
        self.start()

    def _wait_ready(self, timeout: float) -> None:
        client = self._client(0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited early:\n{self._log()}")
                try:
                    if client.ping():
                        return
                except (RedisConnectionError, BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    self.stop(kill=True)
                    raise RuntimeError(f"redis-server did not answer PING:\n{self._log()}")
                time.sleep(0.02)
        finally:
            client.close()

    def _client(self, timeout: float) -> redis.Redis:
        # No client-side retries: they would retry SHUTDOWN for seconds after the server has
        # gone, and while waiting for PING the caller's loop is the retry.
        return redis.Redis(
            port=self.port,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def _log(self) -> str:
        logs = [self.directory / name for name in ("console.log", "redis.log")]
        text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
        return text[-4000:] or "(no log)"
