"""Settings from environment variables (prefix ``HOMEROOM_``) and an optional ``.env`` file."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.production import production_problems
from rooms.checkins import DutyHours
from rooms.explain import sentence

ENV_PREFIX = "HOMEROOM_"
#: Bytes of a signing secret: HS256 wants a key at least as long as its 256-bit output.
MIN_SECRET_BYTES = 32
#: Hosts that mean "every interface": a browser cannot open a link to them.
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class IceServer(BaseModel):
    """One RTCIceServer entry as the browser expects it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    """Everything a Homeroom process reads from its environment. Field order matters:
    defaults computed from other fields (public URL, secret, log format) come after them."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        # An empty variable means "unset", so `HOMEROOM_SECRET=` falls back to the default.
        env_ignore_empty=True,
        frozen=True,
    )

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = Field(default_factory=lambda data: _default_public_url(data))
    var_dir: Path = Path("var")
    secret: SecretStr = Field(default_factory=lambda data: _development_secret(data["var_dir"]))
    # The conventional name, shared with other tools: no HOMEROOM_ prefix.
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))
    #: Namespace of every Redis key, so deployments (or test runs) can share one server.
    redis_prefix: str = Field(default="hr", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
    timezone: str = "America/New_York"
    #: The clinic's name as patients read it on their pages (empty: "Homeroom"). Patient pages
    #: never name the program's treatment focus on their own: only if the clinic's name does.
    clinic_name: str = Field(default="", max_length=80, pattern=r"^[^\x00-\x1f\x7f<>]*$")
    reconnect_grace_seconds: float = Field(default=30, ge=0, le=3600)
    group_capacity: int = Field(default=12, ge=1, le=200)
    link_lead_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60)
    link_trail_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # Empty: nothing in the default configuration contacts a third party.
    # NoDecode: parsed by _parse_ice_servers, so bad JSON is a validation error naming the variable.
    ice_servers: Annotated[list[IceServer], NoDecode] = []
    #: TURN relays sharing a secret with Homeroom (coturn use-auth-secret): each attendee gets
    #: credentials of their own, valid until turn_ttl_seconds after the session's planned end.
    turn_urls: Annotated[list[str], NoDecode] = []
    turn_secret: SecretStr | None = None
    turn_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    #: Seconds between a node's heartbeats; a node silent for three of them counts as dead.
    heartbeat_seconds: float = Field(default=5, gt=0, le=300)
    #: A port of its own for /metrics, unauthenticated (bind it to the monitoring network only);
    #: unset: /metrics is on the main port, to an admin bearer token only.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Seconds a stopping node gives its endpoints to resume on another node (SIGTERM).
    drain_seconds: float = Field(default=3, ge=0, le=30)
    #: A billing rules file (TOML, see docs/attendance.md); unset: the packaged defaults.
    billing_rules: Path | None = None
    log_format: Literal["json", "console"] = Field(
        default_factory=lambda data: "json" if data.get("env") == "production" else "console"
    )
    #: The least severe level written: debug, info, warning or error.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    node_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    #: When clinicians take on-demand check-ins, in the program's time zone (rooms.checkins).
    checkin_hours: str = "08:00-20:00"
    #: What a patient reads when nobody is on duty (and on the program page): the crisis line.
    crisis_line: str = Field(
        default="If you are in crisis, call or text 988 (Suicide & Crisis Lifeline), "
        "or call 911 in an emergency.",
        min_length=1,
        max_length=400,
    )
    #: How long a standing program link stays valid (it can be withdrawn any time before).
    program_link_days: int = Field(default=365, ge=1, le=3 * 366)
    #: Planned length of a session a check-in opens.
    checkin_minutes: int = Field(default=30, ge=5, le=240)
    #: Attempts at link verification, staff authentication (failed ones) and socket connects
    #: allowed per client address and per token in each window (rooms.ratelimit); 0: no limit.
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_limit_per_address: int = Field(default=120, ge=0, le=1_000_000)
    rate_limit_per_token: int = Field(default=30, ge=0, le=1_000_000)
    #: Per-connection budget of socket.io events (signaling.budget): events a second (bursts
    #: of four times as many) and KiB a second (bursts of twice as many); 0: no budget.
    event_rate: float = Field(default=50, ge=0, le=100_000)
    event_kib_rate: int = Field(default=256, ge=0, le=1_000_000)
    #: Behind a reverse proxy: the client's address is the last one in X-Forwarded-For.
    trust_forwarded_for: bool = False
    #: Janus instances (ws:// URLs of their WebSocket API) forwarding group sessions, and the
    #: API secret they share with Homeroom; unset: ``homeroom serve`` runs a local Janus
    #: child (janus_embedded), or, without the janus binary, groups use the mesh.
    janus_urls: Annotated[list[str], NoDecode] = []
    janus_api_secret: SecretStr | None = None
    janus_embedded: bool = True

    @field_validator("janus_urls", mode="before")
    @classmethod
    def _split_janus_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [url.strip() for url in value.split(",") if url.strip()]
        for url in value:
            if not str(url).startswith(("ws://", "wss://")):
                raise ValueError("each Janus URL is a ws:// or wss:// URL of its WebSocket API")
        return value

    @model_validator(mode="after")
    def _janus_needs_secret(self) -> Settings:
        if self.janus_urls and self.janus_api_secret is None:
            raise ValueError("HOMEROOM_JANUS_URLS needs HOMEROOM_JANUS_API_SECRET")
        return self

    @field_validator("turn_urls", mode="before")
    @classmethod
    def _split_turn_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @model_validator(mode="after")
    def _turn_needs_both(self) -> Settings:
        if bool(self.turn_urls) != (self.turn_secret is not None):
            raise ValueError("HOMEROOM_TURN_URLS and HOMEROOM_TURN_SECRET go together")
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env != "production":
            return self
        problems = production_problems(
            secret=self.secret.get_secret_value(),
            secret_from_environment="secret" in self.model_fields_set,
            public_url=self.public_url,
            turn_secret=self.turn_secret.get_secret_value() if self.turn_secret else None,
            janus_secret=(
                self.janus_api_secret.get_secret_value() if self.janus_api_secret else None
            ),
        )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(
                'must be a JSON list, e.g. [{"urls": "turn:turn.example.org"}]'
            ) from None

    @field_validator("checkin_hours")
    @classmethod
    def _check_checkin_hours(cls, value: str) -> str:
        DutyHours.parse(value)  # a ValueError names the expected form
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as America/New_York") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The program's time zone (dates of service are counted in it)."""
        return ZoneInfo(self.timezone)

    @property
    def signing_secret(self) -> str:
        return self.secret.get_secret_value()


