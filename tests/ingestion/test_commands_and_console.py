"""Operator commands and the console (issue #2 items 4 and 8): create_workspace, set_provider_secret,
rebuild_projections, and a read-only event browser in the admin."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIRequestFactory

from ingestion.auth import ApiKeyAuthentication, hash_key
from ingestion.models import ApiKey, Event, Product, ProviderSecret, Workspace
from ingestion.store import event_append
from ingestion.workspaces import CreatedWorkspace
from tests.testapp.support import new_event


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _authenticate(secret: str) -> ApiKey:
    request = APIRequestFactory().get("/api/events", HTTP_AUTHORIZATION=f"Bearer {secret}")
    _principal, key = ApiKeyAuthentication().authenticate(request)  # type: ignore[misc]
    return key


@pytest.mark.smoke
def test_create_workspace_json_prints_ids_and_a_working_key(db: None) -> None:
    """``create_workspace --name X --json`` prints exactly {businessId, productId, apiKey} with the
    right prefixes; the key authenticates, and only its hash is stored."""
    out, _ = _run("create_workspace", "--name", "Initech", "--json")

    result = json.loads(out)
    assert set(result) == {"businessId", "productId", "apiKey"}
    assert result["businessId"].startswith("biz_")
    assert result["productId"].startswith("prod_")
    assert result["apiKey"].startswith("rf_live_")
    workspace = Workspace.objects.get(pk=result["businessId"])
    assert workspace.name == "Initech"
    assert Product.objects.get(pk=result["productId"]).workspace == workspace

    key = ApiKey.objects.get(workspace=workspace)
    assert key.key_hash == hash_key(result["apiKey"])
    stored = json.dumps(list(ApiKey.objects.values()), default=str)
    assert result["apiKey"] not in stored
    assert _authenticate(result["apiKey"]).pk == key.pk


def test_create_workspace_test_key_and_bad_currency(db: None) -> None:
    """``--test-key`` issues an rf_test_ key; an unknown base currency is a clear command error
    that creates nothing."""
    out, _ = _run("create_workspace", "--name", "Sandbox", "--test-key", "--json")
    assert json.loads(out)["apiKey"].startswith("rf_test_")

    with pytest.raises(CommandError):
        _run("create_workspace", "--name", "Broken", "--base-currency", "XYZ", "--json")
    assert not Workspace.objects.filter(name="Broken").exists()


def test_set_provider_secret_stores_and_never_echoes_the_secret(tenant: CreatedWorkspace) -> None:
    """``set_provider_secret`` stores the secret for the workspace and prints nothing of it."""
    secret = "whsec_test_sEcReT_that_must_not_leak_0123456789"
    out, err = _run("set_provider_secret", "--business", tenant.workspace.id, "--provider", "stripe",
                    "--secret", secret)

    assert secret not in out + err
    assert secret[-12:] not in out + err
    assert ProviderSecret.objects.get(workspace=tenant.workspace, provider="stripe").secret == secret


def test_set_provider_secret_errors_do_not_echo_the_secret(db: None) -> None:
    """An unknown business is a command error whose message carries no secret."""
    secret = "whsec_unknown_business_secret_987654321"
    with pytest.raises(CommandError) as info:
        _run("set_provider_secret", "--business", "biz_nope", "--provider", "stripe", "--secret", secret)
    assert secret not in str(info.value)


def test_rebuild_projections_unknown_name_is_a_command_error(db: None) -> None:
    """Naming a projection that does not exist fails clearly and lists the known ones."""
    with pytest.raises(CommandError, match="unknown projection"):
        _run("rebuild_projections", "no_such_projection")


def test_rebuild_projections_all_runs_every_projection(tenant: CreatedWorkspace) -> None:
    """Without a name, every registered projection is rebuilt and reported."""
    event_append(new_event(tenant.workspace.id, "x"))
    out, _ = _run("rebuild_projections")
    assert "attribution: replayed" in out
    assert "ledger: replayed" in out


# --- the admin event browser -------------------------------------------------------------------


@pytest.fixture
def admin_client_logged_in(db: None) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stored_event(tenant: CreatedWorkspace) -> Event:
    appended = event_append(new_event(tenant.workspace.id, "admin-1", amount=4242))
    return Event.objects.get(position=appended.position)


@pytest.mark.smoke
def test_event_changelist_lists_and_filters(admin_client_logged_in: Client, stored_event: Event) -> None:
    """The event browser lists events and filters by workspace, source and type."""
    base = "/admin/ingestion/event/"
    response = admin_client_logged_in.get(base)
    assert response.status_code == 200
    assert stored_event.event_id in response.content.decode()
    for query in (f"workspace__id__exact={stored_event.workspace_id}", "source__exact=api",
                  "type__exact=test.event"):
        response = admin_client_logged_in.get(f"{base}?{query}")
        assert response.status_code == 200, query
        assert stored_event.event_id in response.content.decode(), query
    response = admin_client_logged_in.get(f"{base}?source__exact=stripe")
    assert stored_event.event_id not in response.content.decode()


def test_event_change_form_is_read_only_and_shows_data_and_raw(admin_client_logged_in: Client,
                                                               stored_event: Event) -> None:
    """An event's page shows data and raw as readable JSON and offers no way to save or delete."""
    url = f"/admin/ingestion/event/{stored_event.position}/change/"
    response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert "/delete/" not in html
    assert "&quot;amount&quot;: 4242" in html  # pretty-printed, escaped JSON
    assert "<pre" in html

    response = admin_client_logged_in.post(url, {"type": "changed"})
    assert response.status_code == 403
    assert Event.objects.get(position=stored_event.position).type == "test.event"


def test_event_add_and_delete_are_forbidden(admin_client_logged_in: Client, stored_event: Event) -> None:
    """Even a superuser cannot add or delete events from the console."""
    assert admin_client_logged_in.get("/admin/ingestion/event/add/").status_code == 403
    delete_url = f"/admin/ingestion/event/{stored_event.position}/delete/"
    assert admin_client_logged_in.post(delete_url, {"post": "yes"}).status_code == 403
    assert Event.objects.filter(position=stored_event.position).exists()


def test_api_key_created_in_the_admin_is_shown_once(admin_client_logged_in: Client,
                                                    tenant: CreatedWorkspace) -> None:
    """Adding an API key in the console shows its secret once (a message); only the hash is stored."""
    response = admin_client_logged_in.post(
        "/admin/ingestion/apikey/add/", {"workspace": tenant.workspace.id, "name": "ci", "live": "on"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    secret = next(word for m in shown for word in m.split() if word.startswith("rf_live_"))
    key = ApiKey.objects.get(name="ci")
    assert key.key_hash == hash_key(secret)
    assert _authenticate(secret).pk == key.pk

    listing = admin_client_logged_in.get("/admin/ingestion/apikey/").content.decode()
    assert secret not in listing
    assert secret not in admin_client_logged_in.get(f"/admin/ingestion/apikey/{quote(key.pk)}/change/").content.decode()
