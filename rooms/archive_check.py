"""An archive or export file checked on its own: every hash chain in it, and its sidecar.

What ``homeroom audit verify --archive`` reports and what ``homeroom attendance summarize``
checks before it bills from a file: a day file of the archiver, the admin audit log's copy, or a
JSON-lines export (the same format as a day file).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rooms.archive import sidecar_path, verify_admin_archive, verify_archive, verify_sidecar
from rooms.audit import ChainReport


class Sidecar(StrEnum):
    OK = "ok"
    #: The file's bytes are not the ones its ``.sha256`` was written for.
    MISMATCH = "mismatch"
    #: No sidecar (an export, or a copy without it): the chains alone were checked.
    ABSENT = "absent"


class BrokenAt(BaseModel):
    """The first break in the file: which chain, at which ``seq``, and why."""

    model_config = ConfigDict(frozen=True)

    chain: str
    seq: int
    reason: str
    detail: str = ""


class ArchiveCheck(BaseModel):
    """The verdict on one file; ``ok`` only when every chain is intact and no sidecar
    disagrees."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    file: str
    kind: Literal["ledger", "admin"]
    sidecar: Sidecar
    chains: int
    first_broken: BrokenAt | None
    reports: list[ChainReport]

    def problem(self) -> str:
        """One sentence naming what is wrong ("" when ok)."""
        if self.first_broken is not None:
            broken = self.first_broken
            where = f"chain {broken.chain} breaks at seq {broken.seq}: {broken.reason}"
            return where + (f" ({broken.detail})" if broken.detail else "")
        if self.sidecar is Sidecar.MISMATCH:
            return f"the file does not match {sidecar_path(Path(self.file)).name}"
        return ""


def check_archive(path: Path) -> ArchiveCheck:
    """Check ``path``; raises OSError when it cannot be read."""
    kind = _kind(path)
    reports = [verify_admin_archive(path)] if kind == "admin" else verify_archive(path)
    sidecar = _sidecar(path)
    broken = next((r for r in reports if r.first_broken is not None), None)
    first = None
    if broken is not None and broken.first_broken is not None:
        first = BrokenAt(chain=broken.chain, **broken.first_broken.model_dump())
    return ArchiveCheck(
        ok=first is None and sidecar is not Sidecar.MISMATCH,
        file=str(path),
        kind=kind,
        sidecar=sidecar,
        chains=len(reports),
        first_broken=first,
        reports=reports,
    )


def _kind(path: Path) -> Literal["ledger", "admin"]:
    """The admin audit log's entries have an actor and an action and no session."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except ValueError:
                return "ledger"  # unreadable: the ledger check reports the line
            admin = isinstance(first, dict) and {"actor", "action"} <= first.keys()
            return "admin" if admin and "session" not in first else "ledger"
    return "ledger"


def _sidecar(path: Path) -> Sidecar:
    if not sidecar_path(path).exists():
        return Sidecar.ABSENT
    return Sidecar.OK if verify_sidecar(path) else Sidecar.MISMATCH
