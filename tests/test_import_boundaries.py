"""Imports point one way: web/signaling/media -> rooms -> (store). Checked on the source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: What each package must never import (top-level module names).
FORBIDDEN: dict[str, frozenset[str]] = {
    # The domain knows nothing about transports, media or the process's configuration:
    # settings are passed in as plain values, so domain tests need no environment.
    "rooms": frozenset(
        {"aiohttp", "socketio", "engineio", "aiortc", "av", "web", "signaling", "media", "config"}
    ),
    "signaling": frozenset({"web"}),
    "media": frozenset({"web", "signaling"}),
    # Settings and data files sit under the outer packages; they may use domain types.
    "config": frozenset({"web", "signaling", "media", "aiohttp", "socketio"}),
}


def imported_modules(source: str, package: str) -> Iterator[str]:
    """Top-level names of everything ``source`` imports, relative imports resolved to
    ``package`` (this tree's packages are one level deep at the top)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield package if node.level else (node.module or "").split(".")[0]


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    files = modules_of(package)
    assert files, f"{package}/ has no modules"
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_modules(path.read_text(), package)
        if name in FORBIDDEN[package]
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import aiohttp.web", "aiohttp"),
        ("from socketio import AsyncServer", "socketio"),
        ("if TYPE_CHECKING:\n    from web.app import ROOMS", "web"),
        ("def f():\n    import config.settings", "config"),
        ("from . import kinds", "rooms"),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, found: str) -> None:
    """The walk must catch nested, conditional and dotted imports, or the test above is empty."""
    assert found in set(imported_modules(source, "rooms"))
