"""What every ``homeroom`` subcommand shares: its error type and the token it mints."""

from __future__ import annotations

from datetime import timedelta

from config.settings import Settings
from rooms.clock import utcnow
from rooms.tokens import StaffRole, issue_staff_token

#: Subject of the admin token the CLI mints for itself when none is given, and of the CLI's
#: entries in the admin audit log.
CLI_SUBJECT = "cli"


class CliError(Exception):
    """A failure outside the domain (server unreachable, port taken), printed like the others."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def cli_token(settings: Settings, subject: str = CLI_SUBJECT) -> str:
    """A short admin token for ``subject`` (the operator running the command)."""
    # Whoever can read the signing secret can mint any token, so this grants nothing new.
    return issue_staff_token(
        settings.signing_secret, StaffRole.ADMIN, subject, utcnow(), timedelta(minutes=5)
    )
