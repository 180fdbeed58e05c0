"""API key authentication (issue #2 item 4) as the API endpoints see it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from ingestion.models import ApiKey, Event
from ingestion.workspaces import CreatedWorkspace, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

SIGNUP = "/api/events/customer-created"


def _signup(ids: dict[str, str]) -> dict[str, str]:
    return {**ids, "email": "jane@example.com"}


def _client(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.smoke
def test_missing_key_is_401_with_the_error_shape(ids: dict[str, str]) -> None:
    """A request without Authorization answers 401 in the error shape, with a Bearer challenge."""
    response = _client(None).post(SIGNUP, _signup(ids), format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Event.objects.exists() is False


def test_unknown_key_is_401(ids: dict[str, str]) -> None:
    """A well-formed key that was never issued answers 401."""
    response = _client("Bearer rf_live_notakeyatall0000000000").post(SIGNUP, _signup(ids), format="json")
    assert response.status_code == 401


def test_other_scheme_is_401(ids: dict[str, str], tenant: CreatedWorkspace) -> None:
    """A key sent with another scheme than Bearer answers 401."""
    response = _client(f"Basic {tenant.api_key.secret}").post(SIGNUP, _signup(ids), format="json")
    assert response.status_code == 401


def test_revoked_key_is_401(ids: dict[str, str], tenant: CreatedWorkspace, api: APIClient) -> None:
    """A revoked key answers 401 and appends nothing."""
    api_key_revoke(key=tenant.api_key.key)
    response = api.post(SIGNUP, _signup(ids), format="json")
    assert response.status_code == 401
    assert Event.objects.exists() is False


def test_revoked_key_is_401_on_reads(tenant: CreatedWorkspace, api: APIClient) -> None:
    """A revoked key cannot read either."""
    api_key_revoke(key=tenant.api_key.key)
    assert api.get("/api/events").status_code == 401


def test_test_mode_key_authenticates(ids: dict[str, str], tenant: CreatedWorkspace) -> None:
    """An rf_test_ key of the workspace is accepted like a live one."""
    issued = api_key_create(workspace=tenant.workspace, name="ci", live=False)
    assert issued.secret.startswith("rf_test_")
    response = _client(f"Bearer {issued.secret}").post(SIGNUP, _signup(ids), format="json")
    assert response.status_code == 200


def test_business_id_of_another_workspace_is_403(
        api: APIClient, ids: dict[str, str], other_tenant: CreatedWorkspace) -> None:
    """A body naming another workspace's businessId answers 403 and appends nothing."""
    response = api.post(SIGNUP, {**_signup(ids), "businessId": other_tenant.workspace.id}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "businessId"
    assert Event.objects.exists() is False


def test_business_id_mismatch_is_403_on_management_endpoints(
        api: APIClient, other_tenant: CreatedWorkspace) -> None:
    """The businessId check guards the management endpoints too."""
    response = api.post("/api/agents", {"businessId": other_tenant.workspace.id, "email": "a@b.co", "name": "A"},
                        format="json")
    assert response.status_code == 403


def test_missing_business_id_is_400(api: APIClient, tenant: CreatedWorkspace) -> None:
    """A body without businessId is refused with the field named."""
    response = api.post(SIGNUP, {"productId": tenant.product.id, "email": "jane@example.com"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "businessId"


def test_a_request_records_last_used_at(api: APIClient, ids: dict[str, str], tenant: CreatedWorkspace) -> None:
    """Using a key stamps its last-used time."""
    assert ApiKey.objects.get(pk=tenant.api_key.key.pk).last_used_at is None
    assert api.post(SIGNUP, _signup(ids), format="json").status_code == 200
    assert ApiKey.objects.get(pk=tenant.api_key.key.pk).last_used_at is not None
