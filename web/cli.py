"""The ``homeroom`` command: serve, session create, token, probe, attendance, audit, archive.

Errors print ``error: <code>: <detail>`` on stderr and exit 1 (usage errors exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import os
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from pydantic import ValidationError

from config.logging import configure_logging
from config.settings import Settings, load_settings
from media.errors import ProbeFailed
from media.group_probe import MAX_PARTICIPANTS, MIN_PARTICIPANTS, group_probe
from media.probe import probe
from rooms.clock import utcnow
from rooms.errors import HomeroomError, InvalidMessage, InvalidRoster
from rooms.ids import NodeId, is_valid_id
from rooms.kinds import CareFunction, GroupPurpose, SessionKind
from rooms.service import CreateSession, Rooms
from rooms.store import open_store
from rooms.tokens import StaffRole, issue_staff_token
from web import cli_program, cli_records
from web.app import create_app
from web.cli_base import CLI_SUBJECT, CliError, cli_token
from web.errors import describe
from web.keys import ROOMS
from web.revocation import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, RevokeToken, revoke
from web.sessions import created_body
from web.shutdown import REQUESTS_GRACE_SECONDS, shut_down

log = structlog.get_logger("cli")
#: What ``homeroom --help`` says above the list of commands.
DESCRIPTION = """\
Homeroom runs the video sessions of a virtual intensive outpatient program:
individual, couples and group sessions, a waiting room, attendance records.

