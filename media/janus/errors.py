"""Janus's errors, and the one place they become Homeroom's stable error codes.

Janus answers a failed request in two shapes: a core ``{"janus": "error", "error": {code,
reason}}`` (bad session, bad secret, ...) and a plugin event whose data carries ``error_code``
and ``error`` (VideoRoom: no such room, wrong pin, ...). Both become a :class:`JanusError`;
:func:`homeroom_code` names what a client of Homeroom may be told. Janus's reasons stay in
Homeroom's logs only as codes: they can quote the request.
"""

from __future__ import annotations

from media.errors import MediaError

#: What Homeroom tells its clients when the forwarder failed them.
FORWARDER_UNAVAILABLE = "forwarder_unavailable"
#: The forwarder refused a request Homeroom should not have made (a state mismatch).
FORWARDER_REJECTED = "forwarder_rejected"
#: A JSEP or candidate Janus could not use (the client's offer or answer was bad).
INVALID_MEDIA = "invalid_media"

# Janus core codes (janus/apierror.h) and VideoRoom plugin codes (JANUS_VIDEOROOM_ERROR_*).
_CORE_UNAVAILABLE = {458, 459, 490}  # session or handle not found, transport gone
_CORE_BAD_JSEP = {464, 465}  # JSEP unknown type / invalid SDP
_VIDEOROOM_NO_SUCH = {426, 428}  # no such room / no such feed
_VIDEOROOM_BAD_SDP = {431, 432}  # invalid SDP / invalid SDP type


class JanusError(MediaError):
    """A request Janus refused, or a Janus that could not be reached (``status`` None)."""

    def __init__(self, status: int | None, reason: str, *, plugin: bool = False) -> None:
        self.status, self.reason, self.plugin = status, reason, plugin
        super().__init__(homeroom_code(status, plugin=plugin), f"janus {status}: {reason}")


class JanusUnavailable(JanusError):
    """The connection to Janus is gone or never came up."""

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


def homeroom_code(status: int | None, *, plugin: bool = False) -> str:
    """The Homeroom error code for a Janus error code (core or, with ``plugin``, VideoRoom)."""
    if status is None:
        return FORWARDER_UNAVAILABLE
    if plugin:
        if status in _VIDEOROOM_BAD_SDP:
            return INVALID_MEDIA
        if status in _VIDEOROOM_NO_SUCH:
            return FORWARDER_UNAVAILABLE
        return FORWARDER_REJECTED
    if status in _CORE_BAD_JSEP:
        return INVALID_MEDIA
    if status in _CORE_UNAVAILABLE:
        return FORWARDER_UNAVAILABLE
    return FORWARDER_REJECTED
