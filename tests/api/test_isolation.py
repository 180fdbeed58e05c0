"""Isolation: every /api/ route, walked with a second workspace's key, never returns or changes an
object of the first workspace — including when the caller guesses (or knows) its ids.

The routes are read from the URL resolver, not listed by hand, so a route another engineer adds is
covered the day it is wired.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter
from rest_framework.test import APIClient

from ingestion.models import Workspace
from ingestion.workspaces import CreatedWorkspace

pytestmark = pytest.mark.django_db

PUBLIC = {"api/schema/", "api/docs/"}
PREFIXED_ID = re.compile(r"^[a-z]{2,5}_[a-z0-9]{8,}$")
# Which id prefix a path parameter is likely to take; anything else gets every id of the workspace.
PARAM_PREFIX = {"agent": "agt_", "program": "prog_", "enrollment": "enr_", "event": "evt_", "customer": "cus_",
                "commission": "com_", "payout": "pay_", "import": "imp_", "product": "prod_", "business": "biz_"}
REFUSED = {400, 403, 404, 405, 413, 415}


@dataclass(frozen=True)
class Route:
    path: str
    params: dict[str, bool]  # name → takes an int


def api_routes() -> list[Route]:
    """Every URL pattern whose path starts with api/ (the schema and docs pages excepted)."""
    found: list[Route] = []

    def walk(patterns: list[Any], prefix: str, converters: dict[str, Any]) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            conv = {**converters, **getattr(pattern.pattern, "converters", {})}
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route, conv)
            elif isinstance(pattern, URLPattern) and route.startswith("api/") and route not in PUBLIC:
                found.append(Route(route, {name: isinstance(c, IntConverter) for name, c in conv.items()}))

    walk(get_resolver().url_patterns, "", {})
    return found


def workspace_models() -> list[type[models.Model]]:
    """Every model with a ``workspace`` foreign key: the rows one workspace owns."""
    return [m for m in apps.get_models()
            if any(f.name == "workspace" and f.is_relation and f.related_model is Workspace for f in m._meta.fields)]


def snapshot(workspace_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the workspace owns, as plain values, to compare before and after."""
    state = {"Workspace": list(Workspace.objects.filter(pk=workspace_id).values())}
    for model in workspace_models():
        state[model._meta.label] = list(model.objects.filter(workspace_id=workspace_id).order_by("pk").values())
    return state


