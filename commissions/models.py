"""The commission ledger and payouts, built only by ``commissions.projector`` (issue #5).

Every row here is projection state: ``rebuild_projections ledger`` deletes it and replays the
event store to the same rows, cent for cent and id for id. Ledger entries are written once and
never changed; a refund, a lost dispute or a void appends a reversal entry instead. Statuses
(pending, earned, payable, paid, reversed, on hold) are not stored: ``commissions.selectors``
derives them at read time from the hold, disputes, payouts and thresholds, as of any moment.

Times: ``occurred_at`` and ``effective_at`` are business time (events' ``occurred_at``), the
clock the hold runs on and the clock ``asOf`` reads use.
"""

from django.db import models

from ingestion.models import projection_workspace
from ingestion.money import from_minor


class LedgerEntry(models.Model):
    """One commission (or one reversal of one), never edited."""

    class Kind(models.TextChoices):
        REFERRAL = "referral"
        RECURRING = "recurring"
        SUPPORT = "support"
        REVERSAL = "reversal"

    class Cause(models.TextChoices):
        NONE = "", "—"
        REFUND = "refund"
        DISPUTE = "dispute"
        VOID = "void"

    id = models.CharField(primary_key=True, max_length=40, help_text="commissionId (com_…), derived, stable.")
    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Signed, in minor units of currency; reversals are negative.")
    currency = models.CharField(max_length=3)
    agent_id = models.CharField(max_length=40, help_text="agt_… who earns (or gives back) the amount.")
    customer_id = models.CharField(max_length=40, blank=True, help_text="cus_… whose payment earned it.")
    payment_ref = models.CharField(max_length=255, help_text="The payment, whatever channel reported it.")
    payment_event_id = models.CharField(max_length=40, help_text="The payment.succeeded event.")
    payment_amount = models.BigIntegerField(help_text="The payment's amount (minor units); refunds are a share of it.")
    payment_currency = models.CharField(max_length=3)
    decided_event_id = models.CharField(max_length=40, help_text="The event that attributed the payment.")
    created_from_event_id = models.CharField(
        max_length=40, help_text="The event whose application created this entry (decision, refund, dispute, void).")
    created_position = models.BigIntegerField(help_text="Store position of that event; the ledger order.")
    cause_event_id = models.CharField(
        max_length=40, blank=True, help_text="Reversals: the refund, dispute or void event behind it.")
    cause = models.CharField(max_length=10, choices=Cause.choices, blank=True, default="")
    reason = models.TextField(blank=True, help_text="Void reason, for reversals caused by a void.")
    occurred_at = models.DateTimeField(help_text="Payment time (commissions) or the cause's time (reversals).")
    effective_at = models.DateTimeField(
        help_text="From when the entry counts in as-of reads: the latest of its payment, decision and cause times.")
    hold_days = models.PositiveIntegerField(help_text="From the snapshotted terms.")
    hold_until = models.DateTimeField(help_text="Payment time + hold (reversals copy their original's).")
    payout_threshold = models.BigIntegerField(
        default=0, help_text="The terms' payout threshold in this currency (minor units).")
    base_id = models.CharField(
        max_length=40, help_text="The commission this line belongs to (itself, or the reversed one).")
    base_amount = models.BigIntegerField(help_text="The amount of that commission.")
    enrollment_id = models.CharField(max_length=40, blank=True)
    program_id = models.CharField(max_length=40, blank=True)
    enrollment_event_id = models.CharField(
        max_length=40, blank=True, help_text="The enrollment event whose terms applied.")
    formula = models.JSONField(help_text="The numbers behind the amount (base, rate, result …).")

    class Meta:
        ordering = ["-created_position", "-id"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["workspace", "created_position", "id"], name="commissions_entry_ws_pos"),
            models.Index(fields=["workspace", "agent_id", "currency"], name="commissions_entry_ws_agent"),
            models.Index(fields=["workspace", "payment_ref"], name="commissions_entry_ws_ref"),
            models.Index(fields=["base_id", "kind"], name="commissions_entry_base"),
            models.Index(fields=["workspace", "program_id"], name="commissions_entry_ws_prog"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {from_minor(self.amount, self.currency)} {self.currency}"


class LedgerPayment(models.Model):
    """What the ledger knows of one payment's refunds and lost disputes, even before it earns.

    A refund or dispute can arrive before the commission exists (a payment attributed later);
    this row parks it, and the commission is reconciled against it when it appears.
    """

    id = models.CharField(primary_key=True, max_length=40, help_text="Derived from workspace and payment_ref.")
    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    payment_ref = models.CharField(max_length=255)
    refunded_total = models.BigIntegerField(default=0, help_text="Cumulative refunded amount (minor units).")
    refund_currency = models.CharField(max_length=3, blank=True)
    refund_refs = models.JSONField(default=list, help_text="refund_refs already counted (dedupe).")
    last_refund_event_id = models.CharField(max_length=40, blank=True)
    last_refund_at = models.DateTimeField(null=True, blank=True)
    lost = models.BooleanField(default=False, help_text="A dispute on it was lost: full reversal.")
    lost_event_id = models.CharField(max_length=40, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    voided_entry_ids = models.JSONField(
        default=list, help_text="Its entries an operator voided: a void with nothing left to reverse writes no "
                                "reversal that would say so.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "payment_ref"], name="commissions_ledgerpayment_ref_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_ref} refunded {self.refunded_total}"


class PaymentDispute(models.Model):
    """One dispute (chargeback) of a payment: open from ``opened_at`` until ``resolved_at``."""

    class Outcome(models.TextChoices):
        OPEN = "", "open"
        WON = "won"
        LOST = "lost"

    id = models.CharField(primary_key=True, max_length=40, help_text="Derived from workspace, payment and dispute.")
    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    payment_ref = models.CharField(max_length=255)
    dispute_ref = models.CharField(max_length=255)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="Entries of the payment are on hold from here.")
    opened_event_id = models.CharField(max_length=40, blank=True)
    outcome = models.CharField(max_length=4, choices=Outcome.choices, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_event_id = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "payment_ref", "dispute_ref"],
                                    name="commissions_dispute_ref_uniq"),
        ]
        indexes = [models.Index(fields=["workspace", "payment_ref"], name="commissions_dispute_ws_ref")]

    def __str__(self) -> str:
        return f"{self.dispute_ref} on {self.payment_ref} ({self.outcome or 'open'})"


