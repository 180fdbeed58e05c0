"""Read-only console pages for attribution: customers and why, clicks, payments, refusals.

Nothing here is editable: these tables are a projection of the event store. Each row links to
the events behind it (ingestion's Event admin), so an operator can follow any decision back to
what was received. The one write is a customer's reassignment, which appends
``attribution.reassigned`` through ``services.customer_reassign`` (the service the API uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agents.models import Agent, Enrollment
from ingestion.console import ReadOnlyAdmin
from ingestion.errors import ApplicationError
from ingestion.models import Event

from . import services
from .models import AttributionRefusal, Click, Customer, PaymentAttribution, PaymentRecord, ReferralCode


def event_links(event_ids: Iterable[str]) -> dict[str, str]:
    """Return ``{event_id: admin url}`` for the given event ids, in one query."""
    ids = [e for e in event_ids if e]
    if not ids:
        return {}
    rows = Event.objects.filter(event_id__in=ids).values_list("event_id", "position")
    return {event_id: reverse("admin:ingestion_event_change", args=[position]) for event_id, position in rows}


def event_link(event_id: str) -> SafeString | str:
    url = event_links([event_id]).get(event_id)
    return format_html('<a href="{}">{}</a>', url, event_id) if url else (event_id or "—")


class ReassignForm(forms.Form):
    """Whom to move a customer to, and why (the reason is kept in the event)."""

    agent = forms.ModelChoiceField(queryset=Agent.objects.none(),
                                   help_text="Agents of this workspace with an approved enrollment.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Kept in the attribution.reassigned event, for the audit trail.")

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        approved = Enrollment.objects.filter(workspace_id=customer.workspace_id, status=Enrollment.Status.APPROVED)
        self.fields["agent"].queryset = (Agent.objects.filter(workspace_id=customer.workspace_id,
                                                              enrollments__in=approved)
                                         .distinct().order_by("name"))


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    """Customers with their attribution and the events that decided it; reassign with a reason."""

    actions = ["reassign"]

    list_display = ("id", "email", "customer_ref", "status", "agent_id", "referral_code", "attributed_via",
                    "unattributed_reason", "payments_count", "created_at")
    list_filter = ("status", "attributed_via", "unattributed_reason")
    search_fields = ("id", "email", "customer_ref", "agent_id", "referral_code")
    ordering = ("-created_position",)
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("id", "workspace", "email", "customer_ref", "name", "product_id", "status")}),
        ("Attribution", {"fields": ("agent", "enrollment_id", "program_id", "referral_code", "attributed_via",
                                    "unattributed_reason", "attribution_detail", "why", "reassign_link")}),
        ("Lifecycle", {"fields": ("payments_count", "first_payment_at", "cancelled_at", "support_agent_id",
                                  "support_enrollment_id", "created_at", "payments", "refusals")}),
    )
    readonly_fields = ("id", "workspace", "email", "customer_ref", "name", "product_id", "status", "agent",
                       "enrollment_id", "program_id", "referral_code", "attributed_via", "unattributed_reason",
                       "attribution_detail", "why", "reassign_link", "payments_count", "first_payment_at",
                       "cancelled_at", "support_agent_id", "support_enrollment_id", "created_at", "payments",
                       "refusals")

    def has_reassign_permission(self, request: HttpRequest) -> bool:
        """Moving a customer is a change: it needs the change permission on customers."""
        return request.user.has_perm("attribution.change_customer")

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.reassign_view)
        return [path("<path:object_id>/reassign/", view, name="attribution_customer_reassign"),
                *super().get_urls()]

    @admin.action(description="Reassign the selected customer to another agent (reason required)",
                  permissions=["reassign"])
    def reassign(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            messages.error(request, "Select exactly one customer to reassign; nothing was changed.")
            return None
        return HttpResponseRedirect(reverse("admin:attribution_customer_reassign", args=[quote(ids[0])]))

    def reassign_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask for the new agent and a reason, then call ``services.customer_reassign``."""
        # The admin quotes ids in its URLs ("_" is its escape character): unquote as its own views do.
        customer = self.get_queryset(request).filter(pk=unquote(object_id)).first()
        if customer is None:
            raise Http404("No such customer.")
        if not self.has_reassign_permission(request):
            raise PermissionDenied
        form = ReassignForm(request.POST or None, customer=customer)
        if request.method == "POST" and form.is_valid():
            try:
                moved = services.customer_reassign(
                    workspace=customer.workspace, customer_id=customer.id, agent_id=form.cleaned_data["agent"].id,
                    reason=form.cleaned_data["reason"], actor=_actor(request))
            except ApplicationError as exc:
                form.add_error("agent" if exc.field == "agentId" else None, exc.message)
            else:
                messages.success(request, f"Reassignment of {customer} to {form.cleaned_data['agent']} recorded "
                                          f"(event {moved.event_id}); later payments follow the new agent.")
                return HttpResponseRedirect(reverse("admin:attribution_customer_change", args=[quote(customer.pk)]))
        return TemplateResponse(request, "admin/attribution/customer/reassign.html", {
            **self.admin_site.each_context(request), "title": f"Reassign {customer}", "form": form,
            "customer": customer, "opts": self.model._meta, "original": customer,
        })

    @admin.display(description="reassign")
    def reassign_link(self, obj: Customer) -> SafeString:
        return format_html('<a href="{}">Reassign to another agent…</a> (appends attribution.reassigned with '
                           "your reason; the only way to move a customer)",
                           reverse("admin:attribution_customer_reassign", args=[quote(obj.pk)]))

    @admin.display(description="agent")
    def agent(self, obj: Customer) -> SafeString | str:
        if not obj.agent_id:
            return "— (unattributed)"
        agent = Agent.objects.filter(id=obj.agent_id).first()
        if agent is None:
            return obj.agent_id
        return format_html('<a href="{}">{}</a> ({})', reverse("admin:agents_agent_change", args=[quote(agent.pk)]),
                           agent.name, obj.agent_id)

    @admin.display(description="events behind it")
    def why(self, obj: Customer) -> SafeString:
        rows = [
            ("first click credited", obj.click_event_id),
            ("signup", obj.signup_event_id),
            ("attribution decided by", obj.attributed_event_id),
            ("first seen in", obj.created_event_id),
            ("first payment", obj.first_payment_event_id),
            ("cancellation", obj.cancelled_event_id),
            ("support assignment", obj.support_event_id),
        ]
        links = event_links(e for _, e in rows)
        shown = [(label, links.get(e, ""), e) for label, e in rows if e]
        if not shown:
            return format_html("{}", "—")
        return format_html("<ul>{}</ul>", format_html_join(
            "", '<li>{}: <a href="{}">{}</a></li>', shown))

    @admin.display(description="payments")
    def payments(self, obj: Customer) -> SafeString:
        records = list(PaymentRecord.objects.filter(customer_id=obj.id).order_by("occurred_at", "position")[:200])
        if not records:
            return format_html("{}", "—")
        links = event_links(r.event_id for r in records)
        return format_html("<table><tr><th>payment</th><th>when</th><th>amount</th><th>attributed</th>"
                           "<th>event</th></tr>{}</table>", format_html_join(
                               "", '<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td><a href="{}">{}</a>'
                                   "</td></tr>",
                               ((r.payment_ref, r.occurred_at, r.amount, r.currency,
                                 f"yes ({r.agent_id})" if r.attributed else "no", links.get(r.event_id, ""),
                                 r.event_id) for r in records)))

    @admin.display(description="refused attempts")
    def refusals(self, obj: Customer) -> SafeString:
        rows = list(AttributionRefusal.objects.filter(customer_id=obj.id).order_by("position")[:50])
        if not rows:
            return format_html("{}", "—")
        links = event_links(r.event_id for r in rows)
        return format_html("<ul>{}</ul>", format_html_join(
            "", '<li>{}: {} (<a href="{}">{}</a>)</li>',
            ((r.get_kind_display(), r.detail, links.get(r.event_id, ""), r.event_id) for r in rows)))