def secrets_of(state: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Strings that would betray a row of the workspace: its ids and its emails."""
    found: set[str] = set()
    for rows in state.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, str) and (PREFIXED_ID.match(value) or ("@" in value and "." in value)):
                    found.add(value)
    return found


def int_pks(state: dict[str, list[dict[str, Any]]]) -> list[int]:
    return sorted({row["id"] for rows in state.values() for row in rows if isinstance(row.get("id"), int)})[:20]


def _candidates(param: str, takes_int: bool, secrets: set[str], pks: list[int]) -> list[Any]:
    if takes_int:
        return pks or [1]
    prefix = next((p for key, p in PARAM_PREFIX.items() if key in param), None)
    ids = sorted(s for s in secrets if PREFIXED_ID.match(s))
    chosen = [s for s in ids if prefix and s.startswith(prefix)]
    return chosen or ids


def _paths(route: Route, secrets: set[str], pks: list[int]) -> Iterator[str]:
    names = list(route.params)
    pools = [_candidates(name, route.params[name], secrets, pks) for name in names]
    for combo in itertools.islice(itertools.product(*pools), 40):
        path = route.path
        for name, value in zip(names, combo, strict=True):
            path = re.sub(r"<(?:\w+:)?" + name + ">", str(value), path)
        yield "/" + path


def _bodies(second_id: str, first_id: str, state: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A body that names the first workspace's objects everywhere it can, and one naming its business."""
    def one(label: str) -> str:
        rows = state.get(label) or [{}]
        return str(rows[0].get("id", ""))

    names = {"productId": one("ingestion.Product"), "agentId": one("agents.Agent"),
             "programId": one("agents.Program"), "enrollmentId": one("agents.Enrollment"),
             "customerId": one("attribution.Customer")}
    everything = {"businessId": second_id, **names, "email": "customer@first.example", "currency": "USD",
                  "amount": "1.00", "reason": "isolation", "referralCode": "ZZZ999", "name": "x", "reference": "x",
                  "paymentId": "first-pay", "refundId": "first-refund-2"}
    return [everything, {"businessId": second_id, "productId": names["productId"]},
            {"businessId": first_id, **names}]


def documented_examples() -> dict[tuple[str, str], list[Any]]:
    """The request examples of every operation in the OpenAPI schema, by (path template, method)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found: dict[tuple[str, str], list[Any]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {})
            values = [example["value"] for example in (content.get("examples") or {}).values() if "value" in example]
            if values:
                found[(path, method)] = values
    return found


def fill(value: Any, first_ids: dict[str, str], second_id: str) -> Any:
    """Put the first workspace's real ids wherever an example shows an id (``agt_…``), the second's
    businessId where it shows one: a well-formed request that reaches for the first workspace."""
    if isinstance(value, dict):
        return {key: (second_id if key == "businessId" else fill(item, first_ids, second_id))
                for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, first_ids, second_id) for item in value]
    if isinstance(value, str) and "_" in value:
        prefix = value.split("_", 1)[0] + "_"
        if prefix in first_ids:
            return first_ids[prefix]
    return value


def first_ids_by_prefix(secrets: set[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for secret in sorted(secrets):
        if PREFIXED_ID.match(secret):
            ids.setdefault(secret.split("_", 1)[0] + "_", secret)
    return ids


@pytest.mark.smoke
def test_no_route_returns_or_changes_another_workspaces_objects(
        first: CreatedWorkspace, other_api: APIClient, other_tenant: CreatedWorkspace,
        project: Callable[[], Any]) -> None:
    """With the second workspace's key, every api/ route answers 403/404 for the first's ids, lists
    nothing of it, and leaves every row of the first workspace exactly as it was."""
    before = snapshot(first.workspace.id)
    secrets = secrets_of(before)
    assert len(secrets) > 10, "the first workspace should own a good set of objects"
    pks = int_pks(before)
    routes = api_routes()
    assert {"api/events/customer-created", "api/customers", "api/agents/<str:agent_id>"} <= {r.path for r in routes}
    filters = {"agentId": one_of(before, "agents.Agent"), "programId": one_of(before, "agents.Program"),
               "productId": first.product.id, "email": "customer@first.example", "customerRef": "first-user"}
    problems: list[str] = []

    def check(method: str, path: str, response: Any, sent: str, *, may_succeed: bool) -> None:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        leaked = sorted(s for s in secrets if s in text and s not in sent)
        if leaked:
            problems.append(f"{method} {path} → {response.status_code} leaked {leaked[:3]}")
        if not may_succeed and response.status_code not in REFUSED:
            problems.append(f"{method} {path} → {response.status_code} (expected 403/404)")
        if response.status_code >= 500:
            problems.append(f"{method} {path} → {response.status_code}")

    bodies = _bodies(other_tenant.workspace.id, first.workspace.id, before)
    examples = documented_examples()
    first_ids = first_ids_by_prefix(secrets)
    first_ids.pop("biz_", None)
    reached = 0
    for route in routes:
        template = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.path)
        # Documented bodies with the first workspace's ids filled in: these pass validation and
        # reach the reference checks, which must answer 404 (or 403), never act.
        documented = examples.get((template, "post"), [])
        own_product = {**first_ids, "prod_": other_tenant.product.id}
        aimed = [fill(v, ids, other_tenant.workspace.id) for v in documented for ids in (first_ids, own_product)]
        aimed = [body for body in aimed if set(secrets_in(body, secrets))]
        if not route.params:
            path = "/" + route.path
            response = other_api.get(path, filters)
            check("GET", path, response, json.dumps(filters), may_succeed=True)
            for body in bodies:
                response = other_api.post(path, body, format="json")
                check("POST", path, response, json.dumps(body), may_succeed=True)
            for body in aimed:
                reached += 1
                check("POST", path, other_api.post(path, body, format="json"), json.dumps(body), may_succeed=False)
            continue
        guessed = list(_paths(route, secrets, pks))
        for name, takes_int in route.params.items():
            prefix = next((p for key, p in PARAM_PREFIX.items() if key in name), None)
            if not takes_int and prefix and not any(s.startswith(prefix) for s in secrets):
                problems.append(f"{route.path}: the first workspace owns no {prefix}… object to reach for")
        for path in guessed:
            check("GET", path, other_api.get(path), path, may_succeed=False)
            for body in [*bodies, *aimed]:
                check("POST", path, other_api.post(path, body, format="json"), path + json.dumps(body),
                      may_succeed=False)
            for method in ("patch", "put", "delete"):
                check(method.upper(), path, getattr(other_api, method)(path, bodies[0], format="json"), path,
                      may_succeed=False)
    project()
    assert problems == []
    assert reached >= 10, "documented examples should reach the reference checks"
    assert snapshot(first.workspace.id) == before


def secrets_in(value: Any, secrets: set[str]) -> list[str]:
    text = json.dumps(value)
    return [s for s in secrets if s in text]


def one_of(state: dict[str, list[dict[str, Any]]], label: str) -> str:
    rows = state.get(label) or [{}]
    return str(rows[0].get("id", ""))


def test_the_walk_sees_routes_added_by_other_apps() -> None:
    """The route list comes from the resolver: it includes every app's api/ routes, not a fixed list."""
    paths = {route.path for route in api_routes()}
    assert "api/events/batch" in paths
    assert "api/programs/<str:program_id>" in paths
    assert "api/enrollments/<str:enrollment_id>/approve" in paths
    assert not any(p in paths for p in PUBLIC)
