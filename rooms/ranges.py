"""The days and instants Homeroom accepts from outside, before any arithmetic on them.

A date of service is computed from the program's time zone, and a range's end is the next
day's midnight: at ``9999-12-31`` or ``0001-01-01`` that arithmetic overflows Python's
datetime. Nothing a clinic schedules or audits is outside these bounds, so inputs outside
them are refused as malformed (400) rather than failing halfway (500).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9000, 12, 31)
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9000, 12, 31, tzinfo=UTC)


def _within(moment: datetime) -> datetime:
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()}")
    return moment


#: A program day given by a client (query strings, CLI options).
Day = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
#: An instant given by a client (a session's start).
Instant = Annotated[AwareDatetime, AfterValidator(_within)]
