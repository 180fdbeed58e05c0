"""An agent logs in, sees the ledger and the earnings chart drawn, opens an explain trail (real Chromium)."""

from __future__ import annotations

import re

import pytest

from commissions.models import LedgerEntry
from tests.console.support import PASSWORD, build_agent_world

from .conftest import CANVAS_PAINTED_JS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(tenant):
    return build_agent_world(tenant.workspace, tenant.product, code="BROWSER1", prefix="brw")


def log_in(page, live_server, world) -> None:
    page.goto(f"{live_server.url}/agent/login/")
    page.fill("#id_username", world.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/agent/")


def test_agent_logs_in_and_sees_ledger_chart_and_an_explain_trail(page, live_server, world, shoot) -> None:
    """Login → overview with ledger statuses and a painted chart → the referral's explain trail."""
    page.goto(f"{live_server.url}/agent/")
    assert page.url.startswith(f"{live_server.url}/agent/login/")
    shoot(page, "agent-login")
    log_in(page, live_server, world)

    rows = page.locator("table.ledger tbody tr")
    assert rows.count() == 3
    statuses = page.locator("table.ledger .pill").all_inner_texts()
    assert sorted(statuses) == ["payable", "pending", "pending"]
    assert page.locator("#balances [data-bucket=payable]").inner_text() == "19.80"
    assert page.locator("input.referral-link").input_value() == f"{live_server.url}/r/BROWSER1"

    page.wait_for_selector("#rf-monthly[data-rendered=true]")
    assert page.evaluate(CANVAS_PAINTED_JS, "rf-monthly") > 0
    shoot(page, "agent-overview")

    referral = LedgerEntry.objects.get(agent_id=world.agent.id, kind="referral")
    page.click(f"tr[data-entry='{referral.id}'] a")
    page.wait_for_url(re.compile(rf".*/agent/commissions/{referral.id}/$"))
    assert page.locator("code.formula").inner_text() == "round_half_up(9900 × 20 / 100) = 1980"
    assert "code BROWSER1" in page.locator("#explain").inner_text()
    shoot(page, "agent-explain")


def test_copy_button_copies_the_referral_link(page, live_server, world) -> None:
    """The copy button puts the link on the clipboard and says so."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server, world)
    button = page.locator("button.copy").first
    button.click()
    page.wait_for_selector("button.copy[data-copied=true]")
    assert page.evaluate("navigator.clipboard.readText()") == f"{live_server.url}/r/BROWSER1"


def test_dashboard_is_readable_at_phone_width(phone, live_server, world, shoot) -> None:
    """At 390 px nothing scrolls sideways except inside table boxes, and the chart still draws."""
    log_in(phone, live_server, world)
    phone.wait_for_selector("#rf-monthly[data-rendered=true]")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.evaluate(CANVAS_PAINTED_JS, "rf-monthly") > 0
    assert phone.locator("button.copy").first.is_visible()
    shoot(phone, "agent-overview-phone")
    referral = LedgerEntry.objects.get(agent_id=world.agent.id, kind="referral")
    phone.goto(f"{live_server.url}/agent/commissions/{referral.id}/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "agent-explain-phone")
