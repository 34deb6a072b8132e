"""Fixtures of a real Janus inside a test's own network namespace (see tests/netns.py).

Janus listens on the namespace side of the veth pair and gathers ICE there only, so Homeroom
and the aiortc peers in the root namespace reach both its API and its media through the pair.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.janus.config import JanusConfig
from media.janus.process import JanusProcess, find_binary
from tests.netns import Namespace, network_namespace

MISSING = (
    "janus is not installed: the group media tests need the Debian package `janus` "
    "(make test installs it when run as root; or apt-get install janus)"
)
WS_PORT = 8188


def start_janus(
    namespace: Namespace, directory: Path, api_secret: str | None = None
) -> JanusProcess:
    """Start Janus in ``namespace`` and wait for its API on the namespace side of the pair
    (``api_secret``: one shared with other instances, as a pool's are; else a new one)."""
    if find_binary() is None:
        pytest.fail(MISSING, pytrace=False)
    config = JanusConfig(
        ws_ip=namespace.inner_address,
        ws_port=WS_PORT,
        ice_enforce=(namespace.inner_address,),
        # Each namespace has ports of its own; a random range keeps two Janus apart anyway.
        rtp_port_range=_port_range(),
        **({"api_secret": api_secret} if api_secret is not None else {}),
    )
    process = JanusProcess(config, directory, prefix=namespace.prefix)
    process.start()
    try:
        process.wait_listening(timeout=60.0)
    except BaseException:
        process.stop()
        raise
    return process


def _port_range() -> str:
    low = random.randrange(20000, 59000, 1000)
    return f"{low}-{low + 999}"


@pytest.fixture
def janus(tmp_path: Path) -> Iterator[JanusProcess]:
    """A real Janus of this test alone, in a namespace of its own; stopped and deleted after."""
    with network_namespace() as namespace:
        process = start_janus(namespace, tmp_path / "janus")
        try:
            yield process
        finally:
            process.stop()
