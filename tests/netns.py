"""A network namespace of one test: a veth pair with addresses of its own, torn down after.

Janus gathers no ICE candidates on loopback, so the media tests run Janus (or any server that
must be reached over a real interface) inside a namespace this module creates, joined to the
root namespace by a veth pair in 10.243.N.0/24 (N unique on the machine while it is in use).
Homeroom and the aiortc peers stay in the root namespace and reach the namespace side of the
pair; nothing is addressed to anything but loopback or the pair.

Needs root and ``ip`` (iproute2); without them the test fails with the reason, never passes.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUBNET = "10.243"
#: Serializes the choice of N between concurrent test runs on the machine.
LOCK_PATH = Path("/tmp/homeroom-netns.lock")
_counter = itertools.count()


@dataclass(frozen=True)
class Namespace:
    """A namespace ``name`` whose ``inner_address`` (on ``inner_link``) is reachable from the root
    namespace through ``outer_link``, which holds ``outer_address``."""

    name: str
    outer_link: str
    inner_link: str
    outer_address: str
    inner_address: str

    @property
    def prefix(self) -> list[str]:
        """Put in front of a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the namespace; the caller stops it (by this pid)."""
        return subprocess.Popen([*self.prefix, *argv], **kwargs)  # type: ignore[call-overload, no-any-return]

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace to completion."""
        return subprocess.run(
            [*self.prefix, *argv], check=True, capture_output=True, text=True, timeout=30
        )


def unavailable_reason() -> str | None:
    """Why a namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return (
            "the media tests create a network namespace (ip netns add) and must run as root; "
            "run them as root (e.g. sudo make test)"
        )
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is missing: the media tests need it (apt-get install iproute2)"
    return None


def require() -> None:
    """Fail the calling test with the reason when no namespace can be made."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.fail(reason, pytrace=False)


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    """Create a namespace with a veth pair (names carry pid + counter), yield it, delete it."""
    require()
    tag = f"{os.getpid() % 100000}x{next(_counter)}"
    name = f"hr{tag}"
    outer, inner = f"hro{tag}", f"hri{tag}"
    with _subnet_lock():
        third = _free_third_octet()
        namespace = Namespace(
            name=name,
            outer_link=outer,
            inner_link=inner,
            outer_address=f"{SUBNET}.{third}.1",
            inner_address=f"{SUBNET}.{third}.2",
        )
        try:
            _create(namespace)
        except BaseException:
            _delete(namespace)
            raise
    try:
        yield namespace
    finally:
        _delete(namespace)


def _create(ns: Namespace) -> None:
    _ip("netns", "add", ns.name)
    _ip("link", "add", ns.outer_link, "type", "veth", "peer", "name", ns.inner_link)
    _ip("link", "set", ns.inner_link, "netns", ns.name)
    _ip("addr", "add", f"{ns.outer_address}/24", "dev", ns.outer_link)
    _ip("link", "set", ns.outer_link, "up")
    inside = ["-n", ns.name]
    _ip(*inside, "addr", "add", f"{ns.inner_address}/24", "dev", ns.inner_link)
    _ip(*inside, "link", "set", ns.inner_link, "up")
    _ip(*inside, "link", "set", "lo", "up")


def _delete(ns: Namespace) -> None:
    # Deleting the namespace also deletes the inner end, and with it the pair; the outer end is
    # deleted explicitly in case the namespace never got it. Both may already be gone.
    subprocess.run(["ip", "link", "del", ns.outer_link], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _free_third_octet() -> int:
    """An N in 1..254 that no interface of the root namespace has an address in."""
    shown = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    used = {int(m) for m in re.findall(rf"inet {re.escape(SUBNET)}\.(\d+)\.", shown)}
    start = os.getpid() % 254
    for step in range(254):
        third = (start + step) % 254 + 1
        if third not in used:
            return third
    raise RuntimeError(f"every {SUBNET}.N.0/24 is in use")


@contextmanager
def _subnet_lock() -> Iterator[None]:
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """A fresh namespace with a veth pair for one test."""
    with network_namespace() as namespace:
        yield namespace
