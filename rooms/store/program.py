"""The program store: enrollments and the check-in queue, embedded or in Redis.

Both implementations pass one contract suite (tests/test_program_store.py). A request's move
out of ``waiting`` is a compare-and-set of its whole document, so of two clinicians picking
it up at the same instant exactly one wins, and the loser's change is re-run against the
winner's document (where the domain refuses it with a clear error). The check-in log is
append-only: a record is written in the same atomic step as the move it records.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime

from rooms.checkins import CheckinId, CheckinRecord, CheckinRequest, CheckinStatus
from rooms.enrollment import Enrollment
from rooms.errors import CheckinNotFound, StoreConflict
from rooms.ids import AttendeeId

#: A move of one request: the new document and the record of it, from the current one.
#: Raising (a HomeroomError) refuses it and writes nothing.
Move = Callable[[CheckinRequest], tuple[CheckinRequest, CheckinRecord]]
#: Compare-and-set attempts before a move gives up with StoreConflict.
MAX_ATTEMPTS = 20


class ProgramStore(ABC):
    """Enrollments, check-in requests and the check-in log."""

    @abstractmethod
    async def enrollment(self, patient: AttendeeId) -> Enrollment | None:
        """The patient's enrollment, or None."""

    @abstractmethod
    async def put_enrollment(self, enrollment: Enrollment) -> None:
        """Create or replace the patient's enrollment."""

    @abstractmethod
    async def enrollments(self) -> list[Enrollment]:
        """Every enrollment, by patient id."""

    @abstractmethod
    async def add_request(self, req: CheckinRequest, record: CheckinRecord) -> CheckinRequest:
        """Queue ``req`` and log ``record``, atomically, unless one of its people already has
        a waiting request: then nothing is written and that request is returned."""

    @abstractmethod
    async def request(self, checkin: CheckinId) -> CheckinRequest:
        """The request; CheckinNotFound when there is none."""

    @abstractmethod
    async def waiting(self) -> list[CheckinRequest]:
        """The waiting requests, oldest first."""

    @abstractmethod
    async def open_request(self, attendee: AttendeeId) -> CheckinRequest | None:
        """The waiting request ``attendee`` is one of the people of, if any."""

    @abstractmethod
    async def requests_between(self, since: datetime, until: datetime) -> list[CheckinRequest]:
        """Requests made in ``[since, until)``, oldest first (the report's input)."""

    @abstractmethod
    async def records(self, after_seq: int = 0) -> list[CheckinRecord]:
        """The check-in log from ``after_seq`` on, in order."""

    @abstractmethod
    async def _swap(self, before: str, after: CheckinRequest, record: CheckinRecord) -> str | None:
        """Replace the document ``before`` of ``after.id`` by ``after`` and log ``record``,
        atomically; when the stored document is no longer ``before``, write nothing and
        return the stored one."""

    @abstractmethod
    async def _doc(self, checkin: CheckinId) -> str | None:
        """The stored document of a request."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def move(self, checkin: CheckinId, change: Move) -> CheckinRequest:
        """Apply ``change`` to the request atomically (it may run again after a race)."""
        doc = await self._doc(checkin)
        for _ in range(MAX_ATTEMPTS):
            if doc is None:
                raise CheckinNotFound("no such check-in request")
            after, record = change(CheckinRequest.model_validate_json(doc))
            current = await self._swap(doc, after, record)
            # The stored document being exactly ours: a retried command whose first send
            # landed (same actor, same instant), not a race lost.
            if current is None or current == after.model_dump_json():
                return after
            doc = current
        raise StoreConflict("the check-in queue is busy: try again")


class MemoryProgramStore(ProgramStore):
    """The embedded backend: documents kept as JSON, as Redis keeps them. No ``await`` sits
    between a check and its write, so each step is atomic on the event loop."""

    def __init__(self) -> None:
        self._enrollments: dict[AttendeeId, str] = {}
        self._docs: dict[CheckinId, str] = {}
        self._order: list[CheckinId] = []
        self._open: dict[AttendeeId, CheckinId] = {}
        self._log: list[str] = []

    async def enrollment(self, patient: AttendeeId) -> Enrollment | None:
        doc = self._enrollments.get(patient)
        return None if doc is None else Enrollment.model_validate_json(doc)

    async def put_enrollment(self, enrollment: Enrollment) -> None:
        self._enrollments[AttendeeId(enrollment.patient)] = enrollment.model_dump_json()

    async def enrollments(self) -> list[Enrollment]:
        return [
            Enrollment.model_validate_json(self._enrollments[p]) for p in sorted(self._enrollments)
        ]

    async def add_request(self, req: CheckinRequest, record: CheckinRecord) -> CheckinRequest:
        for person in req.people():
            found = self._open.get(person)
            if found is not None:
                return CheckinRequest.model_validate_json(self._docs[found])
        self._docs[req.id] = req.model_dump_json()
        self._order.append(req.id)
        for person in req.people():
            self._open[person] = req.id
        self._append(record)
        return req

    async def request(self, checkin: CheckinId) -> CheckinRequest:
        doc = self._docs.get(checkin)
        if doc is None:
            raise CheckinNotFound("no such check-in request")
        return CheckinRequest.model_validate_json(doc)

    async def waiting(self) -> list[CheckinRequest]:
        found = [CheckinRequest.model_validate_json(self._docs[i]) for i in self._order]
        return sorted(
            (r for r in found if r.status is CheckinStatus.WAITING), key=lambda r: r.requested_at
        )

    async def open_request(self, attendee: AttendeeId) -> CheckinRequest | None:
        found = self._open.get(attendee)
        return None if found is None else await self.request(found)

    async def requests_between(self, since: datetime, until: datetime) -> list[CheckinRequest]:
        found = [CheckinRequest.model_validate_json(self._docs[i]) for i in self._order]
        return sorted(
            (r for r in found if since <= r.requested_at < until), key=lambda r: r.requested_at
        )

    async def records(self, after_seq: int = 0) -> list[CheckinRecord]:
        return [CheckinRecord.model_validate_json(d) for d in self._log[max(after_seq, 0) :]]

    async def _doc(self, checkin: CheckinId) -> str | None:
        return self._docs.get(checkin)

    async def _swap(self, before: str, after: CheckinRequest, record: CheckinRecord) -> str | None:
        current = self._docs.get(after.id)
        if current != before:
            return current
        self._docs[after.id] = after.model_dump_json()
        if after.status is not CheckinStatus.WAITING:
            for person in after.people():
                if self._open.get(person) == after.id:
                    del self._open[person]
        self._append(record)
        return None

    async def close(self) -> None:
        return None

    def _append(self, record: CheckinRecord) -> None:
        self._log.append(record.model_copy(update={"seq": len(self._log) + 1}).model_dump_json())
