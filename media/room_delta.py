"""Applying ``room_delta`` to a view, for headless participants (docs/protocol.md).

The participant imports nothing from the server, so this is the client's copy of
``signaling.deltas.apply_delta``; tests/test_room_deltas.py checks both give the same views.
"""

from __future__ import annotations

from typing import Any

View = dict[str, Any]
_TOP = ("status", "locked", "you", "admitted")


def apply_delta(view: View, delta: View) -> View | None:
    """``view`` with ``delta`` applied, or None when the delta does not apply to it."""
    if view["you"] != delta["you"] or not delta["base"] <= view["version"] < delta["version"]:
        return None
    out: View = {"version": delta["version"], **{key: delta[key] for key in _TOP}}
    gone = set(delta["gone"])
    by_id = {e["endpoint"]: e for e in view["endpoints"] if e["endpoint"] not in gone}
    by_id.update((e["endpoint"], e) for e in delta["endpoints"])
    out["endpoints"] = [by_id[k] for k in sorted(by_id)]
    waiting = {e["endpoint"]: e for e in view["waiting"]}
    waiting.update((e["endpoint"], e) for e in delta["waiting"])
    order = delta.get("waiting_order")
    if not order:
        left = set(delta["waiting_gone"])
        order = [e["endpoint"] for e in view["waiting"] if e["endpoint"] not in left]
        known = set(order)
        order += [e["endpoint"] for e in delta["waiting"] if e["endpoint"] not in known]
    out["waiting"] = [waiting[k] for k in order]
    departed = delta.get("departed")
    out["departed"] = view.get("departed", []) if departed is None else departed
    return out
