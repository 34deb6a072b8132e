"""Janus's JSON API messages as pydantic models: what Homeroom sends and what it reads back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from media.janus.errors import JanusError


class Jsep(BaseModel):
    """A session description as Janus and the browsers exchange it."""

    model_config = ConfigDict(frozen=True)

    type: Literal["offer", "answer"]
    sdp: str = Field(min_length=1, max_length=64 * 1024)


class Candidate(BaseModel):
    """One trickled ICE candidate, as RTCIceCandidate.toJSON() gives it."""

    model_config = ConfigDict(frozen=True)

    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=64)  # the W3C field names
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)


class CoreError(BaseModel):
    code: int
    reason: str = ""


class PluginData(BaseModel):
    plugin: str
    data: dict[str, Any] = {}


class Reply(BaseModel):
    """Any message Janus sends: an answer to a transaction or an asynchronous event."""

    model_config = ConfigDict(extra="allow")

    janus: str
    transaction: str | None = None
    session_id: int | None = None
    sender: int | None = None
    data: dict[str, Any] | None = None
    plugindata: PluginData | None = None
    jsep: Jsep | None = None
    error: CoreError | None = None
    candidate: dict[str, Any] | None = None

    def raise_for_error(self) -> None:
        """Raise the :class:`JanusError` this message carries, core or plugin."""
        if self.janus == "error":
            error = self.error or CoreError(code=0, reason="unknown")
            raise JanusError(error.code, error.reason)
        if self.plugindata is not None and "error_code" in self.plugindata.data:
            data = self.plugindata.data
            raise JanusError(int(data["error_code"]), str(data.get("error", "")), plugin=True)

    @property
    def plugin_data(self) -> dict[str, Any]:
        """The plugin's payload ({} for core messages)."""
        return self.plugindata.data if self.plugindata is not None else {}
