"""The OpenAPI 3 document at /api/schema/ and its browsable page at /api/docs/: every operation of the
API has a request schema and example (writes), a response schema and example (success), and its
error answers documented. Operations are read from the live schema, so new ones are checked too."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def live_schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations() -> list[Any]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, ops in schema["paths"].items():
        for method in ops:
            if method in {"get", "post", "put", "patch", "delete"} and path.startswith("/api/"):
                found.append(pytest.param(method, path, id=f"{method.upper()} {path}"))
    return found


def has_example(content: dict[str, Any]) -> bool:
    return bool(content.get("examples") or "example" in content)


def test_the_schema_is_openapi_3_with_bearer_auth() -> None:
    """/api/schema/ serves an OpenAPI 3 document that declares the Bearer key."""
    schema = live_schema()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_docs_page_is_browsable() -> None:
    """/api/docs/ is an HTML page that loads the schema."""
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    assert "text/html" in response["Content-Type"]
    assert b"/api/schema/" in response.content


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_operation_has_schemas_and_examples(method: str, path: str) -> None:
    """A write has a request schema with an example; every 2xx answer has a schema and an example;
    every operation documents 401, and its 4xx answers carry the error object (a 409 duplicate adds
    the original's eventId)."""
    schema = live_schema()
    operation = schema["paths"][path][method]
    problems = []
    if method in {"post", "put", "patch"}:
        for media, content in operation.get("requestBody", {}).get("content", {}).items() or [("none", {})]:
            if not content.get("schema"):
                problems.append(f"request {media}: no schema")
            if not has_example(content):
                problems.append(f"request {media}: no example")
    successes = {status: answer for status, answer in operation["responses"].items() if status.startswith("2")}
    assert successes, "no success answer documented"
    for status, answer in successes.items():
        for media, content in answer.get("content", {}).items():
            if not content.get("schema"):
                problems.append(f"{status} {media}: no schema")
            if not has_example(content):
                problems.append(f"{status} {media}: no example")
    if "401" not in operation["responses"]:
        problems.append("401 not documented")
    for status, answer in operation["responses"].items():
        if status.startswith("4"):
            ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            body = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            if "error" not in body.get("properties", {}):
                problems.append(f"{status}: not the error shape {{error: {{code, message, field?}}}}")
    assert problems == []