class LedgerTrail(models.Model):
    """An event that touched a payment's commissions (refund, dispute, void) and what it did."""

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    payment_ref = models.CharField(max_length=255)
    entry_id = models.CharField(max_length=40, blank=True, help_text="Set when the event names one entry (void).")
    position = models.BigIntegerField()
    event_id = models.CharField(max_length=40)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    effect = models.TextField(help_text="What the ledger did with it, in words.")

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["workspace", "payment_ref", "position"], name="commissions_trail_ws_ref")]

    def __str__(self) -> str:
        return f"#{self.position} {self.type} on {self.payment_ref}"


class Payout(models.Model):
    """A payout of an agent's payable entries in one currency; built from payout.* events."""

    class Status(models.TextChoices):
        CREATED = "created"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"

    id = models.CharField(primary_key=True, max_length=40, help_text="payoutId (pay_…).")
    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    agent_id = models.CharField(max_length=40)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Net amount (minor units): payable entries minus clawbacks.")
    status = models.CharField(max_length=10, choices=Status.choices)
    rejection_reason = models.TextField(
        blank=True, help_text="Why the ledger refused the payout.created event (entries taken, amount wrong …).")
    cutoff = models.DateTimeField(null=True, blank=True)
    created_event_id = models.CharField(max_length=40)
    created_position = models.BigIntegerField()
    created_at = models.DateTimeField(help_text="occurred_at of payout.created.")
    created_by = models.CharField(max_length=200, blank=True)
    confirmed_event_id = models.CharField(max_length=40, blank=True)
    confirmed_position = models.BigIntegerField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True, help_text="Entries count as paid from here.")
    confirmed_by = models.CharField(max_length=200, blank=True)
    reference = models.CharField(max_length=255, blank=True, help_text="e.g. the bank transfer id.")

    class Meta:
        ordering = ["-created_position", "-id"]
        indexes = [
            models.Index(fields=["workspace", "created_position", "id"], name="commissions_payout_ws_pos"),
            models.Index(fields=["workspace", "agent_id"], name="commissions_payout_ws_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {from_minor(self.amount, self.currency)} {self.currency} ({self.status})"


class PayoutLine(models.Model):
    """An entry covered by a payout; an entry is in at most one payout, ever."""

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="lines")
    workspace = projection_workspace(db_index=True)
    entry_id = models.CharField(max_length=40, unique=True)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.entry_id} in {self.payout_id}"
