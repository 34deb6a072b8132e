"""``python -m bench.codec_cost [--n N] [--rounds R]``: the per-message codecs of a join.

Each line times Homeroom's way against the one it replaced, in the same process, alternating
rounds and keeping each side's best round (a busy machine skews both alike; read the ratio):

- the link token check: PyJWT's ``jwt.decode`` with Homeroom's options against
  :func:`rooms.hs256.verify` (every connect checks one);
- a packet's JSON: a reused compact ``json.JSONEncoder`` against
  :func:`signaling.wire.compact_json` (pydantic-core), on a two-endpoint room view.

Before timing, each pair must give the same result on the same input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jwt

from rooms import hs256
from rooms.tokens import LINK_AUDIENCE
from signaling.wire import compact_json

SECRET = "bench-secret-" + "x" * 32
CLAIMS = {
    "aud": LINK_AUDIENCE,
    "sid": "s-zRpCxwqayuv6",
    "sub": "p-0",
    "role": "patient",
    "nbf": 1_795_800_000,
    "exp": 1_795_900_000,
    "jti": "W4DBbGEykaidaIjj",
}
_ATTENDEE = {
    "attendee": "p-0",
    "role": "patient",
    "status": "admitted",
    "muted": False,
    "clinician_muted": False,
    "mute_locked": False,
    "unmute_requested": False,
    "attached": False,
    "attested": True,
}
VIEW = [
    "room",
    {
        "version": 76,
        "status": "live",
        "locked": False,
        "you": "e-5XcwCsyZ1Ihj",
        "admitted": True,
        "endpoints": [
            {"endpoint": e, "connected": True, "attendees": [_ATTENDEE]}
            for e in ("e-5XcwCsyZ1Ihj", "e-llkx1dx9yQyF")
        ],
        "waiting": [],
    },
]
_STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def pyjwt_check(token: str) -> dict[str, Any]:
    """The check as it was: PyJWT with the options rooms.tokens passed it."""
    decoded: dict[str, Any] = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience=LINK_AUDIENCE,
        options={"verify_exp": False, "verify_nbf": False, "require": ["aud", "sub", "exp"]},
    )
    return decoded


def pairs() -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    return {
        "link token check": (
            lambda: pyjwt_check(token),
            lambda: hs256.verify(SECRET, token),
        ),
        "room view packet JSON": (
            lambda: _STDLIB.encode(VIEW),
            lambda: compact_json(VIEW),
        ),
    }


def best_us(run: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_cost", description=__doc__)
    parser.add_argument("--n", type=int, default=20000, help="calls per round (20000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (7)")
    args = parser.parse_args(argv)
    print(f"{'':24} {'old µs':>9} {'new µs':>9} {'new/old':>8}")
    for label, (old, new) in pairs().items():
        if old() != new():
            print(f"{label}: old and new disagree", file=sys.stderr)
            return 1
        best = {"old": float("inf"), "new": float("inf")}
        for _ in range(args.rounds):
            best["old"] = min(best["old"], best_us(old, args.n))
            best["new"] = min(best["new"], best_us(new, args.n))
        print(f"{label:24} {best['old']:9.2f} {best['new']:9.2f} {best['new'] / best['old']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
