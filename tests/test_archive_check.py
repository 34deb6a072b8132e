"""Archives you can check: `homeroom audit verify --archive FILE`, and `homeroom attendance
summarize` refusing a file whose chains are broken unless told --unverified."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rooms.archive import archive_admin_log, sidecar_path
from rooms.archive_check import Sidecar, check_archive
from rooms.store import MemoryStore
from tests.test_archive import DAY, archived_day, edit_line, local
from web.cli import main


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HOMEROOM_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOMEROOM_SECRET", "a1" * 32)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_an_intact_day_file_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sid = await archived_day(tmp_path)
    code, out, err = run(capsys, "audit", "verify", "--archive", str(path))
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["ok"] is True and report["chains"] == 1 and report["first_broken"] is None
    assert report["file"] == str(path) and sid in path.read_text()
    assert (report["kind"], report["sidecar"]) == ("ledger", "ok")


async def test_one_changed_byte_fails_verify_naming_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sid = await archived_day(tmp_path)
    edit_line(path, 6, '"seq":6,"at":"2026-11-02T15:0', '"seq":6,"at":"2026-11-02T15:1')
    code, out, _ = run(capsys, "audit", "verify", "--archive", str(path))
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["sidecar"] == "mismatch"
    assert report["first_broken"] == {
        "chain": sid, "seq": 6, "reason": "hash mismatch", "detail": ""
    }  # fmt: skip


async def test_a_cut_off_tail_is_caught_by_the_sidecar(tmp_path: Path) -> None:
    path, _ = await archived_day(tmp_path)
    # Every remaining chain is intact; only the sidecar can tell the file lost something.
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    tail_cut = check_archive(path)
    assert tail_cut.first_broken is None and tail_cut.sidecar is Sidecar.MISMATCH
    assert not tail_cut.ok and "does not match" in tail_cut.problem()
    sidecar_path(path).unlink()
    assert check_archive(path).sidecar is Sidecar.ABSENT


async def test_the_admin_log_copy_verifies_and_its_tampering_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = MemoryStore()
    for n in range(3):
        await store.append_admin_audit("admin-1", "attendance.export", {"n": n}, local(DAY, 9))
    copied = await archive_admin_log(store, tmp_path)
    code, out, _ = run(capsys, "audit", "verify", "--archive", str(copied.path))
    assert code == 0 and json.loads(out)["kind"] == "admin" and json.loads(out)["chains"] == 1
    edit_line(copied.path, 1, '"admin-1"', '"admin-2"')
    code, out, _ = run(capsys, "audit", "verify", "--archive", str(copied.path))
    assert code == 1 and json.loads(out)["first_broken"]["seq"] == 2


async def test_summarize_refuses_a_broken_chain_unless_unverified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sid = await archived_day(tmp_path)
    code, intact, err = run(capsys, "attendance", "summarize", "--events", str(path))
    assert code == 0 and err == "" and sid in intact
    edit_line(path, 6, '"seq":6,"at":"2026-11-02T15:0', '"seq":6,"at":"2026-11-02T15:1')
    code, out, err = run(capsys, "attendance", "summarize", "--events", str(path))
    assert (code, out) == (1, "")  # nothing summarized
    assert err.startswith(f"error: chain_broken: --events: chain {sid} breaks at seq 6")
    assert "--unverified" in err and "audit verify --archive" in err
    code, out, err = run(capsys, "attendance", "summarize", "--events", str(path), "--unverified")
    assert code == 0 and sid in out
    assert err.startswith(f"warning: unverified input: chain {sid} breaks at seq 6")


def test_bad_uses_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nowhere.jsonl")
    code, out, err = run(capsys, "audit", "verify", "--archive", missing)
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid_message: --archive: No such file")
    code, _, err = run(capsys, "audit", "verify", "--archive", missing, "--from", "2026-11-02")
    assert code == 1 and "leave out --from, --to and --url" in err
    code, _, err = run(capsys, "attendance", "summarize", "--events", missing)
    assert code == 1 and err.startswith("error: invalid_message: --events: No such file")
