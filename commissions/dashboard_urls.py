"""The agent dashboard's routes (``/agent/``); wired at the root by ``refairn.urls``."""

from django.urls import path

from . import dashboard

urlpatterns = [
    path("agent/", dashboard.overview, name="agent-home"),
    path("agent/login/", dashboard.AgentLoginView.as_view(), name="agent-login"),
    path("agent/logout/", dashboard.AgentLogoutView.as_view(), name="agent-logout"),
    path("agent/programs/<str:enrollment_id>/", dashboard.program_detail, name="agent-program"),
    path("agent/commissions/", dashboard.ledger, name="agent-ledger"),
    path("agent/commissions/<str:commission_id>/", dashboard.commission_detail, name="agent-commission"),
    path("agent/payouts/<str:payout_id>/", dashboard.payout_detail, name="agent-payout"),
]
