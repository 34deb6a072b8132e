"""``room_delta``: what changed in an endpoint's view, instead of the whole view again.

A whole ``room`` view lists every endpoint its audience sees, so while n people join a
clinician would receive n views of up to n endpoints each: bytes growing as n^2 (500
connections: 31.8 MB). A delta carries the view's top-level fields, the endpoints added or
changed, and the ids of those gone: bytes growing with what changed.

Versions make a delta safe to apply. A view's ``version`` is the store version at which its
content last changed (signaling.delivery.RecentViews keeps an unchanged view's version), so
the content of a view at version ``base`` is the content at every version up to the delta's
own. A client holding a view at version ``c`` applies a delta when ``base <= c < version``;
otherwise (a missed or reordered message, a view built on another node) it asks for the whole
view again (``hello``). media/participant.py and web/static/js/signaling.js apply deltas the
same way (tests compare them with :func:`apply_delta`).
"""

from __future__ import annotations

from typing import Any

from signaling.views import View

_TOP = ("status", "locked", "you", "admitted")


def room_delta(prev: View, view: View) -> View | None:
    """The change from ``prev`` (what the endpoint was last sent) to ``view``; None when a
    whole view must go instead (the endpoint's audience changed: admitted or not)."""
    if prev["you"] != view["you"] or prev["admitted"] != view["admitted"]:
        return None
    delta: View = {"version": view["version"], "base": prev["version"]}
    for key in _TOP:
        delta[key] = view[key]
    delta["endpoints"], delta["gone"] = _diff(prev["endpoints"], view["endpoints"])
    waiting, gone = _diff(prev["waiting"], view["waiting"])
    delta["waiting"], delta["waiting_gone"] = waiting, gone
    order = [e["endpoint"] for e in view["waiting"]]
    if _merged_order(prev["waiting"], gone, waiting) != order:
        delta["waiting_order"] = order  # rare: someone went back to the waiting room
    if prev["departed"] != view["departed"]:
        delta["departed"] = view["departed"]  # whole, and only when it changed: a few people
    return delta


def apply_delta(view: View, delta: View) -> View | None:
    """``view`` with ``delta`` applied, or None when the delta does not apply to it."""
    if view["you"] != delta["you"] or not delta["base"] <= view["version"] < delta["version"]:
        return None
    out: View = {"version": delta["version"]}
    for key in _TOP:
        out[key] = delta[key]
    by_id = {e["endpoint"]: e for e in view["endpoints"] if e["endpoint"] not in delta["gone"]}
    by_id.update((e["endpoint"], e) for e in delta["endpoints"])
    out["endpoints"] = [by_id[k] for k in sorted(by_id)]
    waiting = {e["endpoint"]: e for e in view["waiting"]}
    waiting.update((e["endpoint"], e) for e in delta["waiting"])
    order = delta.get("waiting_order") or _merged_order(
        view["waiting"], delta["waiting_gone"], delta["waiting"]
    )
    out["waiting"] = [waiting[k] for k in order]
    departed = delta.get("departed")
    out["departed"] = view["departed"] if departed is None else departed
    return out


def _diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> tuple[list[Any], list[str]]:
    before = {e["endpoint"]: e for e in old}
    # Unchanged endpoints are usually the very same description object (views share them).
    changed = [e for e in new if (b := before.get(e["endpoint"])) is not e and b != e]
    present = {e["endpoint"] for e in new}
    return changed, [k for k in before if k not in present]


def _merged_order(old: list[dict[str, Any]], gone: list[str], changed: list[Any]) -> list[str]:
    """Where endpoints stand without an explicit order: the old order without those gone,
    then the new ones in the order given."""
    kept = [e["endpoint"] for e in old if e["endpoint"] not in gone]
    known = set(kept)
    return kept + [e["endpoint"] for e in changed if e["endpoint"] not in known]
