"""Link and staff tokens: validity windows, tampering, confusion between kinds, revocation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from rooms.errors import (
    HomeroomError,
    NotOnRoster,
    TokenExpired,
    TokenInvalid,
    TokenNotYetValid,
    TokenRevoked,
    WrongSession,
)
from rooms.ids import SessionId
from rooms.kinds import Role, SessionKind
from rooms.tokens import (
    LEEWAY,
    LINK_AUDIENCE,
    LinkClaims,
    StaffRole,
    check_not_revoked,
    issue_link_token,
    issue_staff_token,
    session_links,
    verify_link_token,
    verify_staff_token,
)
from tests.factories import P1, P2, T0, make_state

SECRET = "k" * 32
LEAD, TRAIL = timedelta(minutes=30), timedelta(minutes=60)
STATE = make_state(SessionKind.COUPLES)
SPEC = STATE.spec
PATIENT = SPEC.roster[1]  # p-201


def _link(secret: str = SECRET) -> str:
    return issue_link_token(secret, SPEC, PATIENT, LEAD, TRAIL)


def test_link_round_trip_carries_the_claims() -> None:
    claims = verify_link_token(SECRET, _link(), T0)
    assert (claims.session, claims.attendee, claims.role) == (SPEC.id, P1, Role.PATIENT)
    assert claims.nbf == T0 - LEAD
    assert claims.exp == SPEC.ends_at + TRAIL
    assert claims.jti


def test_each_link_has_its_own_token_id() -> None:
    assert verify_link_token(SECRET, _link(), T0).jti != verify_link_token(SECRET, _link(), T0).jti


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (-LEAD - LEEWAY - timedelta(seconds=1), TokenNotYetValid),
        (-LEAD, None),  # opens exactly `lead` before the start
        (-LEAD - LEEWAY + timedelta(seconds=1), None),  # small clock skew tolerated
        (timedelta(minutes=60) + TRAIL - timedelta(seconds=1), None),
        (timedelta(minutes=60) + TRAIL + LEEWAY, TokenExpired),
        (timedelta(days=30), TokenExpired),
    ],
)
def test_validity_window(offset: timedelta, error: type[HomeroomError] | None) -> None:
    token, now = _link(), T0 + offset
    if error is None:
        verify_link_token(SECRET, token, now)
    else:
        with pytest.raises(error):
            verify_link_token(SECRET, token, now)


def test_not_yet_valid_says_when_it_opens() -> None:
    with pytest.raises(TokenNotYetValid) as caught:
        verify_link_token(SECRET, _link(), T0 - timedelta(hours=5))
    assert (T0 - LEAD).isoformat() in caught.value.detail


def _tamper(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_tamper(_link(), sub=str(P2)), id="other-attendee"),
        pytest.param(_tamper(_link(), role="clinician"), id="promoted-role"),
        pytest.param(_tamper(_link(), exp=2_000_000_000), id="extended-expiry"),
        pytest.param(_link("w" * 32), id="wrong-secret"),
        pytest.param(_link()[:-3], id="truncated"),
        pytest.param("not-a-token", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(
            jwt.encode({"aud": LINK_AUDIENCE, "sub": "p-201"}, SECRET * 2, "HS512"),
            id="wrong-alg",
        ),
        pytest.param(
            jwt.encode(
                {"aud": LINK_AUDIENCE, "sid": "s", "sub": "p-201", "role": "patient", "jti": "x"},
                None,
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(
            jwt.encode(
                {"aud": LINK_AUDIENCE, "sid": "s-test", "sub": "p-201", "role": "patient"}, SECRET
            ),
            id="missing-claims",
        ),
        pytest.param(
            jwt.encode(
                {
                    "aud": LINK_AUDIENCE,
                    "sid": "s-test",
                    "sub": "p-201",
                    "role": "admin",
                    "nbf": 1,
                    "exp": 2_000_000_000,
                    "jti": "j",
                },
                SECRET,
            ),
            id="unknown-role",
        ),
        pytest.param(
            issue_staff_token(SECRET, StaffRole.ADMIN, "a-1", T0, timedelta(days=1)),
            id="staff-token-as-link",
        ),
    ],
)
def test_forged_or_foreign_links_are_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid) as caught:
        verify_link_token(SECRET, token, T0)
    # One message whatever failed: the refusal does not coach a forger.
    assert caught.value.detail == "this link or token is not valid"


def test_staff_round_trip_and_expiry() -> None:
    token = issue_staff_token(SECRET, StaffRole.CLINICIAN, "c-17", T0, timedelta(days=2))
    claims = verify_staff_token(SECRET, token, T0 + timedelta(days=1))
    assert (claims.role, claims.subject) == (StaffRole.CLINICIAN, "c-17")
    with pytest.raises(TokenExpired):
        verify_staff_token(SECRET, token, T0 + timedelta(days=2, seconds=10))


def test_a_link_is_not_a_staff_token() -> None:
    with pytest.raises(TokenInvalid):
        verify_staff_token(SECRET, _link(), T0)


def test_staff_token_needs_the_right_secret_and_a_pseudonymous_subject() -> None:
    token = issue_staff_token(SECRET, StaffRole.ADMIN, "a-1", T0, timedelta(days=1))
    with pytest.raises(TokenInvalid):
        verify_staff_token("q" * 32, token, T0)
    bad_subject = issue_staff_token(SECRET, StaffRole.ADMIN, "Dr Jane Roe", T0, timedelta(days=1))
    with pytest.raises(TokenInvalid):
        verify_staff_token(SECRET, bad_subject, T0)


def test_removed_attendee_is_revoked() -> None:
    claims = verify_link_token(SECRET, _link(), T0)
    state = STATE.model_copy(deep=True)
    check_not_revoked(state, claims)
    state.attendee(P1).removed = True
    with pytest.raises(TokenRevoked):
        check_not_revoked(state, claims)
    check_not_revoked(state, verify_link_token(SECRET, _partner_link(), T0))


def _partner_link() -> str:
    return issue_link_token(SECRET, SPEC, SPEC.roster[2], LEAD, TRAIL)


def test_link_for_another_session_is_wrong_session() -> None:
    claims = verify_link_token(SECRET, _link(), T0)
    other = STATE.model_copy(
        deep=True, update={"spec": SPEC.model_copy(update={"id": SessionId("s-other")})}
    )
    with pytest.raises(WrongSession):
        check_not_revoked(other, claims)


def test_claims_not_matching_the_roster_are_refused() -> None:
    claims = verify_link_token(SECRET, _link(), T0)
    with pytest.raises(NotOnRoster):
        check_not_revoked(STATE, claims.model_copy(update={"attendee": "p-999"}))
    with pytest.raises(TokenInvalid):
        check_not_revoked(STATE, claims.model_copy(update={"role": Role.GUEST}))


def test_session_links_one_per_member_host_or_join() -> None:
    links = session_links(SECRET, SPEC, base_url="https://care.example/", lead=LEAD, trail=TRAIL)
    assert [(str(link.attendee), link.role) for link in links] == [
        ("c-17", Role.CLINICIAN),
        ("p-201", Role.PATIENT),
        ("p-202", Role.PATIENT),
    ]
    assert links[0].url.startswith("https://care.example/host#t=")
    assert links[1].url.startswith("https://care.example/join#t=")
    for link in links:
        claims = verify_link_token(SECRET, link.url.split("#t=", 1)[1], T0)
        assert isinstance(claims, LinkClaims) and claims.attendee == link.attendee
