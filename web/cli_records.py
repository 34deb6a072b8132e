"""``homeroom attendance export|summarize`` (and the records half of the CLI)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError

from config.billing import load_billing_rules
from config.settings import Settings, load_settings
from rooms.archive_check import ArchiveCheck, check_archive
from rooms.attendance.exports import summarize_jsonl, to_csv
from rooms.attendance.report import Report, admin_view
from rooms.attendance.summary import rows_of
from rooms.errors import InvalidMessage
from rooms.ids import NodeId
from rooms.service import Rooms
from rooms.store import open_store
from web.audit import RangeParams, run_archive, verify
from web.cli_base import CLI_SUBJECT, CliError, cli_token
from web.errors import describe
from web.records import AttendanceParams, export


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    attendance = sub.add_parser(
        "attendance", help="export attendance and billing suggestions"
    ).add_subparsers(required=True, metavar="ACTION")
    out = attendance.add_parser("export", help="export attendance for a range of program days")
    out.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    out.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    out.add_argument(
        "--format",
        default="csv",
        choices=["csv", "jsonl", "fhir", "json"],
        help="csv for a spreadsheet (default), jsonl, fhir (a FHIR bundle) or json",
    )
    out.add_argument("--session", help="one session id")
    out.add_argument("--patient", help="one patient's rows")
    out.add_argument("--output", type=Path, help="write here instead of standard output")
    out.add_argument("--url", help="export through this server's API (default: see docs/cli.md)")
    out.add_argument("--token", help="admin token for --url (default: one from this secret)")
    out.set_defaults(command=cmd_export)
    again = attendance.add_parser("summarize", help="recompute summaries from a JSONL export")
    again.add_argument("--events", type=Path, required=True, help="a JSONL export or archive")
    again.add_argument(
        "--format", default="csv", choices=["csv", "json"], help="csv (default) or json"
    )
    again.add_argument(
        "--unverified",
        action="store_true",
        help="summarize even when the file's hash chains are broken (warns on stderr)",
    )
    again.set_defaults(command=cmd_summarize)
    audit = sub.add_parser("audit", help="check the tamper-evident audit trail").add_subparsers(
        required=True, metavar="ACTION"
    )
    check = audit.add_parser("verify", help="check every hash chain; report the first break")
    check.add_argument("--from", dest="first", help="first day of sessions (default: all)")
    check.add_argument("--to", dest="last", help="last day of sessions (default: all)")
    check.add_argument(
        "--archive",
        type=Path,
        metavar="FILE",
        help="check an archive, admin log copy or JSONL export file instead of the store",
    )
    _add_server_options(check)
    check.set_defaults(command=cmd_verify)
    keep = sub.add_parser("archive", help="copy session ledgers into daily JSONL files")
    keep.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    keep.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    keep.add_argument(
        "--dir", type=Path, help="with REDIS_URL (no --url): where (default var/archive)"
    )
    _add_server_options(keep)
    keep.set_defaults(command=cmd_archive)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="go through this server's API (default: see docs/cli.md)")
    parser.add_argument("--token", help="admin token for --url (default: one from this secret)")


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every chain verifies, 1 naming the first broken link otherwise."""
    if args.archive is not None:
        return _verify_file(args)
    settings = load_settings()
    params = _range(args, RangeParams)
    query = params.model_dump(mode="json", by_alias=True)

    async def direct(rooms: Rooms) -> str:
        return json.dumps(
            await verify(rooms, settings.timezone, params.first, params.last, actor=CLI_SUBJECT)
        )

    body = json.loads(through(settings, args, ("GET", "/api/audit/verify", query), direct))
    print(json.dumps({k: body[k] for k in ("ok", "chains", "first_broken")}, indent=2))
    return 0 if body["ok"] else 1


def _verify_file(args: argparse.Namespace) -> int:
    if args.first or args.last or args.url:
        raise InvalidMessage("--archive checks a file: leave out --from, --to and --url")
    check = _checked(args.archive, "--archive")
    print(check.model_dump_json(indent=2, exclude={"reports"}))
    return 0 if check.ok else 1


