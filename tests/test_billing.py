"""Billing suggestions at every threshold edge, and the rules file's validation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms.attendance.billing import Status
from rooms.attendance.rules import BillingRulesError, load_rules
from rooms.attendance.summary import summarize
from rooms.ids import AttendeeId, SessionId
from rooms.kinds import GroupPurpose, Role, SessionKind
from rooms.ledger import EventKind
from tests.test_attendance_summary import (
    G1,
    P1,
    P2,
    RULES,
    TZ,
    C,
    Ledger,
    make_spec,
    ms,
    row_of,
    summary_of,
)


def individual(seconds: int) -> tuple[str | None, Status]:
    row = row_of(summary_of(Ledger().attend(P1, 0, seconds).end(seconds), make_spec()), P1)
    return row.suggested_code, row.status


@pytest.mark.parametrize(
    ("seconds", "code", "status"),
    [
        (ms(15, 59), None, Status.BELOW_THRESHOLD),
        (ms(16), "90832", Status.SUGGESTED),
        (ms(37, 59), "90832", Status.SUGGESTED),
        (ms(38), "90834", Status.SUGGESTED),
        (ms(52, 59), "90834", Status.SUGGESTED),
        (ms(53), "90837", Status.SUGGESTED),
        (ms(90), "90837", Status.SUGGESTED),
    ],
)
def test_individual_psychotherapy_edges(seconds: int, code: str | None, status: Status) -> None:
    assert individual(seconds) == (code, status)


def test_below_threshold_explains_the_exact_time_and_the_minimum() -> None:
    row = row_of(summary_of(Ledger().attend(P1, 0, ms(15, 59)).end(ms(20)), make_spec()), P1)
    assert row.present_minutes == 15
    assert row.explanation == (
        "individual psychotherapy 16-37 min: 15 min 59 s present, below 16 min -> no code"
    )


def couples(
    ip_seconds: int, partner_seconds: int, *, identified: str | None = None
) -> tuple[tuple[str | None, Status, str], tuple[str | None, Status, str]]:
    """(code, status, explanation) of the identified patient's row and of the partner's."""
    ip, partner = (P2, P1) if identified == P2 else (P1, P2)
    ledger = Ledger()
    if ip_seconds:
        ledger.attend(ip, 0, ip_seconds, "e-1")
    if partner_seconds:
        ledger.attend(partner, 0, partner_seconds, "e-2")
    spec = make_spec(SessionKind.COUPLES, patients=(P1, P2), identified=identified)
    summary = summary_of(ledger.end(ms(60)), spec)
    a, b = row_of(summary, ip), row_of(summary, partner)
    return (a.suggested_code, a.status, a.explanation), (b.suggested_code, b.status, b.explanation)


def test_couples_threshold_is_26_minutes() -> None:
    (code, status, why), _ = couples(ms(25, 59), ms(25, 59))
    assert (code, status) == (None, Status.BELOW_THRESHOLD)
    assert why.startswith("couples/family with identified patient 26+ min: 25 min 59 s present")
    (code, status, why), _ = couples(ms(26), ms(26))
    assert (code, status) == ("90847", Status.SUGGESTED)
    assert why.startswith(
        "couples/family with identified patient 26+ min: 26 min present by p-201, p-202 -> 90847"
    )


def test_identified_patient_present_is_90847_and_the_partner_is_billed_under_them() -> None:
    ip, partner = couples(ms(50), ms(50))
    assert ip[:2] == ("90847", Status.SUGGESTED)
    assert partner == (
        None,
        Status.NOT_BILLABLE,
        "50 min present; billed under identified patient p-201",
    )


def test_identified_patient_absent_is_90846_under_the_identified_patient() -> None:
    ip, partner = couples(0, ms(40))
    assert ip[:2] == ("90846", Status.SUGGESTED)
    assert "without identified patient 26+ min: 40 min present by p-202 -> 90846" in ip[2]
    assert partner[:2] == (None, Status.NOT_BILLABLE)


def test_the_identified_patient_can_be_set_and_is_the_first_patient_otherwise() -> None:
    ip, partner = couples(0, ms(40), identified=P2)  # P2 absent, P1 attended
    assert (ip[0], partner[0]) == ("90846", None)
    assert partner[2].endswith("billed under identified patient p-202")
    assert "40 min present by p-201 -> 90846" in ip[2]


def test_couples_minutes_are_the_union_of_the_partners_presence() -> None:
    ledger = Ledger().attend(P1, 0, ms(20), "e-1").attend(P2, ms(10), ms(30), "e-2").end(ms(30))
    spec = make_spec(SessionKind.COUPLES, patients=(P1, P2))
    row = row_of(summary_of(ledger, spec), P1)
    assert row.present == timedelta(minutes=20)  # the row keeps the person's own minutes
    assert (row.suggested_code, row.status) == ("90847", Status.SUGGESTED)
    assert "30 min present by p-201, p-202" in row.explanation


def shared_device(*extra: tuple[EventKind, str]) -> Ledger:
    ledger = (
        Ledger()
        .admit(0, P1, "e-home", actor=C)
        .add(ms(1), EventKind.ADMITTED, P2, "e-home", P1, shared_device=True)
    )
    for kind, actor in extra:
        ledger.add(ms(2), kind, P2, "e-home", actor)
    return ledger.add(ms(50), EventKind.LEFT, endpoint="e-home").end(ms(50))


COUPLES = make_spec(SessionKind.COUPLES, patients=(P1, P2), identified=P2)


def test_a_partner_added_on_a_shared_device_by_a_peer_needs_attestation() -> None:
    summary = summary_of(shared_device(), COUPLES)
    row = row_of(summary, P2)
    assert (row.suggested_code, row.status) == (None, Status.NEEDS_ATTESTATION)
    assert row.present == timedelta(minutes=49)
    assert "without clinician verification" in row.explanation


@pytest.mark.parametrize(
    "verification",
    [(EventKind.MARKED_PRESENT, C), (EventKind.ADMITTED, C)],
    ids=["marked-present-by-clinician", "admitted-by-clinician"],
)
def test_a_clinician_verification_attests_the_shared_device_partner(
    verification: tuple[EventKind, str],
) -> None:
    row = row_of(summary_of(shared_device(verification), COUPLES), P2)
    assert (row.suggested_code, row.status) == ("90847", Status.SUGGESTED)


def test_a_peer_marking_present_does_not_attest() -> None:
    row = row_of(summary_of(shared_device((EventKind.MARKED_PRESENT, P1)), COUPLES), P2)
    assert row.status is Status.NEEDS_ATTESTATION


@pytest.mark.parametrize(
    ("audio_from", "modifier"),
    [(ms(20), "93"), (ms(25), "95"), (ms(30), "95")],  # audio 30 > video 20; 25 = 25; 20 < 30
)
def test_primarily_audio_only_gets_modifier_93(audio_from: int, modifier: str) -> None:
    ledger = (
        Ledger()
        .admit(0, P1)
        .add(audio_from, EventKind.MODALITY, P1, modality="audio")
        .leave(ms(50), P1)
        .end(ms(50))
    )
    row = row_of(summary_of(ledger, make_spec()), P1)
    assert (row.suggested_code, row.modifier) == ("90834", modifier)


def group(seconds: int, purpose: GroupPurpose, planned: int = 90) -> tuple[str | None, Status, str]:
    spec = make_spec(SessionKind.GROUP, patients=(P1, P2), purpose=purpose, planned=planned)
    row = row_of(summary_of(Ledger().attend(P1, 0, seconds).end(seconds), spec), P1)
    return row.suggested_code, row.status, row.explanation


def test_group_psychotherapy_needs_half_of_the_planned_session() -> None:
    code, status, why = group(ms(44, 59), GroupPurpose.THERAPY_GROUP)
    assert (code, status) == (None, Status.BELOW_THRESHOLD)
    assert why.endswith("44 min 59 s present, below 45 min -> no code")
    assert group(ms(45), GroupPurpose.THERAPY_GROUP)[:2] == ("90853", Status.SUGGESTED)
    assert group(ms(45), GroupPurpose.SKILLS_WORKSHOP)[:2] == ("90853", Status.SUGGESTED)


def test_group_psychotherapy_never_below_16_minutes() -> None:
    assert group(ms(15, 59), GroupPurpose.THERAPY_GROUP, planned=20)[0] is None
    assert group(ms(16), GroupPurpose.THERAPY_GROUP, planned=20)[0] == "90853"


@pytest.mark.parametrize(
    ("purpose", "reason"),
    [
        (GroupPurpose.PEER_SUPPORT, "peer support is not billable as psychotherapy"),
        (GroupPurpose.FAMILY_EDUCATION, "psychoeducation is not billable as psychotherapy"),
    ],
)
def test_non_psychotherapy_groups_get_no_code_and_say_why(
    purpose: GroupPurpose, reason: str
) -> None:
    code, status, why = group(ms(90), purpose)
    assert (code, status) == (None, Status.NOT_BILLABLE)
    assert why.endswith(f"90 min present -> no code: {reason}")


def test_guests_and_clinicians_are_never_billed() -> None:
    family = make_spec(SessionKind.GROUP, guests=(G1,), purpose=GroupPurpose.FAMILY_EDUCATION)
    ledger = Ledger().attend(C, 0, ms(90), "e-c").attend(G1, 0, ms(90), "e-g").end(ms(90))
    summary = summary_of(ledger, family)
    guest, clinician = row_of(summary, G1), row_of(summary, C)
    assert (guest.role, guest.suggested_code, guest.explanation) == (
        Role.GUEST,
        None,
        "90 min present; guest: never billed",
    )
    assert (clinician.role, clinician.suggested_code) == (Role.CLINICIAN, None)
    assert row_of(summary, P1).status is Status.ABSENT


def test_place_of_service_hint_and_its_validation() -> None:
    ledger = Ledger().attend(P1, 0, ms(40)).end(ms(40))
    spec = make_spec()

    def run(hint: str | None) -> str | None:
        (summary,) = summarize(
            ledger.events, {spec.id: spec}, tz=TZ, rules=RULES, pos=lambda s, a: hint
        )
        return row_of(summary, P1).pos

    assert (run(None), run("02")) == ("10", "02")
    with pytest.raises(ValueError, match="place of service '99' is not allowed"):
        run("99")


def test_an_attendee_not_on_the_roster_is_listed_but_not_billed() -> None:
    ledger = Ledger().attend(P1, 0, ms(40)).attend(AttendeeId("x-9"), 0, ms(40), "e-9").end(ms(40))
    row = row_of(summary_of(ledger, make_spec()), "x-9")
    assert (row.role, row.status) == (None, Status.NOT_BILLABLE)
    assert row.explanation == "40 min present; not on the session roster: never billed"


# --- the rules file ------------------------------------------------------------------------

HEADER = "version = 1\n"


def rule(**fields: object) -> str:
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in fields.items())
    return f"[[rule]]\n{body}\n"


def test_the_shipped_rules_have_the_documented_defaults() -> None:
    assert (RULES.telehealth.video_modifier, RULES.telehealth.audio_only_modifier) == ("95", "93")
    assert (RULES.place_of_service.default, RULES.iop.day_minutes, RULES.iop.week_minutes) == (
        "10",
        180,
        540,
    )
    codes = {r.code for r in RULES.rules}
    assert {"90832", "90834", "90837", "90846", "90847", "90853"} <= codes


def test_a_minimal_rules_file_loads_with_defaults() -> None:
    rules = load_rules(HEADER + rule(name="x", kind="individual", code="90832", min_minutes=16))
    assert rules.iop.day_minutes == 180
    assert rules.select(SessionKind.INDIVIDUAL, None, None)[0].code == "90832"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1\n[[rule]\n", "not valid TOML"),
        ("version = 2\n" + rule(name="x", kind="individual", code="90832"), "version"),
        (HEADER, "rule: Field required"),
        (HEADER + rule(name="x", kind="solo", code="90832"), "rule.0.kind"),
        (HEADER + rule(name="x", kind="individual", code="9083"), "rule.0.code"),
        (HEADER + rule(name="x", kind="individual"), "a rule without a code needs a reason"),
        (HEADER + rule(name="x", kind="individual", code="90832", colour="red"), "colour"),
        (
            HEADER + rule(name="x", kind="individual", purpose="peer_support", reason="r"),
            "only group rules carry a purpose",
        ),
        (
            HEADER
            + rule(name="x", kind="individual", code="90832", min_minutes=20, max_minutes=10),
            "max_minutes is below min_minutes",
        ),
        (
            HEADER
            + rule(name="a", kind="individual", code="90832", min_minutes=16, max_minutes=38)
            + rule(name="b", kind="individual", code="90834", min_minutes=38),
            "rules 'a' and 'b' overlap",
        ),
        (
            HEADER
            + '[place_of_service]\ndefault = "11"\n'
            + rule(name="x", kind="individual", code="90832"),
            "default place of service 11 is not in allowed",
        ),
    ],
)
def test_a_bad_rules_file_is_refused_with_where_and_why(text: str, message: str) -> None:
    with pytest.raises(BillingRulesError, match="billing rules: ") as info:
        load_rules(text)
    assert message in str(info.value)


def test_a_purpose_specific_rule_wins_over_a_general_group_rule() -> None:
    text = (
        HEADER
        + rule(name="any group", kind="group", code="90853")
        + rule(name="peers", kind="group", purpose="peer_support", reason="not therapy")
    )
    rules = load_rules(text)
    assert rules.select(SessionKind.GROUP, GroupPurpose.PEER_SUPPORT, None)[0].name == "peers"
    assert rules.select(SessionKind.GROUP, GroupPurpose.THERAPY_GROUP, None)[0].name == "any group"


def test_a_session_kind_without_rules_is_not_billable_and_says_so() -> None:
    rules = load_rules(HEADER + rule(name="x", kind="individual", code="90832", min_minutes=16))
    spec = make_spec(SessionKind.GROUP, purpose=GroupPurpose.THERAPY_GROUP, session="s-g")
    ledger = Ledger("s-g").attend(P1, 0, ms(60)).end(ms(60))
    (summary,) = summarize(ledger.events, {SessionId("s-g"): spec}, tz=TZ, rules=rules)
    row = row_of(summary, P1)
    assert (row.status, row.explanation) == (
        Status.NOT_BILLABLE,
        "no billing rule for group/therapy_group: 60 min present",
    )


def test_a_check_in_session_takes_check_in_rules_first_and_falls_back_to_its_kind() -> None:
    text = (
        HEADER
        + rule(name="individual", kind="individual", code="90834", min_minutes=16)
        + rule(name="check-in", kind="individual", origin="checkin", code="90832", min_minutes=5)
    )
    rules = load_rules(text)
    scheduled = make_spec(session="s-a")
    checkin = make_spec(session="s-b").model_copy(update={"checkin": "ci-1"})
    codes = {}
    for spec in (scheduled, checkin):
        ledger = Ledger(spec.id).attend(P1, 0, ms(20)).end(ms(20))
        (summary,) = summarize(ledger.events, {spec.id: spec}, tz=TZ, rules=rules)
        codes[spec.id] = row_of(summary, P1).suggested_code
    assert codes == {"s-a": "90834", "s-b": "90832"}
    # Without check-in rules (the shipped file), a check-in bills as its kind.
    ledger = Ledger("s-b").attend(P1, 0, ms(20)).end(ms(20))
    (summary,) = summarize(ledger.events, {checkin.id: checkin}, tz=TZ, rules=RULES)
    assert row_of(summary, P1).suggested_code == "90832"
    assert rules.select(SessionKind.INDIVIDUAL, None, None)[0].name == "individual"
