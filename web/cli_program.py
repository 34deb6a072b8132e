"""``homeroom patient link|revoke``: a patient's standing program link, through the server.

Always through the server's API (``--url``, default ``HOMEROOM_PUBLIC_URL``): withdrawing a
link also closes the connections opened with it, which only a running server can do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp

from config.settings import load_settings
from rooms.errors import InvalidMessage
from rooms.ids import is_valid_id
from rooms.kinds import CareFunction
from web.cli_base import CliError, cli_token


def add_commands(sub: Any) -> None:
    patient = sub.add_parser(
        "patient", help="give a patient their standing program link, or withdraw it"
    ).add_subparsers(required=True, metavar="ACTION")
    link = patient.add_parser(
        "link", help="enroll a patient with their care team and print their standing link"
    )
    link.add_argument(
        "--patient", required=True, metavar="ID", help="the patient's pseudonymous id"
    )
    link.add_argument(
        "--care-team",
        action="append",
        required=True,
        metavar="ID:FUNCTION[:DISPLAY NAME]",
        help="a clinician of the care team; repeat for each. FUNCTION (required here) is one of "
        f"{', '.join(CareFunction)}",
    )
    link.add_argument("--partner", metavar="ID", help="a couples partner who may ask together")
    _server_arguments(link)
    link.set_defaults(command=cmd_patient_link)
    revoke = patient.add_parser("revoke", help="withdraw a patient's standing link everywhere")
    revoke.add_argument(
        "--patient", required=True, metavar="ID", help="the patient's pseudonymous id"
    )
    _server_arguments(revoke)
    revoke.set_defaults(command=cmd_patient_revoke)


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the server (default HOMEROOM_PUBLIC_URL)")
    parser.add_argument("--token", help="admin staff token (default: one from this secret)")


def care_team_member(text: str) -> dict[str, str]:
    """``c-17:counselor:Dr. Rivera`` -> the API's care-team member."""
    clinician, _, rest = text.partition(":")
    function, _, name = rest.partition(":")
    if not is_valid_id(clinician):
        raise InvalidMessage(f"--care-team {text!r}: the clinician id comes first (c-17:counselor)")
    if function not in set(CareFunction):
        raise InvalidMessage(
            f"--care-team {text!r}: after the id comes the function, one of "
            + ", ".join(CareFunction)
        )
    member = {"clinician": clinician, "function": function}
    if name.strip():
        member["display_name"] = name.strip()
    return member


def cmd_patient_link(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"care_team": [care_team_member(t) for t in args.care_team]}
    if args.partner:
        body["partner"] = args.partner
    answer = asyncio.run(_call(args, "POST", body))
    print(json.dumps(answer, indent=2))
    return 0


def cmd_patient_revoke(args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_call(args, "DELETE", None)), indent=2))
    return 0


async def _call(args: argparse.Namespace, method: str, body: dict[str, Any] | None) -> Any:
    if not is_valid_id(args.patient):
        raise InvalidMessage("--patient: use letters, digits and . _ - only (a pseudonym)")
    settings = load_settings()
    base = args.url or settings.public_url
    url = f"{base.rstrip('/')}/api/patients/{args.patient}/link"
    headers = {"Authorization": f"Bearer {args.token or cli_token(settings)}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
            http.request(method, url, json=body, headers=headers) as resp,
        ):
            answer = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise CliError(
            "server_unreachable",
            f"no Homeroom server answered at {base} ({exc.__class__.__name__}); "
            "start one with `make run`",
        ) from None
    if resp.status >= 300:
        raise CliError(str(answer.get("error", resp.status)), str(answer.get("detail", "")))
    return answer
