"""``/api/commissions``, ``/api/agents/<id>/balance``, ``/api/payouts`` (issue #5)."""

from django.urls import path

from . import api

urlpatterns = [
    path("api/commissions", api.CommissionListView.as_view(), name="commission-list"),
    path("api/commissions/<str:commission_id>", api.CommissionDetailView.as_view(), name="commission-detail"),
    path("api/commissions/<str:commission_id>/explain", api.CommissionExplainView.as_view(),
         name="commission-explain"),
    path("api/commissions/<str:commission_id>/void", api.CommissionVoidView.as_view(), name="commission-void"),
    path("api/agents/<str:agent_id>/balance", api.AgentBalanceView.as_view(), name="agent-balance"),
    path("api/payouts", api.PayoutListCreateView.as_view(), name="payout-list"),
    path("api/payouts/<str:payout_id>", api.PayoutDetailView.as_view(), name="payout-detail"),
    path("api/payouts/<str:payout_id>/confirm", api.PayoutConfirmView.as_view(), name="payout-confirm"),
]
