"""The console's webhook pages: deliveries with their verdicts, and provider secrets entered blind."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from ingestion.models import ProviderSecret

from .signing import ROTATED, SECRETS, WRONG, post_fixture

pytestmark = pytest.mark.django_db

NEW_SECRET = "whsec_entered_in_the_console_5f2a9c81d7e3b640"


def test_deliveries_list_shows_each_verdict(admin_client: Client, client: Client, biz: str) -> None:
    """Accepted, duplicate, ignored and rejected deliveries are listed with their verdicts."""
    post_fixture(client, "stripe", "customer.created", business_id=biz)
    post_fixture(client, "stripe", "customer.created", business_id=biz)
    post_fixture(client, "stripe", "invoice.finalized", business_id=biz)
    post_fixture(client, "stripe", "invoice.paid__first", business_id=biz, secret=WRONG)
    response = admin_client.get("/admin/ingestion/delivery/")
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert sorted(d.verdict for d in rows) == ["accepted", "duplicate", "ignored", "rejected"]
    page = response.content.decode()
    for label in ("Accepted", "Duplicate", "Ignored", "Rejected"):
        assert f">{label}<" in page


def test_rejected_delivery_page_shows_why(admin_client: Client, client: Client, biz: str) -> None:
    """A rejected delivery's page carries the reason, never the secret."""
    delivery_id = post_fixture(client, "paddle", "transaction.completed", business_id=biz,
                               secret=WRONG).json()["deliveryId"]
    page = admin_client.get(f"/admin/ingestion/delivery/{quote(delivery_id)}/change/").content.decode()
    assert "invalid_signature" in page
    assert SECRETS["paddle"] not in page


def test_secret_entry_form_is_a_password_box_listing_the_providers(admin_client: Client) -> None:
    """The add form offers every registered provider and a password input that is never pre-filled."""
    page = admin_client.get("/admin/ingestion/providersecret/add/").content.decode()
    assert 'type="password" name="secret"' in page
    for provider in SECRETS:
        assert f'value="{provider}"' in page


def test_secret_entered_in_the_console_verifies_and_is_never_shown(admin_client: Client, client: Client,
                                                                   tenant) -> None:
    """A secret added in the admin is stored through the service, then verifies webhooks; no page shows it."""
    biz = tenant.workspace.id
    response = admin_client.post("/admin/ingestion/providersecret/add/", {
        "workspace": biz, "provider": "stripe", "secret": f"  {NEW_SECRET} ", "label": "live endpoint",
    }, follow=True)
    assert response.status_code == 200
    row = ProviderSecret.objects.get(workspace_id=biz, provider="stripe")
    assert (row.secret, row.label, row.revoked_at) == (NEW_SECRET, "live endpoint", None)
    pages = [response.content.decode(),
             admin_client.get("/admin/ingestion/providersecret/").content.decode(),
             admin_client.get(f"/admin/ingestion/providersecret/{quote(row.pk)}/change/").content.decode()]
    for page in pages:
        assert NEW_SECRET not in page
    assert post_fixture(client, "stripe", "customer.created", business_id=biz, secret=NEW_SECRET).status_code == 200


def test_invalid_entry_does_not_echo_the_secret(admin_client: Client, tenant) -> None:
    """A form sent back with an error (no workspace) does not fill the typed secret in again."""
    response = admin_client.post("/admin/ingestion/providersecret/add/", {
        "workspace": "", "provider": "stripe", "secret": NEW_SECRET})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert NEW_SECRET not in response.content.decode()
    assert ProviderSecret.objects.exists() is False


def test_console_rotation_keeps_or_revokes_the_older_secret(admin_client: Client, connected) -> None:
    """Adding a secret keeps the older one valid; ticking 'revoke the older secrets' ends them."""
    biz = connected.workspace.id
    url = "/admin/ingestion/providersecret/add/"
    admin_client.post(url, {"workspace": biz, "provider": "paddle", "secret": ROTATED["paddle"]})
    assert ProviderSecret.objects.filter(provider="paddle", revoked_at=None).count() == 2
    admin_client.post(url, {"workspace": biz, "provider": "paddle", "secret": NEW_SECRET, "replace": "on"})
    assert list(ProviderSecret.objects.filter(provider="paddle", revoked_at=None).values_list("secret", flat=True)) \
        == [NEW_SECRET]
