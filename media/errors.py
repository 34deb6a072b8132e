"""What can go wrong for a headless participant or a probe, as a stable code and a detail."""

from __future__ import annotations


class MediaError(Exception):
    """Base of media/ errors; ``code`` is stable (a wire code where the server gave one)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class JoinRefused(MediaError):
    """The signaling server refused the connection, or could not be reached."""


class ProbeFailed(MediaError):
    """The probe could not set up its session (API unreachable, token refused, ...)."""
