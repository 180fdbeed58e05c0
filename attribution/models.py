"""Attribution state, built only by ``attribution.projector`` from the event store.

``PaymentAttribution`` is the contract with the commission ledger: one immutable row per
attributed payment, tagged with the position of the event that decided it, so the ledger can be
rebuilt on its own and still see exactly what attribution knew at each point of the store.
"""

from django.db import models

from ingestion.models import Workspace


class PaymentAttribution(models.Model):
    """The decision that a payment belongs to an agent (written once, never changed)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    payment_ref = models.CharField(max_length=255, help_text="One payment, whatever channel reported it.")
    payment_event_id = models.CharField(max_length=40, help_text="The payment.succeeded event (evt_…).")
    payment_position = models.BigIntegerField()
    decided_position = models.BigIntegerField(
        db_index=True, help_text="Position of the event that made the decision (payment, signup, reassignment).")
    decided_event_id = models.CharField(max_length=40)
    occurred_at = models.DateTimeField(help_text="Payment time; the hold runs from here.")
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    customer_id = models.CharField(max_length=40, help_text="cus_… of the attributed customer.")
    agent_id = models.CharField(max_length=40)
    enrollment_id = models.CharField(max_length=40)
    program_id = models.CharField(max_length=40)
    terms = models.JSONField(help_text="The enrollment's snapshotted terms (enrollment.approved event).")
    enrollment_event_id = models.CharField(max_length=40, help_text="The enrollment.approved event.")
    enrollment_active = models.BooleanField(
        help_text="False when the enrollment was removed before this payment: it earns nothing.")
    sequence = models.PositiveIntegerField(help_text="1 for the customer's first payment, 2 for the next…")
    first_payment_at = models.DateTimeField(help_text="The customer's first payment; the recurring cap counts from it.")
    customer_cancelled = models.BooleanField(
        default=False, help_text="A cancellation preceded this payment: no recurring or support commission.")
    support_agent_id = models.CharField(max_length=40, blank=True)
    support_enrollment_id = models.CharField(max_length=40, blank=True)
    support_terms = models.JSONField(null=True, blank=True)
    support_event_id = models.CharField(max_length=40, blank=True, help_text="The support.assigned event.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "payment_ref"], name="attribution_payattr_ref_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_ref} → {self.agent_id}"
