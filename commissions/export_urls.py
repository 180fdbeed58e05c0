"""CSV exports (issue #7); included before ``commissions.api_urls`` so ``export.csv`` is not read as an id."""

from django.urls import path

from . import export

urlpatterns = [
    path("api/commissions/export.csv", export.CommissionExportView.as_view(), name="commission-export"),
    path("api/payouts/export.csv", export.PayoutExportView.as_view(), name="payout-export"),
]
