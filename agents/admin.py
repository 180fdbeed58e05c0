"""Console pages for programs, agents and enrollments.

Every write goes through ``agents.services``, the same functions the API calls, so a decision
taken here appends the same ``enrollment.*`` event (actor ``user:<username>``) with its terms
snapshot and reason.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest

from ingestion.console import WorkspaceScopedAdmin, operator_workspace_ids
from ingestion.errors import ApplicationError
from ingestion.models import Product

from . import services
from .models import Agent, Enrollment, Program


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _field(exc: ApplicationError, form: forms.ModelForm) -> str | None:
    """Map a service error's field (API camelCase or model name) onto a form field, if any."""
    field = getattr(exc, "field", None)
    return field if field in form.fields else None


class ProgramForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = ("workspace", "product", "name", "referral_type", "referral_value", "referral_currency",
                  "recurring_percent", "recurring_duration_months", "support_percent", "attribution_window_days",
                  "hold_days", "payout_frequency", "payout_threshold", "conflict_mode", "enrollment_mode")

    def _post_clean(self) -> None:
        super()._post_clean()
        program: Program = self.instance
        if program.workspace_id and program.product_id and program.product.workspace_id != program.workspace_id:
            self.add_error("product", "This product belongs to another workspace.")
            return
        try:
            services.program_check(program)
        except ApplicationError as exc:
            self.add_error(_field(exc, self), exc.message)


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    fields = ("agent", "status", "referral_code", "decided_at", "reason")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Program)
class ProgramAdmin(WorkspaceScopedAdmin):
    """Programs: editing terms here changes only enrollments approved afterwards."""

    form = ProgramForm
    list_display = ("name", "id", "product", "referral", "recurring_percent", "recurring_duration_months",
                    "support_percent", "attribution_window_days", "hold_days", "enrollment_mode")
    list_filter = ("enrollment_mode", "payout_frequency")
    list_select_related = ("product",)
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    raw_id_fields = ("workspace", "product")
    inlines = [EnrollmentInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Program | None = None) -> tuple:
        if obj is not None:
            return ("workspace", "product", *self.readonly_fields)
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        allowed = operator_workspace_ids(request)
        if allowed is not None and db_field.name == "product":
            kwargs["queryset"] = Product.objects.filter(workspace_id__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="referral")
    def referral(self, obj: Program) -> str:
        if obj.referral_type == Program.ReferralType.FIXED:
            return f"{obj.referral_value.normalize():f} {obj.referral_currency}"
        return f"{obj.referral_value.normalize():f} %"

    def save_model(self, request: HttpRequest, obj: Program, form: forms.ModelForm, change: bool) -> None:
        terms = {f: getattr(obj, f) for f in services._PROGRAM_FIELDS if f != "name"}
        if change:
            services.program_update(program=obj, name=obj.name, **terms)
            return
        created = services.program_create(workspace=obj.workspace, product=obj.product, name=obj.name, **terms)
        obj.pk = created.pk
        obj.created_at, obj.updated_at = created.created_at, created.updated_at
        obj._state.adding = False


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ("workspace", "email", "name", "user")

    def clean_email(self) -> str:
        return services.normalise_email(self.cleaned_data.get("email") or "")


