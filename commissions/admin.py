"""The ledger in the operator console: read-only entries with their explain trail, payouts.

Nothing here writes a ledger row: voiding, creating and confirming payouts append operator events
through ``commissions.services`` (the same functions the API calls), and the projector does the
rest. Operators see only their workspaces' rows (``WorkspaceScopedAdmin``).

The admins are read-only (``has_change_permission`` is False whatever the user's permissions), so
the two actions that move money ask for a Django permission of their own: voiding needs
``commissions.change_ledgerentry`` (it changes what an entry is worth) and confirming a payout
needs ``commissions.change_payout`` (it changes the payout's state to "the money has left";
creating one needs ``add_payout``, so the two can be given to different people). A staff user who
may only view these changelists is not offered the actions, and a forged POST of one is refused
by the admin like any unknown action. Superusers have every permission.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from agents.models import Agent
from ingestion.console import ReadOnlyAdmin, WorkspaceScopedAdmin, operator_workspace_ids
from ingestion.errors import ApplicationError
from ingestion.models import Event
from ingestion.money import from_minor

from . import selectors, services
from .export import export_entries_csv, export_payout_file
from .models import LedgerEntry, Payout, PayoutLine


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _money(amount: int, currency: str) -> str:
    return f"{from_minor(amount, currency)} {currency}"


def _pre(value: Any) -> SafeString:
    return format_html("<pre style='white-space:pre-wrap;max-width:60em;margin:0'>{}</pre>",
                       json.dumps(value, indent=2, sort_keys=True, default=str))


def _event_line(event: Event | None) -> SafeString:
    if event is None:
        return format_html("<em>{}</em>", "not found")
    url = reverse("admin:ingestion_event_change", args=[event.position])
    return format_html("<a href='{}'>#{} {}</a> ({}, {}) {}", url, event.position, event.type, event.source,
                       event.occurred_at.isoformat(), event.event_id)


def explain_html(trail: dict[str, Any]) -> SafeString:
    """Render ``selectors.commission_explain`` for the entry's admin page."""
    attribution = trail["attribution"]
    enrollment = trail["enrollment"]
    rows: list[tuple[str, SafeString]] = [
        ("Payment", _event_line(trail["payment"]) if trail["payment"] else format_html("<em>{}</em>", "none")),
        ("Attribution decided by", _event_line(attribution["decidedEvent"])),
        ("Attributed via", format_html("{} {} {}", attribution.get("via") or "—",
                                       attribution.get("referralCode") or "", attribution.get("detail") or "")),
        ("Events behind the attribution", format_html_join(mark_safe("<br>"), "{}", (
            (_event_line(e),) for e in attribution["events"])) or format_html("<em>{}</em>", "none")),
        ("Enrollment terms from", _event_line(enrollment["event"]) if enrollment["event"]
         else format_html("<em>{}</em>", enrollment["enrollmentId"] or "—")),
        ("Terms", _pre(enrollment["terms"])),
        ("Formula", format_html("<code>{}</code>", trail["formula"].get("expression", ""))),
    ]
    if trail["reversal"]:
        reversal = trail["reversal"]
        rows.append(("Reversal", format_html("{} of {}: <code>{}</code> {}", reversal["cause"],
                                             reversal["reversesCommissionId"],
                                             reversal["formula"].get("expression", ""), reversal["reason"])))
        rows.append(("Reversal caused by", _event_line(reversal["causeEvent"])))
    history = format_html_join(mark_safe("<br>"), "<a href='{}'>#{} {}</a> ({}) {} — {}", (
        (reverse("admin:ingestion_event_change", args=[h["position"]]), h["position"], h["type"], h["eventId"],
         h["occurredAt"].isoformat() if isinstance(h["occurredAt"], datetime) else h["occurredAt"], h["effect"])
        for h in trail["history"]))
    rows.append(("Later events", history or format_html("<em>{}</em>", "none")))
    row_html = "<tr><th style='text-align:left'>{}</th><td>{}</td></tr>"
    return format_html("<table>{}</table>", format_html_join("", row_html, rows))


class VoidForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the commission.voided event.")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "agent_id", "amount_display", "status", "payment_ref", "occurred_at", "workspace")
    list_filter = ("kind", "currency", "cause")
    search_fields = ("id", "agent_id", "customer_id", "payment_ref", "created_from_event_id")
    list_select_related = ("workspace",)
    readonly_fields = ("status", "explain")
    actions = ["void_selected", export_entries_csv]
    fieldsets = (
        (None, {"fields": ("id", "workspace", "kind", "amount", "currency", "status", "agent_id", "customer_id",
                           "payment_ref", "payment_amount", "payment_currency")}),
        ("Times", {"fields": ("occurred_at", "effective_at", "hold_days", "hold_until", "payout_threshold")}),
        ("Origin", {"fields": ("created_from_event_id", "created_position", "payment_event_id", "decided_event_id",
                               "enrollment_id", "program_id", "enrollment_event_id", "base_id", "base_amount",
                               "cause", "cause_event_id", "reason", "formula")}),
        ("Explain", {"fields": ("explain",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.annotate_status(super().get_queryset(request), timezone.now())

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: LedgerEntry) -> str:
        return _money(obj.amount, obj.currency)

    @admin.display(description="status (now)")
    def status(self, obj: LedgerEntry) -> str:
        status = getattr(obj, "ledger_status", None)
        if status is None:
            found = selectors.commission_get(workspace_id=obj.workspace_id, commission_id=obj.id, as_of=timezone.now())
            return found[1] if found else "—"
        if status != "earned":
            return status
        cache: dict[tuple[str, str, str], bool] = self.__dict__.setdefault("_payable_cache", {})
        key = (obj.workspace_id, obj.agent_id, obj.currency)
        if key not in cache:
            cache[key] = bool(selectors.payable_pairs(workspace_id=obj.workspace_id, as_of=timezone.now(),
                                                      agent_id=obj.agent_id, currency=obj.currency))
        return "payable" if cache[key] else "earned"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self.__dict__["_payable_cache"] = {}
        return super().changelist_view(request, extra_context)

    @admin.display(description="explain trail")
    def explain(self, obj: LedgerEntry) -> SafeString:
        return explain_html(selectors.commission_explain(workspace_id=obj.workspace_id, entry=obj))

    def has_void_permission(self, request: HttpRequest) -> bool:
        """Voiding appends reversals: it needs the change permission on ledger entries."""
        return request.user.has_perm("commissions.change_ledgerentry")

    @admin.action(description="Void the selected commissions (with a reason)", permissions=["void"])
    def void_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if "apply" in request.POST:
            form = VoidForm(request.POST)
            if form.is_valid():
                done = 0
                for entry in queryset:
                    try:
                        services.commission_void(workspace=entry.workspace, commission_id=entry.id,
                                                 reason=form.cleaned_data["reason"], actor=_actor(request))
                        done += 1
                    except ApplicationError as exc:
                        messages.error(request, f"{entry.id}: {exc.message}")
                if done:
                    messages.success(request, f"Voided {done} commission(s); reversals are appended to the ledger.")
                return None
        else:
            form = VoidForm()
        return TemplateResponse(request, "admin/commissions/action_form.html", {
            **self.admin_site.each_context(request), "title": "Void commissions", "form": form,
            "objects": queryset, "action": "void_selected", "opts": self.model._meta,
            "button": "Void", "checkbox": admin.helpers.ACTION_CHECKBOX_NAME,
        })


class PayoutLineInline(admin.TabularInline):
    model = PayoutLine
    extra = 0
    fields = ("entry_id", "amount")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PayoutCreateForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none())
    currency = forms.CharField(max_length=3, initial="USD")
    cutoff = forms.DateTimeField(required=False, help_text="Default: now. Entries whose hold ended by then.")

    def __init__(self, *args: Any, allowed: list[str] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        agents = Agent.objects.select_related("workspace").order_by("workspace__name", "name")
        self.fields["agent"].queryset = agents if allowed is None else agents.filter(workspace_id__in=allowed)


class ConfirmForm(forms.Form):
    reference = forms.CharField(max_length=255, help_text="The transfer's reference, e.g. a bank transfer id.")


@admin.register(Payout)
class PayoutAdmin(WorkspaceScopedAdmin):
    list_display = ("id", "agent_id", "amount_display", "status", "reference", "created_at", "confirmed_at",
                    "workspace")
    list_filter = ("status", "currency")
    search_fields = ("id", "agent_id", "reference")
    list_select_related = ("workspace",)
    inlines = [PayoutLineInline]
    actions = ["confirm_selected", export_payout_file]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payout) -> str:
        return _money(obj.amount, obj.currency)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        """Create a payout through ``services.payout_create`` (payout.created), not a model form."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:commissions_payout_changelist"))
        allowed = operator_workspace_ids(request)
        form = PayoutCreateForm(request.POST or None, allowed=allowed)
        if request.method == "POST" and form.is_valid():
            agent = form.cleaned_data["agent"]
            try:
                created = services.payout_create(workspace=agent.workspace, agent_id=agent.id,
                                                 currency=form.cleaned_data["currency"],
                                                 cutoff=form.cleaned_data["cutoff"], actor=_actor(request))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                amount = _money(created.amount, created.currency)
                messages.success(request, f"Payout {created.payout_id} created: {amount} over "
                                          f"{len(created.entries)} entries. Confirm it once paid.")
                return HttpResponseRedirect(reverse("admin:commissions_payout_changelist"))
        return TemplateResponse(request, "admin/commissions/payout_create.html", {
            **self.admin_site.each_context(request), "title": "Create a payout", "form": form,
            "opts": self.model._meta,
        })

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        """Confirming says the money has left: it needs the change permission on payouts."""
        return request.user.has_perm("commissions.change_payout")

    @admin.action(description="Confirm the selected payouts (with a reference)", permissions=["confirm"])
    def confirm_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if "apply" in request.POST:
            form = ConfirmForm(request.POST)
            if form.is_valid():
                for payout in queryset:
                    try:
                        services.payout_confirm(workspace=payout.workspace, payout_id=payout.id,
                                                reference=form.cleaned_data["reference"], actor=_actor(request))
                        messages.success(request, f"Payout {payout.id} confirmed: its entries are paid.")
                    except ApplicationError as exc:
                        messages.error(request, f"{payout.id}: {exc.message}")
                return None
        else:
            form = ConfirmForm()
        return TemplateResponse(request, "admin/commissions/action_form.html", {
            **self.admin_site.each_context(request), "title": "Confirm payouts", "form": form,
            "objects": queryset, "action": "confirm_selected", "opts": self.model._meta,
            "button": "Confirm", "checkbox": admin.helpers.ACTION_CHECKBOX_NAME,
        })
