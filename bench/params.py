"""How big each benchmark runs: the full run, and a quick one that checks the bench works."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Params:
    #: Offered join lifecycles per second for the CPU and latency figures.
    rate: float = 50.0
    #: Seconds at the offered rate (each of: alone, then with the idle endpoints connected).
    rate_seconds: float = 30.0
    #: Rounds the CPU figure's seconds at that rate are split into, servers taking turns.
    cpu_rounds: int = 5
    #: Concurrent lifecycles, and seconds, for the saturation figure.
    workers: int = 64
    saturate_seconds: float = 20.0
    #: Idle connected endpoints for the RSS figure (and the latency under that load).
    idle: int = 2000
    #: Patients per group session holding idle endpoints (Homeroom; 12 is the default group
    #: capacity), members per room (floor).
    idle_per_session: int = 12
    #: Media start: calls per session kind.
    media_runs: int = 20
    #: Attendance: ledger events of the generated month, and Redis writes per figure.
    events: int = 1_000_000
    redis_writes: int = 5000
    #: Room views: patients joining one waiting room (then four times as many; a roster
    #: holds at most 200).
    view_joins: int = 40
    #: Overrides against the libraries' paths: seconds at the rate per server, in rounds.
    override_seconds: float = 60.0
    override_rounds: int = 12
    #: Profiler: seconds of samples under saturation.
    profile_seconds: float = 20.0


FULL = Params()
QUICK = replace(
    FULL,
    rate_seconds=4.0,
    cpu_rounds=2,
    workers=32,
    saturate_seconds=4.0,
    idle=300,
    media_runs=3,
    events=50_000,
    redis_writes=500,
    profile_seconds=5.0,
    view_joins=10,
    override_seconds=4.0,
    override_rounds=2,
)
