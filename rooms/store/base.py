"""The store interface. Both implementations pass one contract suite (test_store_contract.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime

from rooms.ids import SessionId
from rooms.ledger import LedgerEvent
from rooms.state import SessionState

#: A domain change: mutates the given copy of the state in place and returns the events it
#: records. Raising a HomeroomError aborts it: nothing is written.
Mutation = Callable[[SessionState], list[LedgerEvent]]


class SessionStore(ABC):
    """Session state plus its ledger, changed together atomically."""

    @abstractmethod
    async def create(self, state: SessionState, events: list[LedgerEvent]) -> None:
        """Store a new session with its first events. Raises SessionExists."""

    @abstractmethod
    async def get(self, session: SessionId) -> SessionState:
        """The session's current state. Raises SessionNotFound."""

    @abstractmethod
    async def transact(
        self, session: SessionId, change: Mutation
    ) -> tuple[SessionState, list[LedgerEvent]]:
        """Apply ``change`` to the current state and append its events, atomically.

        ``change`` may run more than once when writers race (optimistic concurrency); it must be
        a pure function of the state it is given. Returns the committed state and events.
        Raises SessionNotFound, the change's own HomeroomError, or StoreConflict.
        """

    @abstractmethod
    async def events(self, session: SessionId, after_seq: int = 0) -> list[LedgerEvent]:
        """The session's ledger events with ``seq > after_seq``, in order."""

    @abstractmethod
    async def sessions_starting(self, since: datetime, until: datetime) -> list[SessionId]:
        """Ids of sessions whose scheduled start is in ``[since, until)``, by start time."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
