"""Ledger events -> who was present when, in one streaming pass over the events.

Presence is kept per (attendee, endpoint): it starts on an event in ``PRESENCE_STARTS`` and ends on
one in ``PRESENCE_ENDS`` or at ``session_ended``. A start while present and an end while absent
change nothing, so a replayed or duplicated event cannot invent or lose time. Per attendee the
endpoints' intervals are merged (a person on two devices counts once). The gap between
``disconnected`` and ``resumed`` is not present time; disconnects are counted separately.
A ``resumed`` restores exactly what the drop suspended: presence of those who were present when
the device dropped, or were admitted (or marked present) while it was away, and nobody else's (a
seat that was waiting or marked absent stays so); presence never starts on a dropped device.

Events name an attendee, an endpoint, or both. An end or ``resumed`` that names only an endpoint
applies to everyone on that endpoint (a dropped shared device drops both partners). A ``modality``
event naming an attendee sets that person's modality on every endpoint; one naming only an
endpoint sets the device's. Time is audio-only when either says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from rooms.attendance.intervals import Interval, merge, total
from rooms.ids import AttendeeId, EndpointId, SessionId
from rooms.ledger import PRESENCE_ENDS, PRESENCE_STARTS, EventKind, LedgerEvent

Key = tuple[AttendeeId, EndpointId | None]
_T = TypeVar("_T")
_VERIFYING = frozenset({EventKind.ADMITTED, EventKind.MARKED_PRESENT})


@dataclass(frozen=True, slots=True)
class AttendeePresence:
    """One attendee's presence in one session."""

    attendee: AttendeeId
    #: Merged intervals per endpoint (``None``: events that named no endpoint).
    by_endpoint: Mapping[EndpointId | None, tuple[Interval, ...]]
    #: The union over all endpoints: sorted, disjoint.
    intervals: tuple[Interval, ...]
    #: The parts of ``intervals`` seen on video on at least one endpoint; the rest is audio-only.
    video_intervals: tuple[Interval, ...]
    first_join: datetime | None
    #: ``None`` while presence is still open at the end of the ledger.
    last_leave: datetime | None
    still_open: bool
    disconnects: int
    #: Actors of ``admitted`` events flagged ``shared_device`` (who vouched for this person).
    shared_admit_actors: frozenset[str | None]
    #: Actors of every ``admitted`` and ``marked_present`` event for this person.
    verify_actors: frozenset[str | None]

    @property
    def present(self) -> timedelta:
        return total(self.intervals)

    @property
    def video(self) -> timedelta:
        return total(self.video_intervals)

    @property
    def audio(self) -> timedelta:
        return self.present - self.video


@dataclass(frozen=True, slots=True)
class SessionPresence:
    """Everyone's presence in one session, plus when the session itself ran."""

    session: SessionId
    first_at: datetime
    opened_at: datetime | None
    ended_at: datetime | None
    #: In order of first appearance in the ledger.
    attendees: Mapping[AttendeeId, AttendeePresence]

    @property
    def started_at(self) -> datetime:
        """When the session began: ``session_opened``, else its first event."""
        return self.opened_at or self.first_at


def track(
    events: Iterable[LedgerEvent], *, as_of: datetime | None = None
) -> Iterator[SessionPresence]:
    """Fold ``events`` (in sequence order per session; sessions may interleave) into presence.

    Yields a session as soon as its ``session_ended`` arrives, so memory holds only sessions
    still running; the rest are yielded when ``events`` is exhausted. Presence still open then is
    closed at ``as_of`` when given (a live view) and otherwise contributes no time: the ledger
    alone never invents minutes. Events of a session after its ``session_ended`` are ignored.
    Raises ``ValueError`` on out-of-order sequence numbers or a malformed ``modality`` event.
    """
    running: dict[SessionId, _SessionTracker] = {}
    done: set[SessionId] = set()
    for event in events:
        tracker = running.get(event.session)
        if tracker is None:
            if event.session in done:
                continue
            tracker = running[event.session] = _SessionTracker(event.session, event.at)
        tracker.feed(event)
        if tracker.ended_at is not None:
            del running[event.session]
            done.add(event.session)
            yield tracker.finish(as_of)
    for tracker in running.values():
        yield tracker.finish(as_of)


@dataclass(slots=True)
class _Open:
    since: datetime
    #: Start of the current run of one modality (video or audio-only).
    seg_since: datetime
    audio: bool


