"""``/api/imports``: CSV uploads and their progress (issue #7)."""

from django.urls import path

from . import imports_api

urlpatterns = [
    path("api/imports", imports_api.ImportCreateView.as_view(), name="api-imports"),
    path("api/imports/<str:import_id>", imports_api.ImportDetailView.as_view(), name="api-import"),
    path("api/imports/<str:import_id>/plan", imports_api.ImportPlanView.as_view(), name="api-import-plan"),
]
