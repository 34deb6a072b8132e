"""Socket.IO packets as this server writes them, and delivery to this node's own connections.

Two costs of python-socketio's defaults that every event paid: each outgoing packet walked its
whole payload looking for binary attachments (Homeroom never sends binary: every payload is a
JSON object), and each ``emit`` to one connection ran in a task of its own that the caller
then waited for. Packets are encoded by pydantic-core's serializer (the same text as the
standard library's compact ``json.dumps``, at about a third of its cost). Incoming packets
are decoded as before, python-engineio's guard against huge integers included, by one
decoder built once rather than one per packet, and an event for one of the server's own
handlers is dispatched and answered here rather than through python-socketio's general event
machinery (:meth:`Server._handle_event`).
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

import pydantic_core
import socketio
import structlog
from socketio import packet

from rooms.errors import RateLimited
from signaling.budget import Budgets
from signaling.websocket import (
    MESSAGE,
    STOCK_WEBSOCKET,
    MalformedPacket,
    Outbox,
    use_server_websocket,
)

log = structlog.get_logger("homeroom.signaling")

#: Measurement switch (bench/overrides.py): python-socketio's own decoding, dispatch,
#: packets and emits instead of this module's.
STOCK_WIRE = "wire" in os.environ.get("HOMEROOM_STOCK_PATHS", "").split(",")

#: The type prefixes of socket.io EVENT and ACK packets (carried inside Engine.IO MESSAGEs).
_EVENT, _ACK = str(packet.EVENT), str(packet.ACK)
_CONNECT, _CONNECT_ERROR = str(packet.CONNECT), str(packet.CONNECT_ERROR)
#: The socket.io packet types a client may send, as the ASCII digit that starts a packet.
_SOCKETIO_TYPES = frozenset(
    str(t) for t in (packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK)
)


def _bounded_int(text: str) -> int:
    """python-engineio's guard: a JSON integer of more than 100 digits is refused (``int`` of
    a huge digit string costs time quadratic in its length)."""
    if len(text) > 100:
        raise ValueError("Integer is too large")
    return int(text)


#: One decoder for every packet (``json.loads`` with ``parse_int`` builds one per call).
_decode = json.JSONDecoder(parse_int=_bounded_int).decode


class _Json:
    """The JSON module the packets use (and python-socketio's managers: their pub/sub
    messages come as bytes): python-engineio's decoding, its integer guard included, with one
    decoder for all packets; pydantic-core's encoding."""

    @staticmethod
    def loads(text: str | bytes | bytearray, **_: Any) -> Any:
        if not isinstance(text, str):
            text = text.decode(json.detect_encoding(text), "surrogatepass")  # as json.loads
        return _decode(text)

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return compact_json(obj)


