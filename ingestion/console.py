"""Admin building blocks shared by every app's console pages: workspace scoping, read-only views."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


def operator_workspace_ids(request: HttpRequest) -> list[str] | None:
    """Return the workspaces a staff user may see, or ``None`` for a superuser (all of them)."""
    user = request.user
    if user.is_superuser:
        return None
    return list(user.workspaces.values_list("id", flat=True))  # type: ignore[union-attr]


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Show an operator only the rows of their workspaces (unless superuser).

    ``workspace_field`` names the lookup from the model to its workspace id.
    """

    workspace_field = "workspace_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        allowed = operator_workspace_ids(request)
        if allowed is None:
            return qs
        return qs.filter(**{f"{self.workspace_field}__in": allowed})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        allowed = operator_workspace_ids(request)
        if allowed is not None and db_field.name == "workspace":
            from .models import Workspace

            kwargs["queryset"] = Workspace.objects.filter(id__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdmin(WorkspaceScopedAdmin):
    """An audited view: nothing can be added, changed or deleted from the console."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