@admin.register(Agent)
class AgentAdmin(WorkspaceScopedAdmin):
    form = AgentForm
    list_display = ("name", "email", "id", "workspace", "user", "created_at")
    search_fields = ("name", "email", "id")
    readonly_fields = ("id", "created_at")
    raw_id_fields = ("workspace", "user")

    def get_readonly_fields(self, request: HttpRequest, obj: Agent | None = None) -> tuple:
        if obj is not None:
            # The email is in every enrollment event already (self-referral checks use that copy).
            return ("workspace", "email", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Agent, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.agent_create(workspace=obj.workspace, email=obj.email, name=obj.name)
        if obj.user_id:
            created.user_id = obj.user_id
            created.save(update_fields=["user"])
        obj.pk = created.pk
        obj._state.adding = False


class DecisionForm(helpers.ActionForm):
    """The changelist's action bar, with the reason every decision keeps (and an optional code)."""

    reason = forms.CharField(required=False, max_length=500,
                             widget=forms.TextInput(attrs={"placeholder": "reason (required to reject/remove)",
                                                           "size": 40}))
    referral_code = forms.CharField(required=False, max_length=32,
                                    widget=forms.TextInput(attrs={"placeholder": "code (approve one; optional)",
                                                                  "size": 20}))


class EnrollmentAddForm(forms.ModelForm):
    class Meta:
        model = Enrollment
        fields = ("agent", "program")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        agent, program = data.get("agent"), data.get("program")
        if agent and program and agent.workspace_id != program.workspace_id:
            raise forms.ValidationError("The agent and the program belong to different workspaces.")
        if agent and program and Enrollment.objects.filter(agent=agent, program=program).exists():
            raise forms.ValidationError("This agent is already enrolled in this program.")
        return data


@admin.register(Enrollment)
class EnrollmentAdmin(WorkspaceScopedAdmin):
    """Enrollments: decide with the actions (approve, reject, remove), each with a reason."""

    action_form = DecisionForm
    actions = ["approve", "reject", "remove"]
    list_display = ("agent", "program", "status", "referral_code", "applied_at", "decided_at", "reason")
    list_filter = ("status",)
    list_select_related = ("agent", "program")
    search_fields = ("referral_code", "agent__email", "agent__name", "id")
    fields = ("id", "workspace", "agent", "program", "status", "referral_code", "reason", "terms",
              "applied_at", "decided_at")
    readonly_fields = fields

    def get_form(self, request: HttpRequest, obj: Enrollment | None = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = EnrollmentAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Enrollment | None = None) -> Any:
        return ("agent", "program") if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Enrollment | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        allowed = operator_workspace_ids(request)
        if allowed is not None and db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.filter(workspace_id__in=allowed)
        if allowed is not None and db_field.name == "program":
            kwargs["queryset"] = Program.objects.filter(workspace_id__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decisions are events; an enrollment is removed, never deleted

    def save_model(self, request: HttpRequest, obj: Enrollment, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # nothing is edited in place; decisions are actions
        created = services.enrollment_apply(agent=obj.agent, program=obj.program, actor=_actor(request))
        obj.pk = created.pk
        obj._state.adding = False

    def _decide(self, request: HttpRequest, queryset: QuerySet, verb: str) -> None:
        reason = (request.POST.get("reason") or "").strip()
        code = (request.POST.get("referral_code") or "").strip()
        if verb in {"reject", "remove"} and not reason:
            messages.error(request, f"Give a reason to {verb}; nothing was changed.")
            return
        if code and queryset.count() > 1:
            messages.error(request, "A chosen referral code applies to one enrollment; select only one.")
            return
        done = 0
        for enrollment in queryset:
            try:
                if verb == "approve":
                    services.enrollment_approve(enrollment=enrollment, referral_code=code or None,
                                                actor=_actor(request), reason=reason)
                elif verb == "reject":
                    services.enrollment_reject(enrollment=enrollment, reason=reason, actor=_actor(request))
                else:
                    services.enrollment_remove(enrollment=enrollment, reason=reason, actor=_actor(request))
                done += 1
            except ApplicationError as exc:
                messages.error(request, f"{enrollment}: {exc.message}")
        if done:
            past = {"approve": "Approved", "reject": "Rejected", "remove": "Removed"}[verb]
            messages.success(request, f"{past} {done} enrollment(s).")

    @admin.action(description="Approve the selected enrollments (snapshot terms, fix the code)",
                  permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "approve")

    @admin.action(description="Reject the selected enrollments (reason required)", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "reject")

    @admin.action(description="Remove the selected agents from their programs (reason required)",
                  permissions=["change"])
    def remove(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "remove")
