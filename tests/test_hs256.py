"""The HS256 token check: accepts what PyJWT issues with the secret, refuses everything else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable

import jwt
import pytest

from rooms import hs256

SECRET = "s" * 32
CLAIMS = {"aud": "homeroom:link", "sub": "p-1", "exp": 2_000_000_000, "jti": "t-1", "n": "\u00e9"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(header: object, payload: bytes, secret: str = SECRET) -> str:
    """A token with any header and payload bytes, correctly signed with ``secret``."""
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    mac = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"


def test_tokens_pyjwt_issues_are_accepted_with_their_claims() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    assert hs256.verify(SECRET, token) == CLAIMS
    bare = _signed({"alg": "HS256"}, json.dumps(CLAIMS).encode())
    assert hs256.verify(SECRET, bare) == CLAIMS


def test_agrees_with_pyjwt_on_many_tokens() -> None:
    rng = random.Random(5)
    for _ in range(200):
        claims = {
            "k": rng.randrange(10**12),
            "s": "".join(rng.choices("ab/+=-_ü", k=rng.randrange(40))),
        }
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        assert hs256.verify(SECRET, token) == jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "HS512"},
        {"alg": "RS256"},
        {"alg": "hs256"},
        {"alg": "HS256", "typ": "JOSE+JSON"},
        {"alg": "HS256", "crit": ["exp"], "exp": 1},
        {"alg": "HS256", "kid": "../../etc/passwd"},
        {"typ": "JWT"},
        ["alg", "HS256"],
        "HS256",
    ],
)
def test_only_the_hs256_header_is_accepted(header: object) -> None:
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, _signed(header, json.dumps(CLAIMS).encode()))


@pytest.mark.parametrize(
    "payload", [b"[1, 2]", b'"claims"', b"null", b"{not json", b"\xff\xfe{}", b""]
)
def test_a_signed_payload_must_be_a_json_object(payload: bytes) -> None:
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, _signed({"alg": "HS256", "typ": "JWT"}, payload))


def test_a_header_nested_beyond_the_parser_is_refused() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    signing = f"{_b64(deep.encode())}.{_b64(b'{}')}"
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, f"{signing}.{_b64(b'x' * 32)}")


def test_every_single_character_change_is_refused() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    for i, char in enumerate(token):
        for other in {"A", "b", "-", "_", ".", "=", " ", "é"} - {char}:
            forged = token[:i] + other + token[i + 1 :]
            with pytest.raises(hs256.BadToken):
                hs256.verify(SECRET, forged)


def test_another_spelling_of_the_same_signature_is_refused() -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    head, _, signature = token.rpartition(".")
    # 32 bytes take 43 characters: the last carries 2 unused bits, which must be zero.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    assert last % 4 == 0
    respelled = f"{head}.{signature[:-1]}{alphabet[last + 1]}"
    assert base64.urlsafe_b64decode(respelled.split(".")[2] + "=") == base64.urlsafe_b64decode(
        signature + "="
    )
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, respelled)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",
        lambda t: t + ".",
        lambda t: t.replace(".", "..", 1),
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: ".".join(t.split(".")[:2]),
        lambda t: ".".join(t.split(".")[:2]) + ".",
        lambda t: t.split(".", 1)[1],
        lambda t: "",
    ],
)
def test_malformed_tokens_are_refused(mangle: Callable[[str], str]) -> None:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, mangle(token))


def test_another_secret_is_refused_and_each_secret_keeps_its_own_key() -> None:
    ours = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    theirs = jwt.encode(CLAIMS, "t" * 32, algorithm="HS256")
    with pytest.raises(hs256.BadToken):
        hs256.verify(SECRET, theirs)
    assert hs256.verify("t" * 32, theirs) == CLAIMS
    assert hs256.verify(SECRET, ours) == CLAIMS
    with pytest.raises(hs256.BadToken):
        hs256.verify("t" * 32, ours)
