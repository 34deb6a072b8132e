"""VideoRoom plugin requests as pydantic models (Janus 1.x, multistream).

Each model dumps to the ``body`` of a plugin message; fields left None are not sent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    model_config = ConfigDict(frozen=True)

    def body(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class CreateRoom(Request):
    request: Literal["create"] = "create"
    room: int
    description: str
    secret: str
    pin: str
    admin_key: str | None = None
    permanent: bool = False
    is_private: bool = True
    publishers: int
    bitrate: int
    bitrate_cap: bool = True
    fir_freq: int = 10
    audiocodec: str = "opus"
    videocodec: str = "vp8"
    notify_joining: bool = False
    audiolevel_event: bool = True
    audio_active_packets: int = 50
    audio_level_average: int = 40


class DestroyRoom(Request):
    request: Literal["destroy"] = "destroy"
    room: int
    secret: str
    permanent: bool = False


class ListRooms(Request):
    request: Literal["list"] = "list"
    admin_key: str | None = None


class ListParticipants(Request):
    request: Literal["listparticipants"] = "listparticipants"
    room: int


class JoinPublisher(Request):
    request: Literal["join"] = "join"
    ptype: Literal["publisher"] = "publisher"
    room: int
    pin: str
    id: int | None = None
    display: str | None = None


class Publish(Request):
    request: Literal["publish"] = "publish"


class Configure(Request):
    """A publisher's renegotiation (with a JSEP offer), or a subscriber's layer choice."""

    request: Literal["configure"] = "configure"
    streams: list[StreamLayer] | None = None


class StreamLayer(BaseModel):
    model_config = ConfigDict(frozen=True)

    mid: str
    substream: int | None = None
    temporal: int | None = None


class Feed(BaseModel):
    model_config = ConfigDict(frozen=True)

    feed: int


class JoinSubscriber(Request):
    request: Literal["join"] = "join"
    ptype: Literal["subscriber"] = "subscriber"
    room: int
    pin: str
    streams: list[Feed]
    use_msid: bool = True


class Update(Request):
    request: Literal["update"] = "update"
    subscribe: list[Feed] | None = None
    unsubscribe: list[Feed] | None = None


class Start(Request):
    request: Literal["start"] = "start"


class Moderate(Request):
    request: Literal["moderate"] = "moderate"
    room: int
    secret: str
    id: int
    mid: str
    mute: bool


class Kick(Request):
    request: Literal["kick"] = "kick"
    room: int
    secret: str
    id: int


Configure.model_rebuild()
