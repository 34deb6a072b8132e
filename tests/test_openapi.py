"""/api/openapi.json: generated from the router and the handlers' pydantic models, covering
every route, and held to by the real server under schemathesis' generated requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.settings import Settings
from rooms.store import MemoryStore
from rooms.tokens import StaffRole, issue_staff_token
from tests.served import ServedNode
from tests.signaling_harness import SECRET
from web.app import create_app
from web.openapi import build, rest_routes
from web.openapi_routes import operations

#: Generated requests per operation: the run stays within a minute or two on a loaded machine.
EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def admin_token() -> str:
    return issue_staff_token(
        SECRET, StaffRole.ADMIN, "admin-1", datetime.now(UTC), timedelta(hours=1)
    )


def app_of(**overrides: Any) -> web.Application:
    return create_app(Settings(secret=SECRET, _env_file=None, **overrides), MemoryStore())


def test_every_route_is_in_the_description_and_described() -> None:
    app = app_of()
    spec = build(app)
    listed = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routes = rest_routes(app)
    assert routes and set(routes) == listed
    undescribed = [r for r in routes if r not in operations()]
    assert undescribed == [], f"describe these routes in web/openapi_routes.py: {undescribed}"
    # Every described route exists (a removed route leaves no stale entry).
    assert set(operations()) - set(routes) == set()


def test_a_route_added_without_a_description_is_caught() -> None:
    app = app_of()

    async def extra(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/api/extra/{thing}", extra)
    spec = build(app)
    assert spec["paths"]["/api/extra/{thing}"]["get"]["x-undescribed"] is True
    assert ("GET", "/api/extra/{thing}") not in operations()


def test_metrics_leave_the_main_port_with_a_port_of_their_own() -> None:
    assert ("GET", "/metrics") not in rest_routes(app_of(metrics_port=9464))


def test_schemas_come_from_the_models() -> None:
    from rooms.service import CreateSession

    spec = build(app_of())
    create = spec["paths"]["/api/sessions"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/CreateSession"
    schema = spec["components"]["schemas"]["CreateSession"]
    assert set(schema["properties"]) == set(CreateSession.model_fields)
    assert create["security"] == [{"staff": []}]
    attendance = spec["paths"]["/api/attendance"]["get"]
    assert {p["name"] for p in attendance["parameters"]} >= {"from", "to", "format"}


@pytest.fixture
async def node(tmp_path: Any) -> Any:
    served = await ServedNode.start(tmp_path, name="n-1")
    yield served
    await served.stop()


async def test_the_served_description_is_openapi_3_1(node: ServedNode) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.url + "/api/openapi.json") as r:
        assert r.status == 200
        spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(spec)
    operations_found = [result.ok() for result in schema.get_all_operations()]
    assert len(operations_found) == sum(len(ops) for ops in spec["paths"].values())


async def test_schemathesis_against_the_real_server(node: ServedNode) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.url + "/api/openapi.json") as r:
        spec = await r.json()
    failures = await asyncio.to_thread(_run_schemathesis, spec, node.url, admin_token())
    assert failures == []


def _run_schemathesis(spec: dict[str, Any], url: str, token: str) -> list[str]:
    """Each operation with generated requests (deterministic: the same inputs every run);
    returns what failed, by operation."""
    schema = schemathesis.openapi.from_dict(spec)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is the latter
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return failures


async def test_schemathesis_reports_a_server_that_breaks_its_description(node: ServedNode) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.url + "/api/openapi.json") as r:
        spec = await r.json()
    # Only /healthz, and its answer now said to carry a field the server never sends.
    spec["paths"] = {"/healthz": spec["paths"]["/healthz"]}
    status = spec["components"]["schemas"]["Status"]
    status["properties"]["uptime"] = {"type": "integer"}
    status["required"] = [*status.get("required", []), "uptime"]
    failures = await asyncio.to_thread(_run_schemathesis, spec, node.url, admin_token())
    assert len(failures) == 1 and failures[0].startswith("GET /healthz")
