"""requirements.lock pins everything pyproject.toml asks for, each pin with its hashes.

A dependency added to pyproject.toml without `make lock` would install nowhere (make, the
Dockerfile and CI install from the lock alone): this fails first, naming it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def lock_pins(name: str = "requirements.lock") -> dict[str, tuple[Version, int]]:
    """Each pinned package in a lock with its version and how many hashes it carries."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def declared(*, extras: bool = True) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values() if extras else ():
        texts.extend(extra)
    return [Requirement(text) for text in texts]


def pinned(name: str) -> str:
    """The exact version pyproject.toml pins ``name`` to (a library whose internals Homeroom
    overrides: docs/performance.md); fails if it is not pinned exactly."""
    for requirement in declared(extras=False):
        if canonicalize_name(requirement.name) == canonicalize_name(name):
            specs = list(requirement.specifier)
            exact = len(specs) == 1 and specs[0].operator == "=="
            assert exact, f"{name} must be pinned exactly, not {requirement.specifier}"
            return specs[0].version
    raise AssertionError(f"{name} is not a declared dependency")


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = lock_pins()
    problems = []
    for requirement in declared():
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement.name}: not in requirements.lock")
        elif not requirement.specifier.contains(pin[0], prereleases=True):
            problems.append(f"{requirement.name}=={pin[0]} is outside {requirement.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_every_pin_carries_a_hash() -> None:
    pins = lock_pins()
    assert len(pins) > 20, "the lock should pin the whole tree, not only direct dependencies"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    assert not unhashed, f"pins without --hash (pip --require-hashes refuses them): {unhashed}"


def test_the_images_lock_is_the_runtime_part_of_the_same_pins() -> None:
    full, app = lock_pins(), lock_pins("requirements-app.lock")
    differing = sorted(
        name for name, (version, _) in app.items() if full.get(name, (None,))[0] != version
    )
    assert not differing, f"requirements-app.lock disagrees with requirements.lock: {differing}"
    missing = [r.name for r in declared(extras=False) if canonicalize_name(r.name) not in app]
    assert not missing, f"run `make lock`: runtime dependencies missing from the image: {missing}"
    assert "pytest" not in app and "playwright" not in app, "test tools do not go in the image"
    assert all(hashes for _, hashes in app.values())