class SettingsError(SystemExit):
    """Invalid settings: exits the process with one line per variable at fault."""


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into a message naming each variable.

    ``overrides`` (e.g. command-line ``--port``) take precedence over the environment.
    """
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise SettingsError(format_errors(exc)) from None


def format_errors(exc: ValidationError) -> str:
    """``error: invalid_settings: HOMEROOM_PORT: Input should be a valid integer; ...``."""
    # A check across variables has no location: its message names the variables itself.
    problems = [
        f"{env_name(err['loc'])}: {sentence(err)}" if err["loc"] else sentence(err)
        for err in exc.errors()
        # A default computed from a field that failed says nothing new.
        if err["type"] != "default_factory_not_called"
    ]
    return "error: invalid_settings: " + "; ".join(problems)


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error location."""
    field = str(loc[0]) if loc else "?"
    if field.upper() == "REDIS_URL":
        return "REDIS_URL"
    path = "".join(f"[{part}]" for part in loc[1:])
    return f"{ENV_PREFIX}{field.upper()}{path}"


def _default_public_url(data: dict[str, Any]) -> str:
    host = data.get("host", "127.0.0.1")
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{data.get('port', 8080)}"


def _development_secret(var_dir: Path) -> SecretStr:
    """A secret generated once and kept in ``var_dir/secret`` so links survive restarts."""
    path = var_dir / "secret"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not overwrite each other's secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
    return SecretStr(path.read_text().strip())
