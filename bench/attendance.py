"""Part 3: attendance. Summaries and exports of a generated month; Redis write cost per event.

Floors, measured in the same run: for summaries a bare fold that sums each person's
admitted-to-left time in one pass (no merging, billing, modality or disconnect rules); for
exports the standard library serializing the same rows or bundle with no formatting rules;
for the Redis write a plain XADD of the same event JSON to a stream, against Homeroom's
atomic compare-and-set of the session document plus its event (``RedisStore.transact``).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis

from bench.ledger_month import Month
from bench.params import Params
from bench.report import Report, Row
from bench.servers import SERVER_CORE, RedisProc
from rooms import membership
from rooms.attendance import fhir_bundle, jsonl_lines, load_rules, rows_of, summarize, write_csv
from rooms.attendance.summary import SessionSummary
from rooms.ids import AttendeeId, EndpointId, NodeId, SessionId
from rooms.ledger import PRESENCE_ENDS, PRESENCE_STARTS, Ctx, EventKind, LedgerEvent, emit
from rooms.service import CreateSession, Rooms
from rooms.state import SessionState
from rooms.store.redis import RedisStore

PART = "attendance"
TZ = "America/New_York"
_T = TypeVar("_T")


def timed(fn: Callable[[], _T]) -> tuple[_T, float]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak memory allocated while ``fn`` runs (tracemalloc: what it allocates, not its input)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def floor_fold(events: list[LedgerEvent]) -> dict[tuple[str, str | None], timedelta]:
    """The least a summary must do: one pass, each person's start-to-end time added up."""
    opened: dict[tuple[str, str | None, str | None], datetime] = {}
    present: dict[tuple[str, str | None], timedelta] = {}
    for e in events:
        if e.attendee is None:
            continue
        key = (e.session, e.attendee, e.endpoint)
        if e.kind in PRESENCE_STARTS:
            opened.setdefault(key, e.at)
        elif e.kind in PRESENCE_ENDS and key in opened:
            person = (e.session, e.attendee)
            present[person] = present.get(person, timedelta()) + (e.at - opened.pop(key))
    return present


def summaries_of(month: Month) -> list[SessionSummary]:
    rules = load_rules(files("config").joinpath("billing.toml").read_text("utf-8"))
    return list(summarize(month.events, month.specs, tz=TZ, rules=rules))


def run_summaries(p: Params, report: Report) -> None:
    month, gen_seconds = timed(lambda: Month(p.events))
    n = len(month.events)
    summaries, seconds = timed(lambda: summaries_of(month))
    _, floor_seconds = timed(lambda: floor_fold(month.events))
    peak = peak_bytes(lambda: summaries_of(month))
    floor_peak = peak_bytes(lambda: floor_fold(month.events))
    rows = list(rows_of(summaries))
    report.notes.append(
        f"attendance month: {n:,} events, {len(month.specs)} sessions over {month.days} "
        f"weekdays, {len(rows):,} rows; generated in {gen_seconds:.1f} s"
    )
    add = _adder(report)
    add("summarize: events per second", "1/s", n / seconds, n / floor_seconds)
    add("summarize: peak memory", "MB", peak / 1e6, floor_peak / 1e6)

    def csv_floor() -> str:
        out = io.StringIO(newline="")
        csv.writer(out).writerows([str(v) for v in _fields(r)] for r in rows)
        return out.getvalue()

    def csv_homeroom() -> str:
        out = io.StringIO(newline="")
        write_csv(rows, out)
        return out.getvalue()

    bundle = fhir_bundle(summaries)
    exports: list[tuple[str, Callable[[], str], Callable[[], str]]] = [
        ("CSV", csv_homeroom, csv_floor),
        ("FHIR", lambda: json.dumps(fhir_bundle(summaries)), lambda: json.dumps(bundle)),
        ("JSONL", lambda: "\n".join(jsonl_lines(month.events, month.specs)),
         lambda: "\n".join(json.dumps(_plain(e)) for e in month.events)),
    ]  # fmt: skip
    for name, homeroom, floor in exports:
        text, h_seconds = timed(homeroom)
        floor_text, f_seconds = timed(floor)
        add(f"export {name} of the month: time", "s", h_seconds, f_seconds)
        add(f"export {name} of the month: size", "MB", _mb(text), _mb(floor_text))


