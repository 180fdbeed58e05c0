"""``GET /r/<code>``: a click event, two cookies, a 302 with ref and rf_click; nothing else."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from agents.services import enrollment_remove
from ingestion.models import Event, Product
from tests.factories import AgentFactory, ProgramFactory, approved_enrollment

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(HTTP_HOST="localhost", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Browser/1.0",
                  HTTP_REFERER="https://blog.example.com/post")


@pytest.mark.smoke
def test_a_click_is_recorded_and_redirected_with_ref_and_click_id(tenant, ann, client):
    """The link appends click.recorded and redirects to the product URL with ref and rf_click."""
    Product.objects.filter(pk=tenant.product.pk).update(url="https://app.acme.test/signup?plan=pro&ref=old")
    response = client.get("/r/ann")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    query = parse_qs(target.query)
    event = Event.objects.get(type="click.recorded")
    click_id = event.data["click_id"]
    assert (target.netloc, target.path) == ("app.acme.test", "/signup")
    assert query == {"plan": ["pro"], "ref": ["ANN"], "rf_click": [click_id]}
    assert click_id.startswith("clk_")
    assert (event.source, event.source_event_id, event.workspace_id) == ("link", click_id, tenant.workspace.id)
    assert event.data["referral_code"] == "ANN"
    assert event.data["user_agent"] == "Browser/1.0"
    assert event.data["referrer"] == "https://blog.example.com/post"
    assert event.data["landing_url"] == "https://app.acme.test/signup?plan=pro&ref=old"
    assert event.data["first_click_id"] == click_id
    assert abs((timezone.now() - event.occurred_at).total_seconds()) < 60


def test_the_cookies_last_the_programs_window(tenant, ann, client):
    """refairn_code and refairn_click are set for the attribution window, SameSite=Lax."""
    response = client.get("/r/ANN")
    code, click = response.cookies["refairn_code"], response.cookies["refairn_click"]
    assert code.value == "ANN"
    assert click.value == Event.objects.get(type="click.recorded").data["click_id"]
    for cookie in (code, click):
        assert cookie["max-age"] == 30 * 86400
        assert cookie["samesite"] == "Lax"


def test_the_ip_is_stored_only_as_a_salted_hash(tenant, ann, client):
    """No raw IP reaches the store: only SHA-256 salted with the secret key."""
    client.get("/r/ANN")
    event = Event.objects.get(type="click.recorded")
    expected = hashlib.sha256(f"{settings.SECRET_KEY}:refairn-ip:198.51.100.7".encode()).hexdigest()
    assert event.data["ip_hash"] == expected
    assert "198.51.100.7" not in str(event.data)


def test_a_returning_visitor_carries_the_first_click(tenant, ann, client):
    """A visitor with a refairn_click cookie records that click as first_click_id."""
    first = client.get("/r/ANN").cookies["refairn_click"].value
    client.get("/r/ANN")
    second = Event.objects.filter(type="click.recorded").order_by("-position").first()
    assert second.data["first_click_id"] == first
    assert second.data["click_id"] != first


def test_a_forged_click_cookie_is_ignored(tenant, ann, client):
    """A cookie that is not one of our click ids is not recorded as a first click."""
    client.cookies["refairn_click"] = "<script>"
    client.get("/r/ANN")
    event = Event.objects.get(type="click.recorded")
    assert event.data["first_click_id"] == event.data["click_id"]


@pytest.mark.parametrize("code", ["NOPE", "ann-1", "x" * 40])
def test_an_unknown_code_is_a_plain_404_and_records_nothing(tenant, ann, client, code):
    """An unknown code answers 404 and appends nothing, sets no cookie."""
    response = client.get(f"/r/{code}")
    assert response.status_code == 404
    assert b"not active" in response.content
    assert response["Content-Type"].startswith("text/html")
    assert "Location" not in response
    assert not response.cookies
    assert Event.objects.filter(type="click.recorded").exists() is False


def test_a_removed_agents_code_is_a_404(tenant, ann, client):
    """An enrollment that is no longer approved has no working link."""
    enrollment_remove(enrollment=ann, reason="left")
    assert client.get("/r/ANN").status_code == 404
    assert Event.objects.filter(type="click.recorded").exists() is False


def test_a_landing_page_on_the_product_site_is_honoured(tenant, ann, client):
    """``?to=`` may choose a page of the product's own site, never another site."""
    response = client.get("/r/ANN", {"to": "/pricing?x=1"})
    assert response["Location"].startswith("https://app.acme.test/pricing?x=1&ref=ANN&rf_click=clk_")
    response = client.get("/r/ANN", {"to": "https://evil.example.com/"})
    assert response["Location"].startswith("https://app.acme.test/signup?ref=ANN")
    response = client.get("/r/ANN", {"to": "//evil.example.com/x"})
    assert urlsplit(response["Location"]).netloc == "app.acme.test"


def test_a_code_chosen_later_in_another_workspace_leaves_the_first_holders_link_working(
        tenant, ann, other_tenant, client):
    """Two workspaces holding one chosen code: the bare link stays the first approval's (links already
    handed out never break), and the later holder's link names its business with ``?b=``."""
    from attribution.links import referral_link_path

    other = ProgramFactory(workspace=other_tenant.workspace, product=other_tenant.product)
    later = approved_enrollment(program=other, agent=AgentFactory(workspace=other_tenant.workspace), code="ANN")

    assert client.get("/r/ANN").status_code == 302
    assert Event.objects.get(type="click.recorded").workspace_id == tenant.workspace.id
    assert referral_link_path(ann) == "/r/ANN"
    assert referral_link_path(later) == f"/r/ANN?b={other_tenant.workspace.id}"
    assert client.get(referral_link_path(later)).status_code == 302
    assert Event.objects.filter(type="click.recorded", workspace_id=other_tenant.workspace.id).count() == 1


def test_the_view_decides_no_attribution(tenant, ann, client, project):
    """A click alone makes no customer; the projector only records the click."""
    from attribution.models import Click, Customer

    client.get("/r/ANN")
    project()
    assert Customer.objects.exists() is False
    assert Click.objects.get().agent_id == ann.agent_id


def test_a_code_only_ever_applied_for_or_rejected_has_no_link(tenant, program, client):
    """Only approved enrollments have a code: an applicant's or a rejected agent's name is no link."""
    from agents.services import enrollment_apply, enrollment_reject

    applied = enrollment_apply(agent=AgentFactory(workspace=tenant.workspace, name="Pending"), program=program)
    rejected = enrollment_apply(agent=AgentFactory(workspace=tenant.workspace, name="Refused"), program=program)
    enrollment_reject(enrollment=rejected, reason="no")
    assert (applied.referral_code, rejected.referral_code) == (None, None)
    for code in ("PENDING", "REFUSED", "NONE"):
        assert client.get(f"/r/{code}").status_code == 404
    assert Event.objects.filter(type="click.recorded").exists() is False


def test_the_cookies_follow_the_snapshotted_window_not_the_edited_program(tenant, program, ann, client):
    """The link's cookies last the window Ann was approved with, even after the program is edited."""
    from agents.services import program_update

    program_update(program=program, attribution_window_days=7)
    response = client.get("/r/ANN")
    assert response.cookies["refairn_code"]["max-age"] == 30 * 86400