def _checked(path: Path, option: str) -> ArchiveCheck:
    try:
        return check_archive(path)
    except OSError as exc:
        raise InvalidMessage(f"{option}: {exc.strerror or exc}") from None


def cmd_archive(args: argparse.Namespace) -> int:
    settings = load_settings()
    params = _range(args, RangeParams)
    if args.dir is not None and _through_server(settings, args):
        # Through a server, the server writes the files, on its own disk.
        raise InvalidMessage(
            "--dir works only when this command writes straight from Redis (REDIS_URL set, "
            "no --url); through a server the files go to that server's var/archive"
        )
    directory = args.dir or settings.var_dir / "archive"

    async def direct(rooms: Rooms) -> str:
        report = await run_archive(
            rooms, directory, settings.timezone, params.first, params.last, actor=CLI_SUBJECT
        )
        return json.dumps(report)

    request = ("POST", "/api/archive", params.model_dump(mode="json", by_alias=True))
    body = json.loads(through(settings, args, request, direct))
    print(json.dumps(body, indent=2))
    return 0 if body["ok"] else 1


def _range(args: argparse.Namespace, model: type[RangeParams]) -> RangeParams:
    raw = {k: v for k, v in (("from", args.first), ("to", args.last)) if v}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None


def through(
    settings: Settings,
    args: argparse.Namespace,
    request: tuple[str, str, dict[str, Any]],
    direct: Callable[[Rooms], Awaitable[str]],
) -> str:
    """Straight to Redis when REDIS_URL is set; else through the server holding the store
    (the embedded store lives inside the server process)."""
    if _through_server(settings, args):
        token = args.token or cli_token(settings)
        return asyncio.run(_over_http(args.url or settings.public_url, token, request))

    async def run() -> str:
        store = open_store(settings.redis_url, prefix=settings.redis_prefix)
        try:
            return await direct(Rooms(store, node=NodeId(settings.node_id)))
        finally:
            await store.close()

    return asyncio.run(run())


def _through_server(settings: Settings, args: argparse.Namespace) -> bool:
    """True when a records command goes through a server's API rather than straight to Redis:
    ``--url`` given, or no REDIS_URL (the embedded store lives inside the server process)."""
    return bool(args.url) or settings.redis_url is None


async def _over_http(base_url: str, token: str, request: tuple[str, str, dict[str, Any]]) -> str:
    """The body of a 200 answer; any other answer becomes its error code."""
    method, path, data = request
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=300)
    options: dict[str, Any] = {"params": data} if method == "GET" else {"json": data}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(method, base_url.rstrip("/") + path, headers=headers, **options) as resp,
        ):
            text = await resp.text(encoding="utf-8")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CliError("server_unreachable", f"{exc.__class__.__name__}: {exc}") from None
    if resp.status != 200:
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        raise CliError(str(body.get("error", resp.status)), str(body.get("detail", "")))
    return text


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    params = _params(args)
    query = params.model_dump(mode="json", by_alias=True, exclude_none=True)

    async def direct(rooms: Rooms) -> str:
        rules = load_billing_rules(settings.billing_rules)
        return await export(rooms, rules, settings.timezone, params, actor=CLI_SUBJECT)

    _write(through(settings, args, ("GET", "/api/attendance", query), direct), args.output)
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    """Summaries are what the clinic bills from: a file whose chains do not verify is refused
    unless the operator says ``--unverified``."""
    check = _checked(args.events, "--events")
    if not check.ok:
        if not args.unverified:
            raise CliError(
                "chain_broken",
                f"--events: {check.problem()}; the file is not the record as written. "
                f"Details: homeroom audit verify --archive {args.events}; to summarize it "
                "anyway, add --unverified",
            )
        print(f"warning: unverified input: {check.problem()}", file=sys.stderr)
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


def _write(body: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(body)
    else:
        # newline="" keeps the CSV's CRLF line endings exactly as rendered.
        output.write_text(body, encoding="utf-8", newline="")