@admin.register(PaymentRecord)
class PaymentRecordAdmin(ReadOnlyAdmin):
    """Every payment seen, attributed or not (the "unattributed payments" figure)."""

    list_display = ("payment_ref", "occurred_at", "amount", "currency", "customer_id", "attributed", "agent_id",
                    "matched_by", "duplicates")
    list_filter = ("attributed", "matched_by", "currency")
    search_fields = ("payment_ref", "customer_id", "event_id")
    ordering = ("-position",)
    show_full_result_count = False
    readonly_fields = ("payment_ref", "workspace", "occurred_at", "amount", "currency", "customer_id",
                       "matched_by", "attributed", "agent_id", "decided_position", "customer_cancelled",
                       "support_agent_id", "duplicates", "payment_event")
    fields = readonly_fields

    @admin.display(description="event")
    def payment_event(self, obj: PaymentRecord) -> SafeString | str:
        return event_link(obj.event_id)


@admin.register(PaymentAttribution)
class PaymentAttributionAdmin(ReadOnlyAdmin):
    """The rows the commission ledger consumes: one per attributed payment."""

    list_display = ("payment_ref", "occurred_at", "amount", "currency", "customer_id", "agent_id", "sequence",
                    "enrollment_active", "customer_cancelled", "support_agent_id", "decided_position")
    list_filter = ("enrollment_active", "customer_cancelled", "currency")
    search_fields = ("payment_ref", "customer_id", "agent_id")
    ordering = ("-decided_position",)
    show_full_result_count = False
    readonly_fields = ("payment_ref", "workspace", "occurred_at", "amount", "currency", "customer_id", "agent_id",
                       "enrollment_id", "program_id", "sequence", "first_payment_at", "enrollment_active",
                       "customer_cancelled", "support_agent_id", "support_enrollment_id", "terms", "support_terms",
                       "events")
    fields = readonly_fields

    @admin.display(description="events")
    def events(self, obj: PaymentAttribution) -> SafeString:
        rows = [("payment", obj.payment_event_id), ("decided by", obj.decided_event_id),
                ("enrollment approved", obj.enrollment_event_id), ("support assigned", obj.support_event_id)]
        links = event_links(e for _, e in rows)
        return format_html("<ul>{}</ul>", format_html_join(
            "", '<li>{}: <a href="{}">{}</a></li>', ((label, links.get(e, ""), e) for label, e in rows if e)))


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = ("click_id", "occurred_at", "referral_code", "agent_id", "first_click_id", "landing_url")
    list_filter = ("referral_code",)
    search_fields = ("click_id", "referral_code", "agent_id", "first_click_id")
    ordering = ("-position",)
    show_full_result_count = False
    readonly_fields = ("click_id", "workspace", "occurred_at", "referral_code", "agent_id", "enrollment_id",
                       "first_click_id", "first_click_at", "landing_url", "referrer", "ip_hash", "user_agent",
                       "click_event")
    fields = readonly_fields

    @admin.display(description="event")
    def click_event(self, obj: Click) -> SafeString | str:
        return event_link(obj.event_id)


