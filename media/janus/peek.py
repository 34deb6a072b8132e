"""What a room's publishers publish, asked of Janus by a handle that joins and leaves at once.

A node moderates feeds it does not hold (a clinician on one node mutes a patient on another):
``moderate`` addresses the feed's audio m-lines, which only the publisher's own node learned
from its answer. Janus tells every participant that joins which feeds are published and their
streams, so a passing participant that never publishes (nobody is told it came) finds them.
"""

from __future__ import annotations

from media.janus.client import JanusSession
from media.janus.errors import JanusError
from media.janus.videoroom import JoinPublisher

_NO_SUCH_ROOM = 426
#: The display of the passing participant (feeds' displays are endpoint ids).
PEEK_DISPLAY = "homeroom-peek"


async def published_mids(
    session: JanusSession, *, room: int, pin: str, feed: int, kind: str
) -> tuple[str, ...]:
    """The mids of ``feed``'s published streams of ``kind`` in ``room`` (none: not there)."""
    handle = await session.attach()
    try:
        join = JoinPublisher(room=room, pin=pin, display=PEEK_DISPLAY)
        reply = await handle.send_async(join.body())
    except JanusError as error:
        if error.status != _NO_SUCH_ROOM:
            raise
        return ()
    finally:
        await handle.detach()
    for publisher in reply.plugin_data.get("publishers", []):
        if int(publisher["id"]) == feed:
            streams = publisher.get("streams", [])
            return tuple(
                str(s["mid"]) for s in streams if s.get("type") == kind and not s.get("disabled")
            )
    return ()
