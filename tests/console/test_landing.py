"""The console landing page: the figures an operator checks first, scoped to their workspaces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from attribution.figures import unattributed_payments
from commissions.figures import commission_totals, commissions_per_week
from ingestion.models import Delivery, ProjectionCheckpoint
from ingestion.store import store_head
from refairn.figures import console_figures

pytestmark = pytest.mark.django_db


@pytest.mark.smoke
def test_commission_totals_split_pending_and_payable_per_currency(world) -> None:
    """The referral past its hold is payable; the renewal in hold, net of its half refund, is pending."""
    totals = commission_totals([world.workspace.id])
    assert totals == [{
        "currency": "USD", "pending": 990 - 495, "earned": 0, "payable": 1980, "on_hold": 0,
        "pending_display": "4.95", "earned_display": "0.00", "payable_display": "19.80", "on_hold_display": "0.00",
    }]


def test_commission_totals_are_scoped_to_the_given_workspaces(world, other_world) -> None:
    """An operator's totals leave out another workspace's ledger; a superuser's (None) add both."""
    assert commission_totals([world.workspace.id])[0]["payable"] == 1980
    assert commission_totals(None)[0]["payable"] == 2 * 1980
    assert commission_totals([]) == []


def test_unattributed_payments_count_only_payments_no_agent_was_credited_with(world, other_world) -> None:
    """The stray payment of each world is unattributed; the attributed ones are not counted."""
    mine = unattributed_payments([world.workspace.id])
    assert mine == {"count": 1, "totals": [{"currency": "USD", "count": 1, "amount_minor": 2500,
                                            "amount": "25.00"}]}
    assert unattributed_payments(None)["count"] == 2


def test_commissions_per_week_puts_each_entry_in_the_week_of_its_time(world) -> None:
    """Twelve Monday labels; the referral sits 39 days back, the renewal net of its refund 8–9 days back."""
    now = timezone.now()
    chart = commissions_per_week([world.workspace.id], now=now)
    assert len(chart["labels"]) == 12
    labels = chart["labels"]

    def week_of(days: int) -> int:
        day = (now - timedelta(days=days)).date()
        return labels.index((day - timedelta(days=day.weekday())).isoformat())

    expected = ["0.00"] * 12
    expected[week_of(39)] = "19.80"
    renewal, refund = week_of(9), week_of(8)
    expected[renewal] = "9.90" if renewal != refund else "4.95"
    if renewal != refund:
        expected[refund] = "-4.95"
    assert chart["series"] == {"USD": expected}


def test_projection_lag_is_store_head_minus_each_checkpoint(world) -> None:
    """Lag per projection: how many positions each checkpoint is behind the store."""
    head = store_head()
    ProjectionCheckpoint.objects.filter(name="ledger").update(position=head - 3)
    lag = console_figures(None)["projection_lag"]
    assert lag["ledger"] == 3
    assert lag["attribution"] == 0


def test_failed_deliveries_counts_rejected_and_errored_in_the_last_day(world) -> None:
    """Rejected and errored deliveries of the last 24 h count; accepted or older ones do not."""
    ws = world.workspace
    Delivery.objects.create(workspace=ws, provider="stripe", verdict=Delivery.Verdict.REJECTED)
    Delivery.objects.create(workspace=ws, provider="stripe", verdict=Delivery.Verdict.ERROR)
    Delivery.objects.create(workspace=ws, provider="stripe", verdict=Delivery.Verdict.ACCEPTED)
    Delivery.objects.create(workspace=ws, provider="stripe", verdict=Delivery.Verdict.REJECTED,
                            received_at=timezone.now() - timedelta(days=2))
    assert console_figures([ws.id])["failed_deliveries"] == 2


def test_landing_page_shows_every_figure_and_the_chart_data(client, superuser, world) -> None:
    """The admin index renders the figures, the weekly chart's data and the vendored Chart.js (no CDN)."""
    client.force_login(superuser)
    response = client.get("/admin/")
    body = response.content.decode()
    assert response.status_code == 200
    for figure in ("events", "failed-deliveries", "unattributed", "commissions", "lag", "operator-actions"):
        assert f'data-figure="{figure}"' in body
    assert '<td class="num" data-bucket="payable">19.80</td>' in body
    assert 'data-projection="ledger"' in body
    assert 'id="rf-weekly-data"' in body
    assert "/static/vendor/chartjs/chart.umd.min.js" in body
    assert "cdn" not in body.lower()
    assert "enrollment.approved" in body  # the latest operator actions, with who did them


def test_operator_sees_only_their_workspace_figures(client, operator, world, other_world) -> None:
    """A non-superuser operator's landing page counts only their workspace (one stray payment, one payable)."""
    client.force_login(operator)
    response = client.get("/admin/")
    figures = response.context["figures"]
    assert figures["unattributed_payments"]["count"] == 1
    assert figures["commission_totals"][0]["payable"] == 1980
    assert set(figures["events_by_source"]) <= {"api", "link", "operator"}
    assert sum(figures["events_by_source"].values()) == sum(console_figures([world.workspace.id])
                                                            ["events_by_source"].values())
    assert all(e.workspace_id == world.workspace.id for e in figures["operator_actions"])


def test_landing_page_is_staff_only(client, world) -> None:
    """A logged-in user who is not staff (an agent) is sent to the admin login, with no figures."""
    client.force_login(world.agent.user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
