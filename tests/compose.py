"""docker-compose.yml as docker-compose resolves it (``docker-compose config``, no daemon).

The resolved file is YAML; it is read with the YAML parser docker-compose itself runs on
(the interpreter of its own script), so the tests need no YAML library of their own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISSING = (
    "docker-compose is missing: make test installs the Debian package when run as root "
    "(or apt-get install docker-compose)"
)


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(MISSING, pytrace=False)
    return found


def run_config(env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of the repository's file with ``env_file``'s variables."""
    argv = [docker_compose(), "--env-file", str(env_file), "--profile", "scale", "config"]
    return subprocess.run(
        [*argv, *extra], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@cache
def resolved() -> dict[str, Any]:
    """The compose file resolved with .env.example, as a dict."""
    done = run_config(ROOT / ".env.example")
    assert done.returncode == 0, done.stderr
    script = Path(docker_compose()).read_text().splitlines()[0]
    interpreter = script.removeprefix("#!").split()
    to_json = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
    as_json = subprocess.run(
        [*interpreter, "-c", to_json],
        input=done.stdout, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    parsed: dict[str, Any] = json.loads(as_json.stdout)
    return parsed


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name: value for name, value in pairs}


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (the files it is started from)."""
    mounts: dict[str, Path] = {}
    for volume in resolved()["services"][service].get("volumes", []):
        if isinstance(volume, dict) and volume.get("type") == "bind":
            mounts[volume["target"]] = Path(volume["source"])
        elif isinstance(volume, str) and volume.startswith("/"):
            source, target = volume.split(":")[:2]
            mounts[target] = Path(source)
    return mounts