class _SessionTracker:
    """Mutable fold state of one session. All operations are O(endpoints of one person)."""

    def __init__(self, session: SessionId, first_at: datetime) -> None:
        self.session = session
        self.first_at = first_at
        self.opened_at: datetime | None = None
        self.ended_at: datetime | None = None
        self._last: LedgerEvent | None = None
        self._open: dict[Key, _Open] = {}
        self._by_endpoint: defaultdict[EndpointId | None, set[AttendeeId]] = defaultdict(set)
        self._by_attendee: defaultdict[AttendeeId, set[EndpointId | None]] = defaultdict(set)
        #: Seats of a dropped device, until it resumes or the seat goes; of those, the ones
        #: whose presence the resume restores (``_suspended`` is a subset of ``_offline``).
        self._offline: defaultdict[EndpointId | None, set[AttendeeId]] = defaultdict(set)
        self._suspended: defaultdict[EndpointId | None, set[AttendeeId]] = defaultdict(set)
        self._spans: defaultdict[Key, list[Interval]] = defaultdict(list)
        self._video: defaultdict[AttendeeId, list[Interval]] = defaultdict(list)
        self._audio_endpoints: set[EndpointId] = set()
        self._audio_attendees: set[AttendeeId] = set()
        self._first_join: dict[AttendeeId, datetime] = {}
        self._disconnects: defaultdict[AttendeeId, int] = defaultdict(int)
        self._shared: defaultdict[AttendeeId, set[str | None]] = defaultdict(set)
        self._verify: defaultdict[AttendeeId, set[str | None]] = defaultdict(set)

    def feed(self, ev: LedgerEvent) -> None:
        if not self._in_order(ev):
            return
        kind = ev.kind
        if kind in PRESENCE_STARTS:
            self._start(ev)
        elif kind in PRESENCE_ENDS:
            self._end(ev)
        elif kind is EventKind.MODALITY:
            self._modality(ev)
        elif kind is EventKind.SESSION_OPENED and self.opened_at is None:
            self.opened_at = ev.at
        elif kind is EventKind.SESSION_ENDED:
            for key in list(self._open):
                self._close(key, ev.at)
            self.ended_at = ev.at

    def _in_order(self, ev: LedgerEvent) -> bool:
        last = self._last
        if last is not None and ev.seq <= last.seq:
            if ev == last:  # the same event twice (e.g. overlapping archives): skip it
                return False
            raise ValueError(
                f"session {self.session}: event seq {ev.seq} after seq {last.seq}: "
                "ledger out of order"
            )
        self._last = ev
        return True

    def _start(self, ev: LedgerEvent) -> None:
        attendee, endpoint = ev.attendee, ev.endpoint
        if ev.kind is EventKind.RESUMED:
            self._resume(attendee, endpoint, ev.at)
            return
        if attendee is None:
            return
        if ev.kind in _VERIFYING:
            self._verify[attendee].add(ev.actor)
            if ev.kind is EventKind.ADMITTED and ev.data.get("shared_device") is True:
                self._shared[attendee].add(ev.actor)
        if attendee in self._offline.get(endpoint, ()):
            # Admitted or marked present while the device is away: present once it is back.
            self._suspended[endpoint].add(attendee)
            return
        self._open_presence(attendee, endpoint, ev.at)

    def _resume(
        self, attendee: AttendeeId | None, endpoint: EndpointId | None, at: datetime
    ) -> None:
        """A dropped device is back (naming only the person: every device they dropped from)."""
        keys: list[Key]
        if endpoint is not None:
            offline = self._offline.get(endpoint, set())
            keys = [(who, endpoint) for who in sorted(offline) if attendee in (None, who)]
        elif attendee is not None:
            keys = [(attendee, e) for e, who in self._offline.items() if attendee in who]
        else:
            return
        for who, e in keys:
            self._offline[e].discard(who)
            if who in self._suspended[e]:
                self._suspended[e].discard(who)
                self._open_presence(who, e, at)

    def _open_presence(self, who: AttendeeId, endpoint: EndpointId | None, at: datetime) -> None:
        key = (who, endpoint)
        if key in self._open:
            return
        self._open[key] = _Open(at, at, self._is_audio(who, endpoint))
        self._by_endpoint[endpoint].add(who)
        self._by_attendee[who].add(endpoint)
        self._first_join.setdefault(who, at)

    def _end(self, ev: LedgerEvent) -> None:
        attendee, endpoint = ev.attendee, ev.endpoint
        if attendee is not None:
            endpoints = [endpoint] if endpoint is not None else list(self._by_attendee[attendee])
            keys = [(attendee, e) for e in endpoints]
        elif endpoint is not None:
            keys = [(who, endpoint) for who in self._by_endpoint[endpoint]]
            if ev.kind is not EventKind.DISCONNECTED:
                self._suspended.pop(endpoint, None)
                self._offline.pop(endpoint, None)
        else:
            return
        dropped = ev.kind is EventKind.DISCONNECTED
        if dropped and attendee is not None:
            self._disconnects[attendee] += 1
        for who, e in keys:
            closed = self._close((who, e), ev.at)
            if dropped:
                self._offline[e].add(who)
                if closed:
                    self._suspended[e].add(who)
                    if attendee is None:
                        self._disconnects[who] += 1
            else:
                self._suspended[e].discard(who)
                if ev.kind is not EventKind.MARKED_ABSENT:  # the seat is gone
                    self._offline[e].discard(who)

    def _close(self, key: Key, at: datetime) -> bool:
        state = self._open.pop(key, None)
        if state is None:
            return False
        # Node clocks can disagree by a little; never let that produce a negative interval.
        at = max(at, state.since)
        who, endpoint = key
        if at > state.since:
            self._spans[key].append(Interval(state.since, at))
        if not state.audio and at > state.seg_since:
            self._video[who].append(Interval(state.seg_since, at))
        self._by_endpoint[endpoint].discard(who)
        self._by_attendee[who].discard(endpoint)
        return True

    def _modality(self, ev: LedgerEvent) -> None:
        value = ev.data.get("modality")
        if value not in ("video", "audio"):
            raise ValueError(
                f"session {self.session} seq {ev.seq}: modality must be 'video' or 'audio'"
            )
        if ev.attendee is not None:
            _toggle(self._audio_attendees, ev.attendee, value == "audio")
            keys = [(ev.attendee, e) for e in self._by_attendee[ev.attendee]]
        elif ev.endpoint is not None:
            _toggle(self._audio_endpoints, ev.endpoint, value == "audio")
            keys = [(who, ev.endpoint) for who in self._by_endpoint[ev.endpoint]]
        else:
            return
        for key in keys:
            self._recheck(key, ev.at)

    def _recheck(self, key: Key, at: datetime) -> None:
        state = self._open[key]
        audio = self._is_audio(*key)
        if audio == state.audio:
            return
        at = max(at, state.seg_since)
        if not state.audio and at > state.seg_since:
            self._video[key[0]].append(Interval(state.seg_since, at))
        state.seg_since, state.audio = at, audio

    def _is_audio(self, who: AttendeeId, endpoint: EndpointId | None) -> bool:
        return who in self._audio_attendees or endpoint in self._audio_endpoints

    def finish(self, as_of: datetime | None) -> SessionPresence:
        still_open = {who for who, _ in self._open}
        if as_of is not None:
            for key in list(self._open):
                self._close(key, as_of)
        per_attendee: defaultdict[AttendeeId, dict[EndpointId | None, tuple[Interval, ...]]]
        per_attendee = defaultdict(dict)
        for (who, endpoint), spans in self._spans.items():
            per_attendee[who][endpoint] = merge(spans)
        attendees = {
            who: self._attendee(who, per_attendee[who], who in still_open)
            for who in self._first_join
        }
        return SessionPresence(
            self.session, self.first_at, self.opened_at, self.ended_at, attendees
        )

    def _attendee(
        self,
        who: AttendeeId,
        by_endpoint: dict[EndpointId | None, tuple[Interval, ...]],
        still_open: bool,
    ) -> AttendeePresence:
        intervals = merge(iv for ivs in by_endpoint.values() for iv in ivs)
        return AttendeePresence(
            attendee=who,
            by_endpoint=by_endpoint,
            intervals=intervals,
            video_intervals=merge(self._video.get(who, ())),
            first_join=self._first_join.get(who),
            last_leave=None if still_open or not intervals else intervals[-1].end,
            still_open=still_open,
            disconnects=self._disconnects.get(who, 0),
            shared_admit_actors=frozenset(self._shared.get(who, ())),
            verify_actors=frozenset(self._verify.get(who, ())),
        )


def _toggle(members: set[_T], item: _T, on: bool) -> None:
    if on:
        members.add(item)
    else:
        members.discard(item)
