"""room_delta: applied on top of the view an endpoint holds, it gives the whole view the
server would have sent; a clinician's bytes grow with who joins, not with its square."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from media import room_delta as client_side
from rooms.store import SessionStore
from signaling.deltas import apply_delta, room_delta
from signaling.protocol import Room, RoomDelta
from tests.signaling_harness import Client, Node, create, link, until

VIEW = {
    "version": 4, "status": "live", "locked": False, "you": "e-host", "admitted": True,
    "endpoints": [
        {"endpoint": "e-a", "connected": True, "attendees": []},
        {"endpoint": "e-host", "connected": True, "attendees": []},
    ],
    "waiting": [
        {"endpoint": "e-w1", "connected": True, "attendees": []},
        {"endpoint": "e-w2", "connected": True, "attendees": []},
    ],
    "departed": [],
}  # fmt: skip


def _changed(**fields: object) -> dict[str, object]:
    view = copy.deepcopy(VIEW)
    view.update(fields)
    return view


CHANGES = [
    _changed(version=5, locked=True),
    _changed(
        version=5,
        waiting=[*VIEW["waiting"], {"endpoint": "e-w3", "connected": True, "attendees": []}],
    ),
    _changed(
        version=6,
        waiting=[VIEW["waiting"][1]],
        endpoints=[
            *VIEW["endpoints"],
            {"endpoint": "e-w1", "connected": True, "attendees": []},
        ],
    ),
    _changed(version=7, waiting=[VIEW["waiting"][1], VIEW["waiting"][0]]),
    _changed(
        version=5,
        endpoints=[
            {"endpoint": "e-a", "connected": False, "attendees": []},
            VIEW["endpoints"][1],
        ],
    ),
    _changed(
        version=5,
        endpoints=[VIEW["endpoints"][1]],
        departed=[{"attendee": "p-1", "at": "2025-01-06T15:04:05.000000Z", "removed": False}],
    ),
]


@pytest.mark.parametrize("after", CHANGES)
def test_a_delta_applied_gives_the_whole_view(after: dict[str, object]) -> None:
    delta = room_delta(VIEW, after)
    assert delta is not None
    RoomDelta.model_validate(delta)
    assert apply_delta(VIEW, delta) == after
    assert client_side.apply_delta(VIEW, delta) == after
    # Views between base and version held the same content: it applies to them too.
    assert apply_delta({**VIEW, "version": after["version"] - 1}, delta) == after  # type: ignore[operator]


def test_a_delta_does_not_apply_to_another_view() -> None:
    delta = room_delta(VIEW, _changed(version=5, locked=True))
    assert delta is not None
    for held in ({**VIEW, "version": 3}, {**VIEW, "version": 5}, {**VIEW, "you": "e-a"}):
        assert apply_delta(held, delta) is None
        assert client_side.apply_delta(held, delta) is None
    # Admitted or sent back: the audience changed, the whole view goes.
    assert room_delta(VIEW, _changed(version=5, admitted=False, waiting=[])) is None


@pytest.fixture
async def node(store: SessionStore) -> AsyncIterator[Node]:
    started = await Node(store).start()
    yield started
    await started.stop()


async def test_a_clinician_follows_a_filling_waiting_room_by_deltas(node: Node) -> None:
    patients = [f"p-{n}" for n in range(12)]
    state = await create(
        node.rooms, "group", "c-17", *patients, capacity=12, purpose="therapy_group"
    )
    host = await Client(node.url).connect(token=link(state, "c-17"))
    joined = [await Client(node.url).connect(token=link(state, p)) for p in patients]
    await until(lambda: len(host.room["waiting"]) == len(patients), within=20)
    for patient in patients[:6]:
        assert (await host.call("admit", {"attendee": patient}))["ok"]
    await until(lambda: len(host.room["endpoints"]) == 7, within=20)
    whole = (await host.call("hello"))["room"]
    Room.model_validate(whole)
    assert {**host.room, "version": 0} == {**whole, "version": 0}
    assert len(host.deltas) >= len(patients)
    # Each join cost the clinician one endpoint's description, not the whole waiting room.
    joins = host.deltas[: len(patients)]
    assert all(len(d["waiting"]) == 1 for d in joins)
    sizes = [len(json.dumps(d)) for d in joins]
    assert max(sizes) < 2 * min(sizes)
    for client in [host, *joined]:
        await client.close()


def test_the_pages_apply_deltas_as_the_server_does() -> None:
    """web/static/js/signaling.js's applyDelta, run by Node, against signaling.deltas."""
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (make assets installs the pages' client with it)"
    cases = []
    for after in CHANGES:
        delta = room_delta(VIEW, after)
        cases.append((VIEW, delta, apply_delta(VIEW, delta)))  # type: ignore[arg-type]
        cases.append(({**VIEW, "version": 2}, delta, None))
    module = (Path(__file__).resolve().parent.parent / "web/static/js/signaling.js").as_uri()
    script = (
        f"import {{ applyDelta }} from {json.dumps(module)};"
        "const cases = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(cases.map(([v, d]) => applyDelta(v, d))));"
    )
    ran = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(cases)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(ran.stdout) == [expected for _, _, expected in cases]
