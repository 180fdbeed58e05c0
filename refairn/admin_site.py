"""The operator console: the Django admin with a landing page of the figures checked first."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse


class RefairnAdminSite(admin.AdminSite):
    site_header = "Refairn console"
    site_title = "Refairn"
    index_title = "Overview"
    index_template = "admin/refairn_index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from ingestion.console import operator_workspace_ids

        from .figures import console_figures

        context = {"figures": console_figures(operator_workspace_ids(request)), **(extra_context or {})}
        return super().index(request, context)
