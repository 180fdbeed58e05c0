"""Every list of the API is cursor-paginated, capped and scoped: checked on each list operation of the
OpenAPI schema, so a list another engineer adds is covered the day it is documented."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from ingestion.workspaces import CreatedWorkspace
from refairn.pagination import MAX_LIMIT

pytestmark = pytest.mark.django_db
PAGE_KEYS = {"data", "hasMore", "nextCursor"}


def list_operations() -> list[str]:
    """Paths of every GET under /api/ whose 200 answer is a page ``{data, hasMore, nextCursor}``."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if not path.startswith("/api/") or get is None:
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        body = content.get("schema", {})
        if "$ref" in body:
            body = components[body["$ref"].rsplit("/", 1)[1]]
        if set(body.get("properties", {})) >= PAGE_KEYS:
            found.append(path)
    return found


LISTS = list_operations()


def row_id(row: dict[str, Any]) -> str:
    """The row's public id: the first ``…Id`` field that is its own (commissionId, agentId, eventId, …)."""
    for key in ("eventId", "commissionId", "payoutId", "customerId", "enrollmentId", "programId", "agentId"):
        if key in row:
            return str(row[key])
    raise AssertionError(f"no id in {sorted(row)}")


def walk(api: APIClient, path: str, limit: int) -> list[list[str]]:
    """Follow nextCursor from the first page to the last; the ids of each page."""
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = api.get(path, params)
        assert response.status_code == 200, (path, response.content)
        body = response.json()
        assert set(body) == PAGE_KEYS
        pages.append([row_id(row) for row in body["data"]])
        assert body["hasMore"] is (body["nextCursor"] is not None)
        if not body["hasMore"]:
            return pages
        assert len(pages) < 100, f"{path} does not come to an end"
        params = {"limit": limit, "cursor": body["nextCursor"]}


def test_the_schema_documents_every_list_as_a_page() -> None:
    """The known lists are found in the schema (the walk below is not vacuous)."""
    assert {"/api/events", "/api/customers", "/api/agents", "/api/programs", "/api/enrollments",
            "/api/commissions", "/api/payouts"} <= set(LISTS)


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["0", str(MAX_LIMIT + 1), "-1", "ten"])
def test_every_list_refuses_a_page_size_outside_1_to_200(api: APIClient, path: str, limit: str) -> None:
    """limit is capped at 200 on every list: outside 1..200 it is a 400 naming limit."""
    response = api.get(path, {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "limit"


@pytest.mark.parametrize("path", LISTS)
def test_every_list_refuses_a_forged_cursor(api: APIClient, path: str) -> None:
    """A cursor the API did not issue is a 400 on cursor, on every list."""
    response = api.get(path, {"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "cursor"


def test_every_list_pages_one_row_at_a_time_through_all_its_rows(first: CreatedWorkspace, api: APIClient) -> None:
    """With limit=1 each page holds one row, the cursors reach every row once, and the rows are the
    same as on one page of 200."""
    paged = 0
    for path in LISTS:
        pages = walk(api, path, 1)
        ids = [row for page in pages for row in page]
        assert all(len(page) <= 1 for page in pages), path
        assert len(ids) == len(set(ids)), f"{path} repeats a row across pages"
        assert ids == walk(api, path, MAX_LIMIT)[0], path
        paged += len(pages) > 1
    assert paged >= 5, "most lists should hold several rows of the first workspace"


def test_every_list_is_scoped_to_the_keys_workspace(first: CreatedWorkspace, other_api: APIClient) -> None:
    """The second workspace's key lists nothing of the first workspace on any list (it owns nothing)."""
    for path in LISTS:
        assert walk(other_api, path, MAX_LIMIT) == [[]], path