@admin.register(AttributionRefusal)
class AttributionRefusalAdmin(ReadOnlyAdmin):
    """Refused attributions: self-referrals, unknown or inactive codes, expired windows, bad events."""

    list_display = ("position", "occurred_at", "kind", "customer_id", "referral_code", "agent_id", "detail")
    list_filter = ("kind",)
    search_fields = ("customer_id", "referral_code", "agent_id", "event_id")
    show_full_result_count = False
    readonly_fields = ("kind", "workspace", "occurred_at", "customer_id", "referral_code", "agent_id", "detail",
                       "refused_event")
    fields = readonly_fields

    @admin.display(description="event")
    def refused_event(self, obj: AttributionRefusal) -> SafeString | str:
        return event_link(obj.event_id)


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyAdmin):
    """Referral codes as the event store describes them (what attribution decides with)."""

    list_display = ("code", "status", "agent_id", "enrollment_id", "program_id", "decided_position")
    list_filter = ("status",)
    search_fields = ("code", "agent_id", "enrollment_id")
    readonly_fields = ("code", "workspace", "status", "agent_id", "agent_email", "enrollment_id", "program_id",
                       "product_id", "terms", "approved", "decided")
    fields = readonly_fields

    @admin.display(description="approved by")
    def approved(self, obj: ReferralCode) -> SafeString | str:
        return event_link(obj.approved_event_id)

    @admin.display(description="latest decision")
    def decided(self, obj: ReferralCode) -> SafeString | str:
        return event_link(obj.decided_event_id)
