"""What a production start refuses: secrets anyone can know, and no TLS in front.

``HOMEROOM_ENV=production`` promises patients' links signed with a secret only this clinic
holds and reached over https. A development start may generate its secret into ``var/`` and
serve plain http on a laptop; in production either would be a silent hole, so the process
stops at start-up and says which variable to set.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: Words in the placeholders of .env.example and the docs: a value that still holds one was
#: copied, not generated.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "example", "development", "placeholder")


def looks_like_placeholder(value: str) -> bool:
    """True for a value copied from an example rather than generated."""
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def production_problems(
    *,
    secret: str,
    secret_from_environment: bool,
    public_url: str,
    turn_secret: str | None,
    janus_secret: str | None = None,
) -> list[str]:
    """Why a production start must not go on; empty when it may."""
    problems = []
    if not secret_from_environment:
        problems.append(
            "HOMEROOM_SECRET: must be set in production (the secret generated into "
            "HOMEROOM_VAR_DIR is for development; generate one with: openssl rand -hex 32)"
        )
    elif looks_like_placeholder(secret):
        problems.append("HOMEROOM_SECRET: is a development or example value; generate a new one")
    for name, value in (("TURN", turn_secret), ("JANUS_API", janus_secret)):
        if value is not None and looks_like_placeholder(value):
            problems.append(
                f"HOMEROOM_{name}_SECRET: is a development or example value; generate a new one"
            )
    if urlsplit(public_url).scheme != "https":
        problems.append(
            "HOMEROOM_PUBLIC_URL: must be the https:// address of the TLS proxy in front of "
            "Homeroom in production (browsers give a page on plain http no camera, and links "
            "would travel in clear)"
        )
    return problems