Run `homeroom COMMAND --help` for a command's options. Answers go to standard
output; errors print `error: <code>: <sentence>` and exit 1 (usage errors 2).
Details: docs/cli.md."""
#: Allocations between young collections (CPython's default is 700).
GC_YOUNG = 20_000


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``homeroom`` console script."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    if command is not cmd_serve:
        # Standard output is the command's answer (JSON, CSV): warnings go to stderr.
        configure_logging("console", level="warning", stream=sys.stderr)
    try:
        return command(args)
    except (HomeroomError, CliError) as exc:
        print(f"error: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeroom",
        description=DESCRIPTION,
        # Every command and its purpose on one line each, the description as written.
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, max_help_position=24
        ),
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")
    serve = sub.add_parser("serve", help="run the server: pages, API and signaling")
    serve.add_argument("--host", help="interface to listen on (HOMEROOM_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (HOMEROOM_PORT)")
    serve.add_argument("--demo", action="store_true", help="create a demo session, print links")
    serve.set_defaults(command=cmd_serve)
    session = sub.add_parser(
        "session", help="schedule a session and print its links"
    ).add_subparsers(required=True, metavar="ACTION")
    create = session.add_parser("create", help="schedule a session and print its links")
    _add_create_arguments(create)
    create.set_defaults(command=cmd_session_create)
    token = sub.add_parser(
        "token",
        help="print a staff bearer token, or revoke one",
        usage="homeroom token --role ROLE --subject ID [--days N]\n"
        "       homeroom token revoke (TOKEN | --jti ID) [--url URL] [--auth-token T]",
    )
    token.add_argument("action", nargs="?", choices=["revoke"], help=argparse.SUPPRESS)
    token.add_argument("target", nargs="?", metavar="TOKEN", help="revoke: the token")
    token.add_argument(
        "--role",
        choices=[str(r) for r in StaffRole],
        help="admin (every session, attendance, audit) or clinician (sessions on its roster)",
    )
    token.add_argument("--subject", help="the staff member's pseudonymous id")
    token.add_argument(
        "--days",
        type=int,
        default=DEFAULT_TOKEN_DAYS,
        help=f"validity in days (default {DEFAULT_TOKEN_DAYS}, at most {MAX_TOKEN_DAYS})",
    )
    token.add_argument("--jti", help="revoke: the token's id, when the token itself is lost")
    token.add_argument("--url", help="revoke through this server (default: see docs/cli.md)")
    token.add_argument("--auth-token", dest="token", help="admin token for --url")
    token.set_defaults(command=cmd_token)
    probe = sub.add_parser("probe", help="check a deployment with a real two-party call")
    probe.add_argument("--url", help="the Homeroom to check (default HOMEROOM_PUBLIC_URL)")
    probe.add_argument("--token", help="admin staff token (default: one from this secret)")
    probe.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    probe.add_argument(
        "--relay-only",
        action="store_true",
        help="send the media through the deployment's TURN relays alone (checks TURN)",
    )
    probe.add_argument(
        "--kind",
        choices=["individual", "group"],
        default="individual",
        help="a two-party call (default), or a group through the forwarding unit",
    )
    probe.add_argument(
        "--participants", type=int, default=3, help="group: endpoints in the call (2-14)"
    )
    probe.set_defaults(command=cmd_probe)
    cli_records.add_commands(sub)
    cli_program.add_commands(sub)
    return parser


def _add_create_arguments(create: argparse.ArgumentParser) -> None:
    add = create.add_argument
    add("--kind", required=True, choices=[str(k) for k in SessionKind], help="the kind of session")
    add(
        "--clinician",
        action="append",
        default=[],
        metavar="ID[:FUNCTION]",
        help="a clinician on the roster; repeat for more. FUNCTION (optional, the kind's usual "
        f"one by default) is one of {', '.join(CareFunction)}",
    )
    add("--patient", action="append", default=[], metavar="ID", help="a patient; repeat for more")
    add(
        "--guest",
        action="append",
        default=[],
        metavar="ID",
        help="a family guest (family_education groups); repeat for more",
    )
    add("--starts", help="ISO 8601; without an offset, in HOMEROOM_TIMEZONE (default: now)")
    add("--minutes", type=int, default=60, help="planned length (default 60)")
    add("--purpose", choices=[str(p) for p in GroupPurpose], help="group sessions only")
    add("--capacity", type=int, help="group sessions only (default HOMEROOM_GROUP_CAPACITY)")
    add("--identified-patient", metavar="ID", help="couples sessions: the claim's subject")
    add("--url", help="create through this server's API (default: see docs/cli.md)")
    add("--token", help="staff token for --url (default: an admin token from this secret)")
    add(
        "--operator",
        metavar="ID",
        help="your staff id, recorded as who created the session (default: cli.<login name>)",
    )


def cmd_token(args: argparse.Namespace) -> int:
    if args.action == "revoke":
        return cmd_token_revoke(args)
    if args.role is None or args.subject is None or args.target is not None:
        raise InvalidMessage("give --role and --subject (or: homeroom token revoke TOKEN)")
    if not is_valid_id(args.subject):
        raise InvalidMessage("--subject: use letters, digits and . _ - only (a pseudonym)")
    if not 1 <= args.days <= MAX_TOKEN_DAYS:
        raise InvalidMessage(f"--days: between 1 and {MAX_TOKEN_DAYS}")
    settings = load_settings()
    ttl = timedelta(days=args.days)
    print(
        issue_staff_token(
            settings.signing_secret, StaffRole(args.role), args.subject, utcnow(), ttl
        )
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Put a staff token's id on the store's revocation list (every node refuses it)."""
    try:
        body = RevokeToken(token=args.target, jti=args.jti)
    except ValidationError as exc:
        raise InvalidMessage(describe(exc)) from None
    settings = load_settings()

    async def direct(rooms: Rooms) -> str:
        answer = await revoke(rooms, settings.signing_secret, body, actor=CLI_SUBJECT)
        return json.dumps(answer)

    request = ("POST", "/api/tokens/revoke", body.model_dump(exclude_none=True))
    print(cli_records.through(settings, args, request, direct))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Create an individual session, join a clinician and a patient, admit, and report JSON.
    Exit 0 only when audio and video flowed both ways."""
    settings = load_settings()
    if not 1 <= args.timeout <= 600:
        raise InvalidMessage("--timeout: between 1 and 600 seconds")
    url = args.url or settings.public_url
    if args.kind == "group":
        return probe_group(args, url, settings)
    try:
        token = args.token or cli_token(settings)
        checked = probe(url, token, timeout=args.timeout, relay_only=args.relay_only)
        report = asyncio.run(checked)
    except ProbeFailed as exc:
        raise CliError(exc.code, exc.detail) from None
    print(report.model_dump_json(indent=2))
    return 0 if report.ok else 1


def probe_group(args: argparse.Namespace, url: str, settings: Settings) -> int:
    """``probe --kind group``: N participants; exit 0 only if everyone received everyone."""
    if not MIN_PARTICIPANTS <= args.participants <= MAX_PARTICIPANTS:
        raise InvalidMessage(f"--participants: {MIN_PARTICIPANTS} to {MAX_PARTICIPANTS}")
    try:
        token = args.token or cli_token(settings)
        checked = group_probe(url, token, participants=args.participants, timeout=args.timeout)
        report = asyncio.run(checked)
    except ProbeFailed as exc:
        raise CliError(exc.code, exc.detail) from None
    print(report.model_dump_json(indent=2))
    return 0 if report.ok else 1


def cmd_session_create(args: argparse.Namespace) -> int:
    """Over HTTP to a running server, unless Redis is configured: then straight into Redis.

    The embedded store lives inside the server process, so without Redis the server is the
    only place a session can be created.
    """
    operator = _operator(args.operator)
    settings = load_settings()
    req = _request_from_args(args, settings)
    if args.url or settings.redis_url is None:
        token = args.token or cli_token(settings, operator)
        body = asyncio.run(_create_over_http(args.url or settings.public_url, token, req))
    else:
        body = asyncio.run(_create_in_store(settings, req, operator))
    print(json.dumps(body, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k)) is not None}
    settings = load_settings(**overrides)
    configure_logging(settings.log_format, level=settings.log_level)
    hint = f" --url {settings.public_url}" if overrides else ""
    asyncio.run(_serve(settings, demo=args.demo, url_hint=hint))
    return 0


async def _serve(settings: Settings, *, demo: bool, url_hint: str) -> None:
    # Handlers first: a stop requested while the banner prints must still stop cleanly.
    stop = _stop_on_signals()
    # The port first: a server that cannot listen starts nothing (no embedded Janus, whose
    # files a server already on that port uses).
    listening = _listen(settings.host, settings.port)
    runner = web.AppRunner(create_app(settings), shutdown_timeout=REQUESTS_GRACE_SECONDS)
    try:
        await runner.setup()
    except BaseException:
        listening.close()
        raise
    try:
        await web.SockSite(runner, listening).start()
        log.info("serving", url=settings.public_url, store=_store_name(settings))
        print(await _banner(runner.app, settings, demo, url_hint), flush=True)
        _tune_gc()
        await stop.wait()
    finally:
        await shut_down(runner, settings.drain_seconds)


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound as aiohttp's own site would bind it."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        return socket.create_server((host, port), family=family[0][0], backlog=128)
    except OSError as exc:
        raise CliError("cannot_listen", f"{host}:{port}: {exc.strerror or exc}") from None


def _tune_gc() -> None:
    """Fewer, cheaper full collections. With thousands of connections a full collection scans
    hundreds of thousands of long-lived objects and stalls every call for hundreds of
    milliseconds (measured: bench/README.md). What start-up built is frozen out of the scans;
    young collections still run often, so cyclic garbage is still freed promptly."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 100)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _banner(app: web.Application, settings: Settings, demo: bool, url_hint: str) -> str:
    rooms = app[ROOMS]
    lines = [f"Homeroom is serving {settings.public_url} ({_store_name(settings)} store)."]
    if demo:
        lines += await _demo_session(rooms, settings)
    now = rooms.clock()
    if demo or not await rooms.store.sessions_starting(
        now - timedelta(days=1), now + timedelta(days=400)
    ):
        me = _self_command()
        lines += [
            f"To create {'another' if demo else 'a'} session, in a second terminal here:",
            f"  {me} session create --kind individual --clinician c-1 --patient p-1{url_hint}",
            "or call the REST API with a staff token:",
            f"  TOKEN=$({me} token --role admin --subject admin-1)",
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" -d '{_EXAMPLE_BODY}' "
            f"{settings.public_url}/api/sessions",
        ]
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


