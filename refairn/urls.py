"""Root urls: wiring only. Each app owns its views and url modules."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # SaaS-backend API (Bearer key)
    path("", include("ingestion.api_urls")),      # /api/events/*, /api/events (read)
    path("", include("ingestion.import_urls")),   # /api/imports
    path("", include("agents.api_urls")),         # /api/programs, /api/agents, /api/enrollments
    path("", include("attribution.api_urls")),    # /api/customers
    path("", include("commissions.export_urls")),  # /api/commissions/export.csv (before api_urls)
    path("", include("commissions.api_urls")),    # /api/commissions, /api/payouts, balances
    # Providers, prospects, agents
    path("", include("ingestion.webhook_urls")),  # /webhooks/<provider>/<businessId>
    path("", include("attribution.urls")),        # /r/<code>
    path("", include("commissions.dashboard_urls")),  # /agent/
    path("", include("ingestion.urls")),
    path("", include("agents.urls")),
    path("", include("commissions.urls")),
]
