"""Root urls: wiring only. Each app owns its views and url modules."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

# Refusals, unknown paths and unhandled exceptions under /api/ and /webhooks/ answer the JSON error shape.
handler400 = "refairn.error_views.bad_request"
handler403 = "refairn.error_views.permission_denied"
handler404 = "refairn.error_views.page_not_found"
handler500 = "refairn.error_views.server_error"

urlpatterns = [
    # The hot paths first: URL resolution walks this list in order on every request.
    path("", include("ingestion.webhook_urls")),  # /webhooks/<provider>/<businessId>
    path("", include("ingestion.api_urls")),      # /api/events/*, /api/events (read)
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # SaaS-backend API (Bearer key)
    path("", include("ingestion.import_urls")),   # /api/imports
    path("", include("agents.api_urls")),         # /api/programs, /api/agents, /api/enrollments
    path("", include("attribution.api_urls")),    # /api/customers
    path("", include("commissions.export_urls")),  # /api/commissions/export.csv (before api_urls)
    path("", include("commissions.api_urls")),    # /api/commissions, /api/payouts, balances
    # Prospects, agents
    path("", include("attribution.urls")),        # /r/<code>
    path("", include("commissions.dashboard_urls")),  # /agent/
    path("", include("ingestion.urls")),
    path("", include("agents.urls")),
    path("", include("commissions.urls")),
]