_EXAMPLE_BODY = json.dumps(
    {
        "kind": "individual",
        "roster": [
            {"attendee": "c-1", "role": "clinician"},
            {"attendee": "p-1", "role": "patient"},
        ],
    },
    separators=(",", ":"),
)


async def _demo_session(rooms: Rooms, settings: Settings) -> list[str]:
    req = CreateSession.model_validate(
        {"kind": "individual", "roster": json.loads(_EXAMPLE_BODY)["roster"]}
    )
    state = await rooms.create_session(req, created_by="demo")
    created = created_body(state, settings)
    lines = [f"Demo individual session {created.session}, starting now for 60 minutes:"]
    lines += [f"  {link.role:<9} {link.attendee:<6} {link.url}" for link in created.links]
    return lines


def _request_from_args(args: argparse.Namespace, settings: Settings) -> CreateSession:
    _require_identified_patient(args)
    roster: list[dict[str, Any]] = []
    for raw in args.clinician:
        attendee, _, function = raw.partition(":")
        roster.append({"attendee": attendee, "role": "clinician", "function": function or None})
    roster += [{"attendee": a, "role": "patient"} for a in args.patient]
    roster += [{"attendee": a, "role": "guest"} for a in args.guest]
    fields = {
        "kind": args.kind,
        "roster": roster,
        "starts_at": _parse_start(args.starts, settings) if args.starts else None,
        "planned_minutes": args.minutes,
        "purpose": args.purpose,
        "capacity": args.capacity,
        "identified_patient": args.identified_patient,
    }
    try:
        return CreateSession.model_validate(fields)
    except ValidationError as exc:
        where = str(exc.errors()[0]["loc"][0])
        error = InvalidRoster if where in ("kind", "roster") else InvalidMessage
        raise error(describe(exc, names=_CREATE_OPTIONS)) from None


