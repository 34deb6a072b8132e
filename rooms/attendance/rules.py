"""Billing rules as data: the model of ``config/billing.toml`` and its loader.

The rules say which code a session kind (and group purpose, and for couples whether the identified
patient attended) suggests for how many present minutes. Payers differ, so the clinic edits the
TOML, not code. ``docs/attendance.md`` documents the format.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from datetime import timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rooms.kinds import GroupPurpose, SessionKind

PatientPresence = Literal["present", "absent"]
Selector = tuple[SessionKind, GroupPurpose | None, PatientPresence | None]
_MINUTE = timedelta(minutes=1)


class BillingRulesError(ValueError):
    """The rules file is not valid TOML or breaks the rules model; the message says where."""


class CodeRule(BaseModel):
    """One ``[[rule]]``: a code for present minutes in ``[min_minutes, max_minutes]``.

    Minutes are whole minutes on exact time: ``max_minutes = 37`` covers up to 37:59.999,
    ``min_minutes = 38`` starts at 38:00. ``code`` absent means "explicitly no code", with a
    ``reason`` the summary repeats.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    kind: SessionKind
    purpose: GroupPurpose | None = None
    identified_patient: PatientPresence | None = None
    code: str | None = Field(default=None, pattern=r"^[0-9]{4}[0-9A-Z]$")
    min_minutes: int = Field(default=0, ge=0)
    max_minutes: int | None = Field(default=None, ge=0)
    #: Also require this share of the session's planned minutes (0.5: half of the session).
    min_share_of_planned: float = Field(default=0.0, ge=0.0, le=1.0)
    reason: str | None = None
    #: "checkin": this rule applies to sessions opened by an on-demand check-in only; those
    #: fall back to the rules without an origin when no check-in rule fits their selector.
    origin: Literal["checkin"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max_minutes is not None and self.max_minutes < self.min_minutes:
            raise ValueError("max_minutes is below min_minutes")
        if self.code is None and not self.reason:
            raise ValueError("a rule without a code needs a reason")
        if self.purpose is not None and self.kind is not SessionKind.GROUP:
            raise ValueError("only group rules carry a purpose")
        if self.identified_patient is not None and self.kind is not SessionKind.COUPLES:
            raise ValueError("only couples rules name identified_patient")
        return self

    @property
    def selector(self) -> Selector:
        return (self.kind, self.purpose, self.identified_patient)

    def floor(self, planned_minutes: int) -> timedelta:
        """The least present time this rule accepts for a session of ``planned_minutes``."""
        return max(
            self.min_minutes * _MINUTE, planned_minutes * self.min_share_of_planned * _MINUTE
        )

    def covers(self, present: timedelta, planned_minutes: int) -> bool:
        if present < self.floor(planned_minutes):
            return False
        return self.max_minutes is None or present < (self.max_minutes + 1) * _MINUTE


class Telehealth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    video_modifier: str = "95"
    audio_only_modifier: str = "93"


class PlaceOfService(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: str = Field(default="10", pattern=r"^[0-9]{2}$")
    allowed: tuple[str, ...] = ("10", "02")

    @model_validator(mode="after")
    def _default_allowed(self) -> Self:
        if self.default not in self.allowed:
            raise ValueError(f"default place of service {self.default} is not in allowed")
        return self


class IopRules(BaseModel):
    """Intensive outpatient attendance a patient should reach, in present minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day_minutes: int = Field(default=180, ge=0)
    week_minutes: int = Field(default=540, ge=0)


class BillingRules(BaseModel):
    """The whole rules file. Build it with :func:`load_rules`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    version: Literal[1]
    telehealth: Telehealth = Telehealth()
    place_of_service: PlaceOfService = PlaceOfService()
    iop: IopRules = IopRules()
    rules: tuple[CodeRule, ...] = Field(alias="rule", min_length=1)

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        by_selector: dict[tuple[Selector, str | None], list[CodeRule]] = {}
        for rule in self.rules:
            by_selector.setdefault((rule.selector, rule.origin), []).append(rule)
        for group in by_selector.values():
            group.sort(key=lambda r: r.min_minutes)
            for lower, upper in itertools.pairwise(group):
                if lower.max_minutes is None or lower.max_minutes >= upper.min_minutes:
                    raise ValueError(f"rules {lower.name!r} and {upper.name!r} overlap")
        return self

    def select(
        self,
        kind: SessionKind,
        purpose: GroupPurpose | None,
        patient: PatientPresence | None,
        *,
        checkin: bool = False,
    ) -> tuple[CodeRule, ...]:
        """The rules of the most specific selector that has any; a rule naming no purpose (or
        no identified-patient presence) is the fallback for every purpose. A check-in's
        session (``checkin``) takes the check-in rules first, when any fit."""
        origins: tuple[str | None, ...] = ("checkin", None) if checkin else (None,)
        for origin in origins:
            for selector in (
                (kind, purpose, patient),
                (kind, purpose, None),
                (kind, None, patient),
                (kind, None, None),
            ):
                found = tuple(
                    r for r in self.rules if r.selector == selector and r.origin == origin
                )
                if found:
                    return found
        return ()


def load_rules(text: str) -> BillingRules:
    """Parse and validate a rules file's text. Raises :class:`BillingRulesError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BillingRulesError(f"billing rules: not valid TOML: {exc}") from exc
    try:
        return BillingRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BillingRulesError(f"billing rules: {problems}") from exc


def load_rules_file(path: str | os.PathLike[str]) -> BillingRules:
    """:func:`load_rules` on a UTF-8 file, e.g. the shipped ``config/billing.toml`` (the outer
    layers locate it; ``rooms`` never imports ``config``)."""
    with open(path, encoding="utf-8") as f:
        return load_rules(f.read())
