"""``python -m bench.metrics_cost``: what metering adds to one join lifecycle, in process.

A lifecycle's domain changes (create, clinician joins, patient joins, admit, patient
leaves, clinician ends) run through ``Rooms`` on the embedded store, alternately bare and metered
(web.metered_store + the signaling observer's per-event counts), in rounds so both meet
the same drift. Prints the median microseconds per lifecycle of each and the difference;
compare it with the server CPU per join lifecycle that ``make bench`` reports (a few ms).

CPU time on a loaded machine still moves by tens of percent between rounds; instructions do
not. ``--mode bare|metered --lifecycles N`` runs one mode alone: under
``valgrind --tool=callgrind``, the difference between two N gives instructions per lifecycle
(docs/operations.md has the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from functools import partial

from rooms import lifecycle, membership
from rooms.ids import AttendeeId, EndpointId, NodeId
from rooms.kinds import Role, SessionKind
from rooms.roster import RosterEntry
from rooms.service import CreateSession, Rooms
from rooms.store import MemoryStore, SessionStore
from web.metered_store import metered
from web.metrics import Metrics

LIFECYCLES = 300
ROUNDS = 15
C, P = AttendeeId("c-1"), AttendeeId("p-1")
EC, EP = EndpointId("e-c0001"), EndpointId("e-p0001")
REQUEST = CreateSession(
    kind=SessionKind.INDIVIDUAL,
    roster=[
        RosterEntry(attendee=C, role=Role.CLINICIAN),
        RosterEntry(attendee=P, role=Role.PATIENT),
    ],
)


async def lifecycle_once(rooms: Rooms, metrics: Metrics | None) -> None:
    state = await rooms.create_session(REQUEST, created_by="admin-1")
    session = state.spec.id
    steps = [
        (
            "connect",
            partial(membership.join, endpoint=EC, attendee=C, connection="x1", resume_hash="h"),
        ),
        (
            "connect",
            partial(membership.join, endpoint=EP, attendee=P, connection="x2", resume_hash="h"),
        ),
        ("admit", partial(membership.admit, actor=C, attendee=P)),
        ("leave", partial(membership.leave, endpoint=EP)),
        ("end", partial(lifecycle.end, actor=C)),
    ]
    for name, change in steps:
        done, _ = await rooms.apply(session, change)
        rooms.release(done)
        if metrics is not None:  # what the signaling observer adds per event
            metrics.event(name, None) if name != "connect" else metrics.connect("join")


async def timed(store: SessionStore, metrics: Metrics | None) -> float:
    rooms = Rooms(store, node=NodeId("n-bench"))
    # CPU time of this process, not wall time: on a shared machine the wait for a core is
    # most of the wall time and says nothing about the code.
    started = time.process_time()
    for _ in range(LIFECYCLES):
        await lifecycle_once(rooms, metrics)
    return (time.process_time() - started) / LIFECYCLES * 1e6


async def main() -> None:
    bare: list[float] = []
    meter: list[float] = []
    for _ in range(ROUNDS):
        bare.append(await timed(MemoryStore(), None))
        metrics = Metrics()
        meter.append(await timed(metered(MemoryStore(), metrics), metrics))
    b, m = statistics.median(bare), statistics.median(meter)
    print(f"bare    {b:8.1f} us CPU per lifecycle (median of {ROUNDS} rounds of {LIFECYCLES})")
    print(f"metered {m:8.1f} us CPU per lifecycle")
    print(f"cost    {m - b:8.1f} us per lifecycle ({(m - b) / b:+.1%} of the domain changes)")


async def once(mode: str, lifecycles: int) -> None:
    """One mode alone, for an instruction count under valgrind (see the module doc)."""
    global LIFECYCLES
    LIFECYCLES = lifecycles
    metrics = Metrics() if mode == "metered" else None
    store = metered(MemoryStore(), metrics) if metrics is not None else MemoryStore()
    await timed(store, metrics)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["bare", "metered"])
    parser.add_argument("--lifecycles", type=int, default=LIFECYCLES)
    args = parser.parse_args()
    asyncio.run(once(args.mode, args.lifecycles) if args.mode else main())
