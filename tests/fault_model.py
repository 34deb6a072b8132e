"""What the clients did, and the ledger checked against it event by event.

Each client notes its own actions as it takes them (``Record.did``): which endpoint, which
attendance events the action implies, and the instants around it as the client saw them (when
it first tried, when the server finally said yes). The ledger must then hold exactly those
events: for every endpoint, the same kinds for the same attendees in the same order, nothing
more and nothing less, each stamped inside its action's window. Only timestamps have a
tolerance, and only where the client cannot see the server's instant:

- an acknowledged action (join, admit, leave, resume): none, the server stamps it between the
  first attempt being sent and the final answer arriving (one machine, one clock);
- a hang-up: the server notices the close after the client has closed; up to
  :data:`HANGUP_SLACK` after the client's close returned;
- an endpoint of a killed node: closed at that node's last heartbeat, up to
  :data:`BEAT_SLACK` heartbeat periods before the kill and never after it.

An action some outcome of which the client cannot know (a resume that may or may not come
after the reaper closed the endpoint) gives the outcomes it allows; the ledger must hold one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rooms.ledger import EventKind, LedgerEvent, Scalar

HANGUP_SLACK = timedelta(seconds=2)
BEAT_SLACK = 4
#: Events of a session as a whole (no attendee): each at most once, ``session_created`` once.
SESSION_EVENTS = frozenset(
    {EventKind.SESSION_CREATED, EventKind.SESSION_OPENED, EventKind.SESSION_LIVE}
)


@dataclass(frozen=True, slots=True)
class Expect:
    """One ledger event an action implies: its kind, attendee, data it must carry, and when."""

    kind: EventKind
    attendee: str
    earliest: datetime
    latest: datetime
    data: tuple[tuple[str, Scalar], ...] = ()
    actor: str | None = None

    def matches(self, event: LedgerEvent) -> bool:
        return (
            event.kind is self.kind
            and event.attendee == self.attendee
            and (self.actor is None or event.actor == self.actor)
            and all(event.data.get(k) == v for k, v in self.data)
            and self.earliest <= event.at <= self.latest
        )

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.kind), self.attendee)


#: The events one action implies, in order.
Outcome = tuple[Expect, ...]


@dataclass(slots=True)
class Did:
    """One action of one client on ``endpoint``: the outcomes the ledger may show (one of)."""

    session: str
    endpoint: str
    outcomes: tuple[Outcome, ...]
    started: datetime


@dataclass
class Tally:
    """How the ledger compared with what the clients did."""

    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    invented: int = 0
    mistimed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.lost or self.duplicated or self.invented or self.mistimed)


@dataclass
class Record:
    """Every client's actions, in the order they were taken."""

    actions: list[Did] = field(default_factory=list)

    def did(self, session: str, endpoint: str, *outcomes: Outcome, started: datetime) -> None:
        self.actions.append(Did(session, endpoint, outcomes, started))

    def check(self, session: str, ledger: list[LedgerEvent]) -> Tally:
        """Compare ``session``'s ledger with what its clients did."""
        tally = Tally()
        whole = Counter(e.kind for e in ledger if e.attendee is None)
        if whole[EventKind.SESSION_CREATED] != 1 or any(n > 1 for n in whole.values()):
            tally.problems.append(f"{session}: session events {dict(whole)}")
            tally.invented += sum(n - 1 for n in whole.values() if n > 1)
        for kind in set(whole) - SESSION_EVENTS:
            tally.problems.append(f"{session}: unexpected {kind} for no attendee")
            tally.invented += whole[kind]
        endpoints = {d.endpoint for d in self.actions if d.session == session}
        endpoints |= {e.endpoint for e in ledger if e.attendee is not None and e.endpoint}
        for endpoint in sorted(endpoints, key=str):
            done = sorted(
                (d for d in self.actions if d.session == session and d.endpoint == endpoint),
                key=lambda d: d.started,
            )
            events = [e for e in ledger if e.endpoint == endpoint and e.attendee is not None]
            _compare(f"{session}/{endpoint}", done, events, tally)
        return tally


def _compare(where: str, done: list[Did], events: list[LedgerEvent], tally: Tally) -> None:
    """Match ``events`` against ``done``'s outcomes in order; count what does not fit."""
    position, expected, fitted = 0, list[Expect](), True
    for n, did in enumerate(done):
        fits = [o for o in did.outcomes if _fits(o, events[position : position + len(o)])]
        if not fits:
            fitted = False
            expected += [x for rest in done[n:] for x in rest.outcomes[0]]
            break
        outcome = max(fits, key=len)
        expected += outcome
        position += len(outcome)
    tally.checked += len(events)
    if fitted and position == len(events):
        return
    # Not exactly what the clients did: say how, counting by (kind, attendee).
    want = Counter(x.key for x in expected)
    have = Counter((str(e.kind), str(e.attendee)) for e in events)
    lost, extra = want - have, have - want
    tally.lost += sum(lost.values())
    tally.duplicated += sum(n for k, n in extra.items() if k in want)
    tally.invented += sum(n for k, n in extra.items() if k not in want)
    if not lost and not extra:
        tally.mistimed += 1
    tally.problems.append(
        f"{where}: expected {[(*x.key, x.earliest.time(), x.latest.time()) for x in expected]}"
        f" got {[(str(e.kind), e.attendee, e.at.time(), dict(e.data)) for e in events]}"
    )


def _fits(outcome: Outcome, events: list[LedgerEvent]) -> bool:
    return len(events) == len(outcome) and all(
        x.matches(e) for x, e in zip(outcome, events, strict=True)
    )
