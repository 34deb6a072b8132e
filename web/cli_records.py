"""``homeroom attendance export|summarize`` (and the records half of the CLI)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from pydantic import ValidationError

from config.billing import load_billing_rules
from config.settings import Settings, load_settings
from rooms.attendance.exports import summarize_jsonl, to_csv
from rooms.attendance.report import Report, admin_view
from rooms.attendance.summary import rows_of
from rooms.errors import InvalidMessage
from rooms.ids import NodeId
from rooms.service import Rooms
from rooms.store import open_store
from web.cli_base import CLI_SUBJECT, CliError, cli_token
from web.errors import describe
from web.records import AttendanceParams, export


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    attendance = sub.add_parser("attendance", help="attendance exports").add_subparsers(
        required=True, metavar="ACTION"
    )
    out = attendance.add_parser("export", help="export attendance for a range of program days")
    out.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    out.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    out.add_argument("--format", default="csv", choices=["csv", "jsonl", "fhir", "json"])
    out.add_argument("--session", help="one session id")
    out.add_argument("--patient", help="one patient's rows")
    out.add_argument("--output", type=Path, help="write here instead of standard output")
    out.add_argument("--url", help="export through this server's API (default: see README)")
    out.add_argument("--token", help="admin token for --url (default: one from this secret)")
    out.set_defaults(command=cmd_export)
    again = attendance.add_parser("summarize", help="recompute summaries from a JSONL export")
    again.add_argument("--events", type=Path, required=True, help="a JSONL export or archive")
    again.add_argument("--format", default="csv", choices=["csv", "json"])
    again.set_defaults(command=cmd_summarize)


def cmd_export(args: argparse.Namespace) -> int:
    """Straight from Redis when REDIS_URL is set; otherwise through the running server, which
    holds the embedded store."""
    settings = load_settings()
    params = _params(args)
    if args.url or settings.redis_url is None:
        token = args.token or cli_token(settings)
        try:
            body = asyncio.run(_over_http(args.url or settings.public_url, token, params))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CliError("server_unreachable", f"{exc.__class__.__name__}: {exc}") from None
    else:
        body = asyncio.run(_from_store(settings, params))
    _write(body, args.output)
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    settings = load_settings()
    rules = load_billing_rules(settings.billing_rules)
    try:
        with args.events.open(encoding="utf-8") as lines:
            summaries = list(summarize_jsonl(lines, tz=settings.timezone, rules=rules))
    except OSError as exc:
        raise InvalidMessage(f"--events: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidMessage(f"--events: {exc}") from None
    if args.format == "csv":
        body = to_csv(rows_of(summaries))
    else:
        body = json.dumps(admin_view(Report({}, [], summaries), rules), indent=1)
    _write(body, None)
    return 0


def _params(args: argparse.Namespace) -> AttendanceParams:
    raw = {"from": args.first, "to": args.last, "format": args.format}
    raw |= {k: v for k in ("session", "patient") if (v := getattr(args, k))}
    try:
        return AttendanceParams.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


async def _over_http(base_url: str, token: str, params: AttendanceParams) -> str:
    query = params.model_dump(mode="json", by_alias=True, exclude_none=True)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    url = f"{base_url.rstrip('/')}/api/attendance"
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(url, params=query, headers=headers) as resp,
    ):
        if resp.status != 200:
            body = await resp.json(content_type=None)
            raise CliError(str(body.get("error", resp.status)), str(body.get("detail", "")))
        return await resp.text(encoding="utf-8")


async def _from_store(settings: Settings, params: AttendanceParams) -> str:
    store = open_store(settings.redis_url, prefix=settings.redis_prefix)
    try:
        rooms = Rooms(store, node=NodeId(settings.node_id))
        rules = load_billing_rules(settings.billing_rules)
        return await export(rooms, rules, settings.timezone, params, actor=CLI_SUBJECT)
    finally:
        await store.close()


def _write(body: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(body)
    else:
        # newline="" keeps the CSV's CRLF line endings exactly as rendered.
        output.write_text(body, encoding="utf-8", newline="")