async def run_writes(p: Params, out: Path, report: Report) -> None:
    redis = RedisProc(out / "redis-attendance", core=SERVER_CORE)
    # The store as a node builds it; the floor a bare client (no timeouts, no limit).
    store = RedisStore.from_url(redis.url, prefix="bench-writes")
    client = Redis.from_url(redis.url, decode_responses=True, socket_timeout=None)
    try:
        rooms = Rooms(store, node=NodeId("bench-1"))
        session = await _live_session(rooms)
        homeroom = await _measure(redis, p.redis_writes, lambda: rooms.apply(session, _toggle_lock))
        state = await rooms.get_session(session)
        sample = _toggle_lock(state, rooms.ctx())[0].model_dump_json()
        key = "bench-writes:plain"
        floor = await _measure(redis, p.redis_writes, lambda: client.xadd(key, {"e": sample}))
        add = _adder(report)
        add("Redis write per event: wall", "us", homeroom[0], floor[0])
        add("Redis write per event: client CPU", "us", homeroom[1], floor[1])
        add("Redis write per event: redis-server CPU", "us", homeroom[2], floor[2])
    finally:
        await store.close()
        await client.aclose()
        redis.stop()


async def _live_session(rooms: Rooms) -> SessionId:
    """An individual session with its clinician and patient connected: a realistic document."""
    req = CreateSession.model_validate(
        {
            "kind": "individual",
            "roster": [
                {"attendee": "c-1", "role": "clinician"},
                {"attendee": "p-1", "role": "patient"},
            ],
        }
    )
    state = await rooms.create_session(req, created_by="bench")
    for n, who in enumerate(("c-1", "p-1")):

        def join(s: SessionState, ctx: Ctx, who: str = who, n: int = n) -> list[LedgerEvent]:
            endpoint = EndpointId(f"e-bench{n:04d}")
            return membership.join(s, ctx, endpoint, AttendeeId(who), f"sid-{n}", "0" * 64)

        await rooms.apply(state.spec.id, join)
    return state.spec.id


def _toggle_lock(state: SessionState, ctx: Ctx) -> list[LedgerEvent]:
    """A small change with one event (what ``lock`` does, without its authorization)."""
    state.locked = not state.locked
    kind = EventKind.SESSION_LOCKED if state.locked else EventKind.SESSION_UNLOCKED
    return [emit(state, ctx, kind, actor="c-1")]


async def _measure(
    redis: RedisProc, n: int, write: Callable[[], Any]
) -> tuple[float, float, float]:
    """Sequential writes: (wall, client CPU, redis-server CPU) in microseconds per write."""
    for _ in range(min(50, n)):
        await write()
    gc.collect()
    wall, cpu, server = time.perf_counter(), time.process_time(), redis.cpu()
    for _ in range(n):
        await write()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1e6 * wall / n, 1e6 * cpu / n, 1e6 * (redis.cpu() - server) / n


async def run(p: Params, out: Path, report: Report) -> None:
    run_summaries(p, report)
    await run_writes(p, out, report)


def _adder(report: Report) -> Callable[[str, str, float | None, float | None], None]:
    def add(figure: str, unit: str, homeroom: float | None, floor: float | None) -> None:
        report.add(Row(PART, figure, unit, homeroom, floor))

    return add


def _fields(row: Any) -> tuple[Any, ...]:
    return (
        row.session, row.kind, row.purpose, row.date_of_service, row.attendee, row.role,
        row.first_join, row.last_leave, row.present, row.video, row.audio, row.disconnects,
        row.suggested_code, row.modifier, row.pos, row.status, row.explanation,
    )  # fmt: skip


def _plain(e: LedgerEvent) -> dict[str, Any]:
    return {
        "seq": e.seq, "at": e.at.isoformat(), "session": e.session, "kind": e.kind,
        "attendee": e.attendee, "endpoint": e.endpoint, "node": e.node, "actor": e.actor,
        "data": e.data,
    }  # fmt: skip


def _mb(text: str) -> float:
    return len(text.encode("utf-8")) / 1e6