#: ``session create``'s options by the field each one fills.
_CREATE_OPTIONS = {
    "kind": "--kind",
    "starts_at": "--starts",
    "planned_minutes": "--minutes",
    "purpose": "--purpose",
    "capacity": "--capacity",
    "identified_patient": "--identified-patient",
}


def _require_identified_patient(args: argparse.Namespace) -> None:
    """A couples session is billed under one partner's claim: at the command line, where a
    forgotten option would silently bill the first partner, it must be named."""
    if args.kind != "couples" or args.identified_patient or len(args.patient) != 2:
        return
    first = args.patient[0] if is_valid_id(args.patient[0]) else "ID"
    raise InvalidRoster(
        "a couples session is billed under one partner's claim: say whose with "
        f"--identified-patient, one of the two --patient ids (e.g. --identified-patient {first})"
    )


def _parse_start(text: str, settings: Settings) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidMessage("--starts: use ISO 8601, e.g. 2025-03-01T17:00") from None
    local = moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)
    return local.astimezone(UTC)


async def _create_over_http(base_url: str, token: str, req: CreateSession) -> Any:
    url = f"{base_url.rstrip('/')}/api/sessions"
    headers = {"Authorization": f"Bearer {token}"}
    payload = req.model_dump(mode="json", exclude_none=True)
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, json=payload, headers=headers) as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise CliError(
            "server_unreachable",
            f"no Homeroom server answered at {base_url} ({exc.__class__.__name__}); "
            "start one with `make run`, or set REDIS_URL to write to Redis directly",
        ) from None
    if resp.status != 201:
        raise CliError(str(body.get("error", resp.status)), str(body.get("detail", "")))
    return body


def _operator(given: str | None) -> str:
    """Who runs ``session create``: recorded as the session's creator (a record, not a grant:
    staff act on a session by role or by being on its roster)."""
    if given is not None:
        if not is_valid_id(given):
            raise InvalidMessage("--operator: use letters, digits and . _ - only (a pseudonym)")
        return given
    try:
        login = f"{CLI_SUBJECT}.{getpass.getuser()}"[:64]
    except (OSError, KeyError):  # no login name (a container's bare uid)
        return CLI_SUBJECT
    return login if is_valid_id(login) else CLI_SUBJECT


async def _create_in_store(settings: Settings, req: CreateSession, operator: str) -> Any:
    store = open_store(settings.redis_url, prefix=settings.redis_prefix)
    try:
        rooms = Rooms(store, node=NodeId(settings.node_id), group_capacity=settings.group_capacity)
        state = await rooms.create_session(req, created_by=operator)
    finally:
        await store.close()
    return created_body(state, settings).model_dump(mode="json")


def _store_name(settings: Settings) -> str:
    return "embedded" if settings.redis_url is None else "Redis"


def _self_command() -> str:
    """How this process was started, so printed commands work when pasted as they are."""
    script = sys.argv[0]
    if os.path.basename(script) != "homeroom":  # python -m web.cli
        return f"{shlex.quote(os.path.relpath(sys.executable))} -m web.cli"
    found = shutil.which("homeroom")
    if found and os.path.exists(script) and os.path.samefile(found, script):
        return "homeroom"
    return shlex.quote(os.path.relpath(script))


if __name__ == "__main__":
    sys.exit(main())