def compact_json(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"))``, faster; NaN and infinities (which JSON
    cannot hold, and no Homeroom message carries) become null."""
    return pydantic_core.to_json(obj, ensure_ascii=True, inf_nan_mode="null").decode()


class TextPacket(packet.Packet):  # type: ignore[misc]  # python-socketio is untyped
    """A Socket.IO packet that is never binary (``serializer=`` of the AsyncServer)."""

    uses_binary_events = False
    json = _Json


class Server(socketio.AsyncServer):  # type: ignore[misc]  # python-socketio is untyped
    """python-socketio's server (aiohttp mode) serving its websockets through
    :mod:`signaling.websocket`, whose packets to an open websocket of this node (connect and
    event acknowledgements, emits) are written straight to its
    :class:`~signaling.websocket.Outbox` instead of through engineio's send chain."""

    def __init__(self, *, budgets: Budgets | None = None, **options: Any) -> None:
        super().__init__(**options)
        #: What each connection may send (signaling.budget); None: no limit.
        self.budgets = budgets
        #: The length of the packet being handled (read by _handle_event before any await).
        self._packet_size = 0
        if not STOCK_WEBSOCKET:
            use_server_websocket(self)
        #: Whether each event handler is a coroutine function (python-socketio asks inspect
        #: on every event).
        self._coroutines: dict[Any, bool] = {}

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """An event on the default namespace, the packet clients send most (``2``, an optional
        acknowledgement id, the JSON array of the event and its arguments), is decoded here
        into what python-socketio's packet decoding would give; every other packet, and one
        that does not decode, goes the standard way."""
        if type(data) is str:
            self._packet_size = len(data)
        if STOCK_WIRE:
            await self._stock_message(eio_sid, data)
            return
        if type(data) is str and data[:1] == _EVENT and eio_sid not in self._binary_packet:
            start = data.find("[", 1)
            ack = data[1:start]
            if start > 0 and (not ack or (ack.isascii() and ack.isdigit() and len(ack) < 100)):
                try:
                    payload = _decode(data[start:])
                except (ValueError, RecursionError):
                    payload = None  # refused below
                if type(payload) is list and payload and type(payload[0]) is str:
                    await self._handle_event(eio_sid, "/", int(ack) if ack else None, payload)
                    return
        if eio_sid not in self._binary_packet:
            await self._check_packet(eio_sid, data)
        await super()._handle_eio_message(eio_sid, data)

    async def _stock_message(self, eio_sid: str, data: Any) -> None:
        """python-socketio's own handling, a packet it cannot decode refused as
        MalformedPacket (a malformed CONNECT answered first)."""
        if type(data) is not str or data[:1] not in _SOCKETIO_TYPES:
            raise MalformedPacket("not a socket.io packet")
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, RecursionError, TypeError, IndexError, KeyError):
            if data[:1] == _CONNECT:
                error = {"error": "invalid_message", "detail": "auth: not valid JSON"}
                refusal = {"message": error["error"], "data": error}
                await self.send_text(eio_sid, _CONNECT_ERROR + compact_json(refusal))
            raise MalformedPacket("undecodable socket.io packet") from None

    async def _stock_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        """python-socketio's dispatch, after the sender's budget is charged."""
        if type(data) is list and data and data[0] in self.reserved_events:
            data = ["", *data[1:]]  # answered as an unknown event, never the connection's own
        wait = self.budgets.charge(eio_sid, self._packet_size) if self.budgets else 0
        if not wait:
            await super()._handle_event(eio_sid, namespace, id, data)
        elif id is not None:
            answer = [self._over_budget(eio_sid, wait)]
            ack = self.packet_class(packet.ACK, namespace=namespace, id=id, data=answer)
            await self._send_packet(eio_sid, ack)

    async def _check_packet(self, eio_sid: str, data: Any) -> None:
        """Raise MalformedPacket for a packet python-socketio would choke on (an exception
        and a traceback each) or take for something else (an event that is not a name and
        its arguments). A malformed CONNECT is answered first: every connect gets one."""
        if type(data) is not str or data[:1] not in _SOCKETIO_TYPES:
            raise MalformedPacket("not a socket.io packet")
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, RecursionError, TypeError, IndexError):
            if data[:1] == _CONNECT:
                error = {"error": "invalid_message", "detail": "auth: not valid JSON"}
                refusal = {"message": error["error"], "data": error}
                await self.send_text(eio_sid, _CONNECT_ERROR + compact_json(refusal))
            raise MalformedPacket("undecodable socket.io packet") from None
        if pkt.packet_type == packet.EVENT:
            event = pkt.data
            if not (type(event) is list and event and type(event[0]) is str):
                raise MalformedPacket("an event without a name")
        elif pkt.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK):
            raise MalformedPacket("binary packet")

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]
    ) -> None:
        """An event on "/" for one of the server's own coroutine handlers (``on(event)``, or
        ``on("*")`` for any event not reserved), when handlers run in line
        (``async_handlers=False``), is handled here: the handler awaited and its answer
        written straight out as the ACK packet python-socketio would write. python-socketio's
        way (``_handle_event``, ``_trigger_event``, a Packet built and encoded) cost more than
        most handlers; everything else still goes that way. Two differences: a handler
        cancelled midway is not answered (python-socketio would answer it with nothing), and
        a client's event named ``connect`` or ``disconnect`` goes to ``on("*")`` like any
        event without a handler, never to the connection's own handlers (python-socketio
        dispatches it to them: a second endpoint on one socket, a hang-up of an open one)."""
        if STOCK_WIRE:
            await self._stock_event(eio_sid, namespace, id, data)
            return
        handlers = self.handlers.get("/") if namespace in (None, "/") else None
        if handlers and not self.async_handlers and type(data) is list and data:
            event = data[0] if type(data[0]) is str else None
            sid = self.manager.sid_from_eio_sid(eio_sid, "/")
            if event is not None and sid is not None and self.manager.is_connected(sid, "/"):
                # A reserved name is an event like any other without a handler of its own.
                reserved = event in self.reserved_events
                handler, args = None if reserved else handlers.get(event), (sid, *data[1:])
                if handler is None:
                    handler, args = handlers.get("*"), (event, sid, *data[1:])
                if handler is not None and self._is_coroutine(handler):
                    wait = self.budgets.charge(eio_sid, self._packet_size) if self.budgets else 0
                    answer = await handler(*args) if not wait else self._over_budget(eio_sid, wait)
                    if id is not None:
                        await self.send_text(eio_sid, _ACK + str(id) + compact_json(_ack(answer)))
                    return
        if type(data) is list and data and data[0] in self.reserved_events:
            return  # python-socketio would run the connection's own handler for it
        await super()._handle_event(eio_sid, namespace, id, data)

    def _over_budget(self, eio_sid: str, wait: float) -> dict[str, str]:
        """The answer to an event its sender had no budget for (the event does nothing)."""
        budget = self.budgets.of(eio_sid) if self.budgets else None
        if budget is not None and budget.refused == 1:  # the first of a run, not each
            log.info("rate_limited", connection=eio_sid, wait=round(wait, 2))
        return RateLimited(f"too many events: wait {wait:.1f} s", retry_after=wait).to_wire()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        if self.budgets is not None:
            self.budgets.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def buffered(self, sid: str) -> int:
        """Bytes waiting to be sent to the connection ``sid`` of this node (0 if elsewhere)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        outbox = self._outbox(eio_sid) if eio_sid is not None else None
        return outbox.buffered if outbox is not None else 0

    def _is_coroutine(self, handler: Any) -> bool:
        known = self._coroutines.get(handler)
        if known is None:
            known = self._coroutines[handler] = inspect.iscoroutinefunction(handler)
        return known

    def _outbox(self, eio_sid: str) -> Outbox | None:
        """The outbox of ``eio_sid`` when it is an open websocket of this node."""
        outbox = getattr(self.eio.sockets.get(eio_sid), "queue", None)
        return outbox if isinstance(outbox, Outbox) else None

    async def send_text(self, eio_sid: str, text: str) -> None:
        """Send one encoded socket.io packet to the Engine.IO connection ``eio_sid``."""
        outbox = None if STOCK_WIRE else self._outbox(eio_sid)
        if outbox is not None:
            outbox.write(MESSAGE + text)
        else:
            await self.eio.send(eio_sid, text)

    async def send_texts(self, eio_sid: str, texts: list[str]) -> None:
        """Send encoded socket.io packets to ``eio_sid`` in order: in one write to an open
        websocket of this node, else one after another."""
        outbox = self._outbox(eio_sid)
        if outbox is not None:
            outbox.write_texts([MESSAGE + text for text in texts])
        else:
            for text in texts:
                await self.eio.send(eio_sid, text)

    async def _send_packet(self, eio_sid: str, pkt: packet.Packet) -> None:
        if STOCK_WIRE:
            await super()._send_packet(eio_sid, pkt)
            return
        encoded = pkt.encode()
        if type(encoded) is str:
            await self.send_text(eio_sid, encoded)
        else:
            await super()._send_packet(eio_sid, pkt)


def _ack(answer: Any) -> list[Any]:
    """The arguments of the ACK packet answering with ``answer``, as python-socketio makes
    them: none for None, a tuple's items, else the answer alone."""
    if answer is None:
        return []
    if isinstance(answer, tuple):
        return list(answer)
    return [answer]


async def send_local(sio: Server, sid: str, event: str, data: Any) -> None:
    """Send ``event`` to a connection of this node, in order with its other packets. A
    connection that is already gone is skipped."""
    if STOCK_WIRE:
        await sio.emit(event, data, to=sid, ignore_queue=True)
        return
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    if eio_sid is not None:
        await sio.send_text(eio_sid, _EVENT + compact_json([event, data]))  # as TextPacket on "/"


async def send_local_events(sio: Server, sid: str, events: list[tuple[str, Any]]) -> None:
    """Send several events to a connection of this node, in order, in one write (see
    :meth:`Server.send_texts`). A connection that is already gone is skipped."""
    if STOCK_WIRE:
        for event, data in events:
            await sio.emit(event, data, to=sid, ignore_queue=True)
        return
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    if eio_sid is not None:
        texts = [_EVENT + compact_json([event, data]) for event, data in events]
        await sio.send_texts(eio_sid, texts)
