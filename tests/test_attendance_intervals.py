"""Properties of interval arithmetic and of minute counting from presence events."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.attendance.intervals import Interval, clip, merge, total, union_total, whole_minutes
from rooms.attendance.presence import AttendeePresence, track
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.ledger import EventKind, LedgerEvent

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


intervals = st.builds(
    lambda start, length: Interval(at(start), at(start + length)),
    st.integers(0, 5_000),
    st.integers(0, 2_000),
)
interval_lists = st.lists(intervals, max_size=25)


@given(interval_lists)
def test_union_is_sorted_disjoint_and_non_empty(parts: list[Interval]) -> None:
    union = merge(parts)
    assert all(iv.end > iv.start for iv in union)
    assert all(a.end < b.start for a, b in itertools.pairwise(union))


@given(interval_lists)
def test_union_total_is_between_largest_part_and_sum(parts: list[Interval]) -> None:
    union_time = total(merge(parts))
    assert union_time <= total(parts)
    assert union_time >= max((p.duration for p in parts), default=timedelta(0))


@given(interval_lists)
def test_merge_is_idempotent(parts: list[Interval]) -> None:
    assert merge(merge(parts)) == merge(parts)


@given(interval_lists, st.randoms(use_true_random=False))
def test_merge_ignores_order(parts: list[Interval], rnd: random.Random) -> None:
    shuffled = list(parts)
    rnd.shuffle(shuffled)
    assert merge(shuffled) == merge(parts)


@given(interval_lists, st.integers(0, 7_000))
def test_union_covers_exactly_the_points_the_parts_cover(parts: list[Interval], s: int) -> None:
    point = at(s)
    in_parts = any(p.start <= point < p.end for p in parts)
    assert in_parts == any(u.start <= point < u.end for u in merge(parts))


@given(interval_lists, st.integers(0, 7_000), st.integers(0, 7_000))
def test_clipping_never_increases_time(parts: list[Interval], a: int, b: int) -> None:
    lo, hi = at(min(a, b)), at(max(a, b))
    clipped = clip(parts, lo, hi)
    assert total(clipped) <= total(parts)
    assert union_total(clipped) <= union_total(parts)
    assert all(lo <= iv.start < iv.end <= hi for iv in clipped)


def test_an_interval_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        Interval(at(10), at(5))


def test_touching_intervals_merge_into_one() -> None:
    assert merge([Interval(at(0), at(60)), Interval(at(60), at(90))]) == (Interval(at(0), at(90)),)


@pytest.mark.parametrize(("seconds", "minutes"), [(959, 15), (960, 16), (0, 0), (3599, 59)])
def test_whole_minutes_round_down(seconds: int, minutes: int) -> None:
    assert whole_minutes(timedelta(seconds=seconds)) == minutes


# --- minute counting: the presence fold against a brute-force second-by-second count --------

P = AttendeeId("p-201")
STARTS = [EventKind.ADMITTED, EventKind.RESUMED, EventKind.MARKED_PRESENT]
ENDS = [EventKind.LEFT, EventKind.DISCONNECTED, EventKind.MARKED_ABSENT, EventKind.REMOVED]
steps = st.lists(
    st.tuples(
        st.integers(0, 120),  # seconds since the previous event
        st.sampled_from(STARTS + ENDS),
        st.sampled_from(["e-1", "e-2"]),
    ),
    max_size=30,
)


def _events(script: list[tuple[int, EventKind, str]], end: int) -> list[LedgerEvent]:
    sid = SessionId("s-prop")
    events, now = [], 0
    for seq, (gap, kind, endpoint) in enumerate(script, start=1):
        now += gap
        events.append(
            LedgerEvent(
                seq=seq,
                at=at(now),
                session=sid,
                kind=kind,
                attendee=P,
                endpoint=EndpointId(endpoint),
            )
        )
    events.append(
        LedgerEvent(seq=len(script) + 1, at=at(end), session=sid, kind=EventKind.SESSION_ENDED)
    )
    return events


def _brute_force_seconds(script: list[tuple[int, EventKind, str]], end: int) -> int:
    """Per second, present when any endpoint is open after the events at or before it.

    Each endpoint steps through the rules one event at a time: a start while the device is
    dropped waits for its resume; a resume restores presence only if the drop (or a start
    during it) left it owed; a leave or removal forgets the seat altogether."""
    open_at: dict[int, dict[str, bool]] = {}
    now = 0
    state = {e: {"open": False, "offline": False, "owed": False} for e in ("e-1", "e-2")}
    for gap, kind, endpoint in script:
        now += gap
        seat = state[endpoint]
        if kind is EventKind.RESUMED:
            seat["open"] = seat["open"] or (seat["offline"] and seat["owed"])
            seat["offline"] = seat["owed"] = False
        elif kind in STARTS:
            seat["owed"] = seat["offline"] or seat["owed"]
            seat["open"] = not seat["offline"]
        elif kind is EventKind.DISCONNECTED:
            seat["owed"] = seat["open"] or seat["owed"]
            seat["open"], seat["offline"] = False, True
        else:
            seat["open"] = seat["owed"] = False
            seat["offline"] = seat["offline"] and kind is EventKind.MARKED_ABSENT
        open_at[now] = {e: s["open"] for e, s in state.items()}
    present, current = 0, {"e-1": False, "e-2": False}
    for second in range(end):
        current = open_at.get(second, current)
        present += any(current.values())
    return present


@settings(deadline=None)  # a loaded machine is not a failure
@given(steps)
def test_present_time_matches_a_second_by_second_count(
    script: list[tuple[int, EventKind, str]],
) -> None:
    end = sum(gap for gap, _, _ in script) + 30
    (session,) = track(_events(script, end))
    found = session.attendees.get(P)
    present = found.present if found else timedelta(0)
    assert present == timedelta(seconds=_brute_force_seconds(script, end))
    if found:
        assert found.video + found.audio == found.present
        assert found.disconnects == sum(1 for _, k, _ in script if k is EventKind.DISCONNECTED)


@settings(deadline=None)
@given(steps)
def test_repeating_every_event_changes_nothing(script: list[tuple[int, EventKind, str]]) -> None:
    end = sum(gap for gap, _, _ in script) + 30
    doubled = [step for g, k, e in script for step in ((g, k, e), (0, k, e))]
    (once,) = track(_events(script, end))
    (twice,) = track(_events(doubled, end))
    assert _present(once.attendees.get(P)) == _present(twice.attendees.get(P))


def _present(found: AttendeePresence | None) -> timedelta:
    return found.present if found else timedelta(0)
