"""Packets as the server writes them: the same JSON text the standard library would write."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio
from socketio import packet

from signaling import wire
from signaling.wire import TextPacket, compact_json
from tests.test_lock import pinned


def _value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "none"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choices('ab"\\/\n\t\u2028é\U0001f600\x00 ', k=rng.randrange(12)))
    if kind == "int":
        return rng.choice([0, -1, rng.randrange(-(10**30), 10**30), 2**63, 2**64])
    if kind == "float":
        return rng.choice([0.1, -2.5e-300, 1e300, 3.0, rng.random()])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ("".join(rng.choices('k"é\n', k=3)) + str(i) for i in range(rng.randrange(4)))
    return {key: _value(rng, depth + 1) for key in keys}


def test_compact_json_writes_what_json_dumps_writes() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        value = _value(rng)
        assert compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_a_packet_is_the_event_name_and_payload_as_compact_json() -> None:
    data = {"version": 3, "you": "e-1", "note": "é"}
    encoded = TextPacket(packet.EVENT, data=["room", data], namespace="/").encode()
    assert encoded == "2" + json.dumps(["room", data], separators=(",", ":"))


def test_the_direct_path_to_a_websocket_writes_the_packet_socketio_would() -> None:
    rng = random.Random(11)
    for _ in range(300):
        data = {"k": _value(rng)}
        pkt = TextPacket(packet.EVENT, data=["room", data], namespace="/")
        assert wire._EVENT + compact_json(["room", data]) == pkt.encode()


def test_incoming_packets_decode_as_json_loads_does() -> None:
    rng = random.Random(13)
    for _ in range(1000):
        text = "2" + json.dumps(["admit", _value(rng)])
        assert TextPacket(encoded_packet=text).data == json.loads(text[1:])


def test_managers_decode_their_pub_sub_messages_as_json_loads_does() -> None:
    message = {"method": "emit", "event": "room", "data": {"note": "é"}, "room": "e-1"}
    for raw in (
        json.dumps(message),
        json.dumps(message).encode(),
        json.dumps(message).encode("utf-16"),
    ):
        assert TextPacket.json.loads(raw) == message


def test_an_incoming_integer_of_more_than_100_digits_is_refused() -> None:
    assert TextPacket(encoded_packet="2" + json.dumps(["x", 10**99])).data == ["x", 10**99]
    with pytest.raises(ValueError):
        TextPacket(encoded_packet="2" + json.dumps(["x", 10**100]))


async def _handled(
    handle: Callable[[wire.Server, str, Any], Awaitable[None]], data: str
) -> tuple[str, Any]:
    """What ``handle`` (the server's message handling) makes of the text ``data``: the
    event it hands on, or the error it raises."""
    server = wire.Server(async_mode="aiohttp")
    seen: list[Any] = []

    async def event(eio_sid: str, namespace: str | None, id: int | None, args: Any) -> None:
        seen.append((namespace or "/", id, args))

    server._handle_event = event
    try:
        await handle(server, "eio-1", data)
    except Exception as exc:
        return "raised", type(exc).__name__
    return "handled", seen


async def test_events_are_decoded_as_python_socketio_decodes_them() -> None:
    rng = random.Random(17)
    texts = ['2["admit",{"attendee":"p-1"}]', '27["leave"]', "2[]", "2[1]", '2{"a":1}', "2",
             '2/admin,3["x"]', '21-["x"]', '2["x"', "2" + "9" * 100 + '["x"]', '2²["x"]',
             '2007["x",1e400]', '2["x",' + "1" * 101 + "]"]  # fmt: skip
    for _ in range(300):
        ack = rng.choice(["", str(rng.randrange(10**6))])
        texts.append(f"2{ack}" + json.dumps([rng.choice(["signal", "é"]), _value(rng)]))
    standard = socketio.AsyncServer._handle_eio_message
    for text in texts:
        ours = await _handled(wire.Server._handle_eio_message, text)
        theirs = await _handled(standard, text)
        if ours == ("raised", "MalformedPacket"):
            # Refused where python-socketio raised, or handed on an event with no name.
            assert theirs[0] == "raised" or not _named(theirs[1]), text
        else:
            assert ours == theirs, text


def _named(seen: list[Any]) -> bool:
    return all(type(args) is list and args and type(args[0]) is str for _, _, args in seen)


async def _answers(
    handle: Callable[[wire.Server, str, str | None, int | None, Any], Awaitable[None]],
    calls: list[tuple[str | None, int | None, Any]],
    *,
    catch_all: bool = True,
) -> list[Any]:
    """What a server answers (packets written, handler calls, errors) to ``calls`` of its
    event handling, with a connected client and handlers returning every kind of answer."""
    server = wire.Server(async_mode="aiohttp", async_handlers=False)
    out: list[Any] = []

    async def send_text(eio_sid: str, text: str) -> None:
        out.append(("sent", eio_sid, text))

    server.send_text = send_text
    answers: dict[str, Any] = {"none": None, "tuple": (1, "a"), "list": [1, 2], "dict": {"k": 1}}

    async def specific(sid: str, *args: Any) -> Any:
        out.append(("specific", sid, args))
        return {"ok": True, "args": list(args)}

    async def any_event(event: str, sid: str, *args: Any) -> Any:
        out.append(("any", event, sid, args))
        return answers.get(event, "text")

    def plain(sid: str, *args: Any) -> Any:  # not a coroutine function
        out.append(("plain", sid, args))
        return "plain"

    server.on("admit", specific)
    server.on("sync", plain)
    if catch_all:
        server.on("*", any_event)
    sid = await server.manager.connect("eio-1", "/")
    for namespace, id, data in calls:
        try:
            await handle(server, "eio-1", namespace, id, data)
        except Exception as exc:
            out.append(("raised", type(exc).__name__))
    return [tuple("<sid>" if part == sid else part for part in entry) for entry in out]


@pytest.mark.parametrize("catch_all", [True, False])
async def test_events_are_answered_as_python_socketio_answers_them(catch_all: bool) -> None:
    calls: list[tuple[str | None, int | None, Any]] = []
    for event in ("admit", "sync", "none", "tuple", "list", "dict", "other", "é"):
        for id in (None, 0, 7, 123456):
            calls.append((None, id, [event]))
            calls.append(("/", id, [event, {"attendee": "p-1"}, [1, 2]]))
    calls += [("/admin", 3, ["admit"]), ("/", 1, []), ("/", 1, [3]), ("/", 2, {"a": 1})]
    ours = await _answers(wire.Server._handle_event, calls, catch_all=catch_all)
    standard = await _answers(socketio.AsyncServer._handle_event, calls, catch_all=catch_all)
    assert ours == standard
    assert ("sent", "eio-1", '37[{"ok":true,"args":[]}]') in ours
    assert ("sent", "eio-1", '3123456[1,"a"]') in ours or not catch_all


@pytest.mark.parametrize("catch_all", [True, False])
async def test_a_clients_connect_or_disconnect_event_never_reaches_their_handlers(
    catch_all: bool,
) -> None:
    """python-socketio hands a client's event named ``connect`` to the connect handler (a
    second endpoint on one socket); here it is an event like any other without a handler."""
    calls: list[tuple[str | None, int | None, Any]] = []
    for event in ("connect", "disconnect"):
        for namespace in (None, "/"):
            calls += [(namespace, 5, [event, {}, {"v": 1}]), (namespace, None, [event])]

    async def handle(server: wire.Server, *args: Any) -> None:
        async def connection(sid: str, *rest: Any) -> None:
            raise AssertionError("a client event reached a connection handler")

        server.on("connect", connection)
        server.on("disconnect", connection)
        await wire.Server._handle_event(server, *args)

    answers = await _answers(handle, calls, catch_all=catch_all)
    if not catch_all:
        assert answers == []
        return
    assert ("any", "connect", "<sid>", ({}, {"v": 1})) in answers
    assert ("sent", "eio-1", '35["text"]') in answers
    assert [a for a in answers if a[0] == "any"] == [
        ("any", event, "<sid>", args)
        for event in ("connect", "disconnect")
        for _ in range(2)
        for args in (({}, {"v": 1}), ())
    ]


async def test_events_of_a_client_not_connected_are_dropped_as_before() -> None:
    calls: list[tuple[str | None, int | None, Any]] = [(None, 1, ["admit"])]

    async def gone(server: wire.Server, eio_sid: str, *rest: Any) -> None:
        await server.manager.disconnect(server.manager.sid_from_eio_sid(eio_sid, "/"), "/")
        await wire.Server._handle_event(server, eio_sid, *rest)

    assert await _answers(gone, calls) == []


def test_python_socketio_is_the_release_the_wire_was_measured_against() -> None:
    """signaling.wire replaces python-socketio's decoding, dispatch and sends (kept: it saves
    more than 15% of the server's CPU per join lifecycle, docs/performance.md). The library is
    pinned exactly; before moving the pin, run this file and `python -m bench --only
    overrides`."""
    assert importlib.metadata.version("python-socketio") == pinned("python-socketio")


def test_the_socketio_internals_the_wire_relies_on_are_there() -> None:
    """What signaling.wire overrides or reads, by name and signature: a rename upgrades into a
    failure here, not into events that silently skip the server's checks."""
    base = socketio.AsyncServer
    for name, params in {
        "_handle_eio_message": ["self", "eio_sid", "data"],
        "_handle_event": ["self", "eio_sid", "namespace", "id", "data"],
        "_handle_eio_disconnect": ["self", "eio_sid", "reason"],
        "_send_packet": ["self", "eio_sid", "pkt"],
    }.items():
        assert list(inspect.signature(getattr(base, name)).parameters) == params, name
    server = wire.Server(async_mode="aiohttp", async_handlers=False)
    assert server._binary_packet == {} and server.reserved_events == ["connect", "disconnect"]
    for name in ("sid_from_eio_sid", "eio_sid_from_sid", "is_connected"):
        assert callable(getattr(server.manager, name)), name
    assert packet.Packet.uses_binary_events and hasattr(packet.Packet, "json")
    assert server.packet_class is packet.Packet  # TextPacket only when the server is given it
