import json

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html

from . import projections
from .console import ReadOnlyAdmin, WorkspaceScopedAdmin
from .models import ApiKey, Delivery, Event, ImportJob, Product, ProjectionCheckpoint, ProviderSecret, Workspace
from .workspaces import api_key_issue, api_key_revoke, provider_secret_set


def _pretty(value: object) -> str:
    return format_html("<pre style='white-space:pre-wrap;max-width:60em'>{}</pre>",
                       json.dumps(value, indent=2, sort_keys=True, default=str))


# A product URL typed without a scheme is https (Django 6's default, chosen now).
_URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class ProductInline(admin.TabularInline):
    model = Product
    formfield_overrides = _URL_FIELDS
    extra = 0
    fields = ("id", "name", "url", "pricing_model", "category")
    readonly_fields = ("id",)


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_field = "id"
    list_display = ("name", "id", "base_currency", "created_at")
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at")
    filter_horizontal = ("operators",)
    inlines = [ProductInline]


@admin.register(Product)
class ProductAdmin(WorkspaceScopedAdmin):
    formfield_overrides = _URL_FIELDS
    list_display = ("name", "id", "workspace", "pricing_model", "url")
    list_filter = ("pricing_model",)
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at")
    raw_id_fields = ("workspace",)


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceScopedAdmin):
    list_display = ("name", "hint", "workspace", "live", "created_at", "last_used_at", "revoked_at")
    list_filter = ("live",)
    fields = ("workspace", "name", "live", "hint", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("hint", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple:
        if obj is not None:
            return ("workspace", "name", "live", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        secret = api_key_issue(key=obj)
        messages.warning(request, f"Copy this key now; it is shown only once: {secret}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: object) -> None:
        for key in queryset:  # type: ignore[attr-defined]
            api_key_revoke(key=key)
        messages.success(request, "Keys revoked.")


class ProviderSecretForm(forms.ModelForm):
    """Entry of a new secret: typed into a password box that is never filled back in, and stored
    through ``provider_secret_set`` (the service ``manage.py set_provider_secret`` uses)."""

    provider = forms.ChoiceField(choices=())
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=True, max_length=500,
                             help_text="Never shown again and never logged.")
    replace = forms.BooleanField(required=False, label="Revoke the older secrets",
                                 help_text="Leave unticked during a rotation: the older secrets stay valid.")

    class Meta:
        model = ProviderSecret
        fields = ("workspace", "provider", "secret", "label")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        from .providers import registered

        self.fields["provider"].choices = [(name, name) for name in registered()]


@admin.register(ProviderSecret)
class ProviderSecretAdmin(WorkspaceScopedAdmin):
    """Webhook signing secrets: entered here (several per provider during a rotation), never displayed."""

    list_display = ("provider", "workspace", "label", "created_at", "revoked_at")
    list_filter = ("provider",)
    raw_id_fields = ("workspace",)

    def get_form(self, request: HttpRequest, obj: ProviderSecret | None = None, change: bool = False,
                 **kwargs: object) -> type:
        if obj is None:
            kwargs["form"] = ProviderSecretForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ProviderSecret | None = None) -> tuple:
        if obj is None:
            return ("workspace", "provider", "secret", "replace", "label")
        return ("workspace", "provider", "label", "created_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderSecret | None = None) -> tuple:
        return () if obj is None else ("workspace", "provider", "created_at")

    def save_model(self, request: HttpRequest, obj: ProviderSecret, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data  # type: ignore[attr-defined]
        saved = provider_secret_set(workspace=obj.workspace, provider=obj.provider, secret=data["secret"],
                                    label=obj.label, replace=bool(data.get("replace")))
        # The admin goes on with this instance (messages, history): make it the saved row.
        obj.pk, obj.created_at = saved.pk, saved.created_at
        obj._state.adding = False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("position", "event_id", "type", "source", "workspace", "occurred_at", "recorded_at", "actor")
    list_filter = ("source", "type", "workspace")
    search_fields = ("event_id", "source_event_id")
    list_select_related = ("workspace",)
    ordering = ("-position",)
    fields = ("position", "event_id", "workspace", "source", "source_event_id", "type", "occurred_at",
              "recorded_at", "actor", "schema_version", "data_pretty", "raw_pretty")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="data")
    def data_pretty(self, obj: Event) -> str:
        return _pretty(obj.data)

    @admin.display(description="raw")
    def raw_pretty(self, obj: Event) -> str:
        return _pretty(obj.raw)


@admin.register(ProjectionCheckpoint)
class ProjectionCheckpointAdmin(admin.ModelAdmin):
    list_display = ("name", "position", "lag", "updated_at")
    actions = ["rebuild"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="lag (events)")
    def lag(self, obj: ProjectionCheckpoint) -> int:
        return projections.projection_lag().get(obj.name, 0)

    @admin.action(description="Rebuild the selected projections from the event store")
    def rebuild(self, request: HttpRequest, queryset: object) -> None:
        for checkpoint in queryset:  # type: ignore[attr-defined]
            counts = projections.rebuild_recorded(checkpoint.name, actor=f"user:{request.user.get_username()}")
            messages.success(request, f"Rebuilt {', '.join(f'{k} ({v} events)' for k, v in counts.items())}.")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Every webhook request with its verdict; verified ones can be re-normalised after a mapping fix."""

    list_display = ("id", "provider", "workspace", "verdict", "received_at", "remote_ip")
    list_filter = ("verdict", "provider")
    list_select_related = ("workspace",)
    search_fields = ("id",)
    fields = ("id", "provider", "workspace", "received_at", "remote_ip", "verdict", "error",
              "event_ids", "headers", "body", "body_truncated")
    readonly_fields = fields
    actions = ["renormalise"]
    show_full_result_count = False

    def has_renormalise_permission(self, request: HttpRequest) -> bool:
        """Re-normalising can append payments and refunds: it needs the change permission on deliveries.

        (This admin is read-only whatever the permission: ``change_delivery`` unlocks only this action.)
        """
        return request.user.has_perm("ingestion.change_delivery")

    @admin.action(description="Re-normalise the selected deliveries (already stored events are not duplicated)",
                  permissions=["renormalise"])
    def renormalise(self, request: HttpRequest, queryset: object) -> None:
        from .errors import ApplicationError
        from .webhooks import delivery_renormalise

        for delivery in queryset:  # type: ignore[attr-defined]
            try:
                result = delivery_renormalise(delivery=delivery, actor=f"user:{request.user.get_username()}")
            except ApplicationError as exc:
                messages.error(request, f"{delivery.id}: {exc.message}")
                continue
            if result.status != 200:
                messages.error(request, f"{delivery.id}: {result.body['error']['message']}")
            else:
                matched = len(result.event_ids) - result.created
                messages.success(request, f"{delivery.id}: {result.created} new event(s), "
                                          f"{matched} already stored ({result.verdict}).")


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """CSV imports: an upload page (dry run or real) and each job's result; jobs are never edited."""

    list_display = ("id", "filename", "workspace", "status", "dry_run", "rows_total", "events_appended",
                    "events_duplicate", "rows_invalid", "created_at")
    list_filter = ("status", "dry_run")
    list_select_related = ("workspace",)
    search_fields = ("id", "filename")
    change_list_template = "admin/ingestion/importjob/change_list.html"
    readonly_fields = ("id", "filename", "workspace", "status", "dry_run", "message", "rows_total", "rows_done",
                       "rows_invalid", "events_appended", "events_duplicate", "extra_columns", "row_errors",
                       "planned", "created_by", "created_at", "finished_at")
    fields = readonly_fields

    def get_urls(self) -> list:
        from django.urls import path

        from .import_admin import upload_view

        upload = path("upload/", self.admin_site.admin_view(lambda request: upload_view(self, request)),
                      name="ingestion_importjob_upload")
        return [upload, *super().get_urls()]

    @admin.display(description="row errors")
    def row_errors(self, obj: ImportJob) -> str:
        from .import_admin import errors_html

        return errors_html(obj)

    @admin.display(description="planned (dry run)")
    def planned(self, obj: ImportJob) -> str:
        from .import_admin import plan_html

        return plan_html(obj)
