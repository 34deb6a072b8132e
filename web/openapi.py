"""``GET /api/openapi.json``: the REST API as OpenAPI 3.1, generated, not written by hand.

Paths and methods come from the application's router, so every route is in it; schemas come
from the pydantic models the handlers parse and answer with (``model_json_schema``), so they
follow the code. What the router cannot tell (who may call, which models, which statuses) is
the table in :mod:`web.openapi_routes`. A route that table does not describe is still listed,
marked ``x-undescribed``, and tests/test_openapi.py fails on it.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.openapi_routes import ERRORS, Op, operations

#: Routes that are not part of the REST API: static files, and the signaling protocol
#: (docs/protocol.md describes it).
NOT_REST = ("/static", "/socket.io")
_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
SPEC = web.AppKey("openapi", dict[str, Any])


async def openapi_json(request: web.Request) -> web.Response:
    """The description of this application's API (built once, on first request)."""
    app = request.app
    if SPEC not in app:
        app[SPEC] = build(app)
    return web.json_response(app[SPEC])


def rest_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route of ``app`` the description must cover."""
    found = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "OPTIONS", "*") or path.startswith(NOT_REST):
            continue
        found.append((route.method, path))
    return sorted(set(found))


def build(app: web.Application) -> dict[str, Any]:
    table = operations()
    routes = rest_routes(app)
    models = _models([table[r] for r in routes if r in table])
    paths: dict[str, dict[str, Any]] = {}
    for method, path in routes:
        op = table.get((method, path))
        entry = _operation(op, path) if op else _undescribed(path)
        paths.setdefault(_PARAM.sub(r"{\1}", path), {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Homeroom",
            "version": "1",
            "description": "Sessions, links, attendance and audit of a Homeroom deployment. "
            "Errors are {error, detail} with a stable code (docs/api.md).",
        },
        "paths": paths,
        "components": {"schemas": models, "securitySchemes": _SECURITY},
    }


_SECURITY = {
    "staff": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A staff token (`homeroom token`); some operations need role admin.",
    },
    "program": {
        "type": "http",
        "scheme": "bearer",
        "description": "A patient's standing program link token.",
    },
}


def _models(ops: list[Op]) -> dict[str, Any]:
    """Every model the operations name, request models as validated and answers as
    serialized, under their class names."""
    pairs: list[tuple[type[BaseModel], Any]] = [(ERRORS, "serialization")]
    for op in ops:
        pairs += [(m, "validation") for m in (op.body, op.query) if m is not None]
        pairs += [(m, "serialization") for m in [op.response] if m is not None]
    _, schema = models_json_schema(list(dict.fromkeys(pairs)), ref_template=_REF)
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs


def _operation(op: Op, path: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.name,
        "parameters": _path_params(path) + _query_params(op.query),
        "responses": {str(op.status): _success(op), "default": _error()},
    }
    if op.auth != "none":
        entry["security"] = [{op.auth_scheme: []}]
        entry["description"] = op.auth_text
    if op.body is not None:
        schema = {"$ref": _REF.format(model=op.body.__name__)}
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return entry


def _undescribed(path: str) -> dict[str, Any]:
    return {
        "summary": "(not described yet)",
        "x-undescribed": True,
        "parameters": _path_params(path),
        "responses": {"default": {"description": "not described"}},
    }


def _success(op: Op) -> dict[str, Any]:
    if op.response is not None:
        schema: dict[str, Any] = {"$ref": _REF.format(model=op.response.__name__)}
        return {"description": "done", "content": {"application/json": {"schema": schema}}}
    return {
        "description": "done",
        "content": {media: {"schema": {}} for media in op.content},
    }


def _error() -> dict[str, Any]:
    schema = {"$ref": _REF.format(model=ERRORS.__name__)}
    return {"description": "refused", "content": {"application/json": {"schema": schema}}}


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, ref_template=_REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]
