"""Attribution state, built only by ``attribution.projector`` from the event store.

Every table here is a projection: ``rebuild_projections attribution`` deletes and replays it, and
nothing else writes it. What each model means:

- ``ReferralCode``: a referral code as the store knows it, from ``enrollment.*`` events only
  (status, the enrollment/agent/program it belongs to, and the terms snapshot). The projector
  decides with these rows, never with the ``agents`` tables, so a rebuild decides the same.
- ``Click``: one ``click.recorded`` event (a visit through ``/r/<code>``), with the visitor's first
  click resolved (``first_click_id``/``first_click_at``): the attribution window starts there.
- ``Customer``: one customer of the business (``cus_…``): status lead/customer/cancelled, the agent
  it is attributed to, and WHY (``attributed_via`` and the event ids of the click, the signup and
  the deciding event) or why not (``unattributed_reason``).
- ``ProviderCustomerLink`` / ``SubscriptionLink``: a provider's customer id or a subscription id
  learned for a customer, so later payments and cancellations find it.
- ``PaymentRecord``: every distinct payment (by ``payment_ref``) seen, attributed or not; the
  operator's "unattributed payments" figure, and the parked payments a late signup claims. Its
  ``sequence`` is the payment's number among its customer's payments in BUSINESS time
  (``occurred_at``, then ``payment_ref``), kept up to date whatever order the payments arrive in;
  ``alias_ref`` is the other ref the payment was reported under: the provider's/caller's own id
  of a natural-key payment (a CSV row) reported again with that id, or the natural key of a
  payment first reported with its own id and then by a CSV row or the API without ``paymentId``.
  Refunds and disputes naming the alias find this payment.
- ``AttributionRefusal``: an attribution attempt that was refused (self-referral, unknown code,
  inactive enrollment, window expired, refused reassignment, unusable event), for the operator.
- ``PaymentAttribution``: THE contract with the commission ledger: one immutable row per
  attributed payment, tagged with the position of the event that decided it, so the ledger can be
  rebuilt on its own and still see exactly what attribution knew at each point of the store.
"""

from django.db import models

from ingestion.models import projection_workspace


class ReferralCode(models.Model):
    """A referral code and its enrollment, as the ``enrollment.*`` events describe it."""

    class Status(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        REMOVED = "removed"

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    code = models.CharField(max_length=32, help_text="Upper-case; unique in the workspace.")
    enrollment_id = models.CharField(max_length=40)
    agent_id = models.CharField(max_length=40)
    agent_email = models.CharField(max_length=254, blank=True, help_text="Normalised; refuses self-referral.")
    program_id = models.CharField(max_length=40)
    product_id = models.CharField(max_length=40, blank=True)
    terms = models.JSONField(help_text="The terms snapshot carried by enrollment.approved.")
    status = models.CharField(max_length=10, choices=Status.choices)
    approved_event_id = models.CharField(max_length=40, blank=True)
    approved_position = models.BigIntegerField(null=True, blank=True)
    decided_event_id = models.CharField(max_length=40, help_text="The latest enrollment.* event.")
    decided_position = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "code"], name="attribution_refcode_ws_code_uniq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "agent_id"], name="attribution_refcode_agent"),
            models.Index(fields=["workspace", "enrollment_id"], name="attribution_refcode_enr"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"


class Click(models.Model):
    """A visit through a referral link (one ``click.recorded`` event)."""

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    click_id = models.CharField(max_length=40, help_text="clk_…, also in the refairn_click cookie.")
    event_id = models.CharField(max_length=40)
    position = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    referral_code = models.CharField(max_length=32)
    agent_id = models.CharField(max_length=40, blank=True, help_text="The code's agent when clicked, if known.")
    enrollment_id = models.CharField(max_length=40, blank=True)
    first_click_id = models.CharField(
        max_length=40, help_text="The visitor's earliest known click (itself for a first visit).")
    first_click_at = models.DateTimeField(help_text="When the first click happened: the window starts here.")
    landing_url = models.TextField(blank=True)
    referrer = models.TextField(blank=True)
    ip_hash = models.CharField(max_length=64, blank=True, help_text="Salted SHA-256 of the IP; never the IP.")
    user_agent = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "click_id"], name="attribution_click_ws_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "agent_id", "occurred_at"], name="attribution_click_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.click_id} {self.referral_code}"


class Customer(models.Model):
    """A customer of the business, and to which agent (and why) it is attributed."""

    class Status(models.TextChoices):
        LEAD = "lead"
        CUSTOMER = "customer"
        CANCELLED = "cancelled"

    class Via(models.TextChoices):
        CLICK = "click", "referral link click"
        CODE = "code", "code given at signup"
        PAYMENT_METADATA = "payment_metadata", "code in payment metadata"
        REASSIGNMENT = "reassignment", "operator reassignment"

    class Unattributed(models.TextChoices):
        NO_REFERRAL = "no_referral", "no code or click"
        UNKNOWN_CODE = "unknown_code", "unknown referral code"
        UNKNOWN_CLICK = "unknown_click", "unknown click id"
        ENROLLMENT_NOT_ACTIVE = "enrollment_not_active", "enrollment not approved"
        WINDOW_EXPIRED = "window_expired", "attribution window expired"
        SELF_REFERRAL = "self_referral", "self-referral refused"
        PRODUCT_MISMATCH = "product_mismatch", "code of another product"

    id = models.CharField(primary_key=True, max_length=40, help_text="cus_…, derived from its first identifier.")
    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    customer_ref = models.CharField(max_length=255, blank=True, help_text="The business's own customer id.")
    email = models.CharField(max_length=254, blank=True, help_text="Normalised (trimmed, lower-cased).")
    name = models.CharField(max_length=255, blank=True)
    product_id = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEAD)
    # Attribution: who, and why.
    agent_id = models.CharField(max_length=40, blank=True, help_text="Blank while unattributed.")
    enrollment_id = models.CharField(max_length=40, blank=True)
    program_id = models.CharField(max_length=40, blank=True)
    referral_code = models.CharField(max_length=32, blank=True, help_text="The code credited.")
    attributed_via = models.CharField(max_length=20, choices=Via.choices, blank=True)
    attributed_event_id = models.CharField(
        max_length=40, blank=True, help_text="The event that decided the attribution (signup, payment, reassignment).")
    attributed_position = models.BigIntegerField(null=True, blank=True)
    attributed_at = models.DateTimeField(null=True, blank=True)
    click_id = models.CharField(max_length=40, blank=True, help_text="The visitor's first click, when credited.")
    click_event_id = models.CharField(max_length=40, blank=True, help_text="The click.recorded event credited.")
    signup_event_id = models.CharField(max_length=40, blank=True, help_text="The customer.created event.")
    unattributed_reason = models.CharField(max_length=24, choices=Unattributed.choices, blank=True)
    attribution_detail = models.TextField(blank=True, help_text="Why, in words, for the operator.")
    # Lifecycle.
    first_payment_at = models.DateTimeField(null=True, blank=True)
    first_payment_event_id = models.CharField(max_length=40, blank=True)
    last_payment_at = models.DateTimeField(
        null=True, blank=True, help_text="The latest payment (business time): a later one needs no re-sequencing.")
    payments_count = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_event_id = models.CharField(max_length=40, blank=True)
    # Support assignment (current).
    support_agent_id = models.CharField(max_length=40, blank=True)
    support_enrollment_id = models.CharField(max_length=40, blank=True)
    support_terms = models.JSONField(null=True, blank=True)
    support_event_id = models.CharField(max_length=40, blank=True, help_text="The support.assigned event.")
    created_event_id = models.CharField(max_length=40, help_text="The first event that named this customer.")
    created_position = models.BigIntegerField(help_text="Its position: the stable order of customers.")
    created_at = models.DateTimeField(help_text="That event's occurred_at.")
    updated_position = models.BigIntegerField(help_text="The last event that changed this row.")

    class Meta:
        ordering = ["created_position"]
        indexes = [
            models.Index(fields=["workspace", "created_position"], name="attribution_cus_ws_pos"),
            models.Index(fields=["workspace", "email"], name="attribution_cus_email"),
            models.Index(fields=["workspace", "customer_ref"], name="attribution_cus_ref"),
            models.Index(fields=["workspace", "agent_id", "created_position"], name="attribution_cus_agent"),
            models.Index(fields=["workspace", "unattributed_reason"], name="attribution_cus_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.email or self.customer_ref or self.id} ({self.status})"


class ProviderCustomerLink(models.Model):
    """A provider's customer id learned for a customer (matching step two for payments)."""

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    provider = models.CharField(max_length=20)
    provider_customer_id = models.CharField(max_length=255)
    customer_id = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40, help_text="The event it was learned from.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "provider", "provider_customer_id"],
                                    name="attribution_pcl_uniq"),
        ]
        indexes = [models.Index(fields=["customer_id"], name="attribution_pcl_cus")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_customer_id} → {self.customer_id}"


class SubscriptionLink(models.Model):
    """A subscription id learned from a payment, so its cancellation finds the customer."""

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    subscription_ref = models.CharField(max_length=255)
    customer_id = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "subscription_ref"], name="attribution_sub_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_ref} → {self.customer_id}"


class PaymentRecord(models.Model):
    """Every distinct payment seen (first report of a ``payment_ref``), attributed or not."""

    class MatchedBy(models.TextChoices):
        CUSTOMER_REF = "customer_ref"
        PROVIDER_CUSTOMER = "provider_customer"
        EMAIL = "email"
        NEW_CUSTOMER = "new_customer", "new customer"
        NONE = "none", "no identifier"

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    payment_ref = models.CharField(max_length=255)
    event_id = models.CharField(max_length=40)
    position = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    customer_id = models.CharField(max_length=40, blank=True)
    matched_by = models.CharField(max_length=20, choices=MatchedBy.choices)
    attributed = models.BooleanField(default=False, help_text="A PaymentAttribution row exists for it.")
    agent_id = models.CharField(max_length=40, blank=True)
    decided_position = models.BigIntegerField(null=True, blank=True)
    customer_cancelled = models.BooleanField(default=False, help_text="The customer had cancelled when it arrived.")
    support_agent_id = models.CharField(max_length=40, blank=True)
    support_enrollment_id = models.CharField(max_length=40, blank=True)
    support_terms = models.JSONField(null=True, blank=True)
    support_event_id = models.CharField(max_length=40, blank=True)
    duplicates = models.PositiveIntegerField(
        default=0, help_text="Later reports of the same payment (same payment_ref, or its alias).")
    sequence = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Its number among the customer's payments by business time (occurred_at, then payment_ref).")
    alias_ref = models.CharField(
        max_length=255, blank=True,
        help_text="The other ref this payment was reported under: the provider's or caller's id of a "
                  "natural-key payment, or the natural key of a payment first reported with its own id.")
    alias_event_id = models.CharField(max_length=40, blank=True, help_text="The event that reported the alias.")
    alias_position = models.BigIntegerField(
        null=True, blank=True, help_text="Its position: the ledger follows the alias only for later events.")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "payment_ref"], name="attribution_payrec_ref_uniq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "attributed", "position"], name="attribution_payrec_attr"),
            models.Index(fields=["customer_id"], name="attribution_payrec_cus"),
            models.Index(fields=["workspace", "alias_ref"], name="attribution_payrec_alias"),
            # The ledger asks which aliases each batch's positions made; few payments have one.
            models.Index(fields=["alias_position"], name="attribution_payrec_alias_pos",
                         condition=models.Q(alias_position__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.payment_ref} ({'attributed' if self.attributed else 'unattributed'})"


class AttributionRefusal(models.Model):
    """An attribution that was refused or could not be made, kept for the operator."""

    class Kind(models.TextChoices):
        SELF_REFERRAL = "self_referral", "self-referral"
        UNKNOWN_CODE = "unknown_code", "unknown code"
        UNKNOWN_CLICK = "unknown_click", "unknown click"
        ENROLLMENT_NOT_ACTIVE = "enrollment_not_active", "enrollment not approved"
        WINDOW_EXPIRED = "window_expired", "window expired"
        PRODUCT_MISMATCH = "product_mismatch", "code of another product"
        REASSIGNMENT_REFUSED = "reassignment_refused", "reassignment refused"
        SUPPORT_REFUSED = "support_refused", "support assignment refused"
        INVALID_EVENT = "invalid_event", "unusable event"

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
    event_id = models.CharField(max_length=40)
    position = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=24, choices=Kind.choices)
    customer_id = models.CharField(max_length=40, blank=True)
    referral_code = models.CharField(max_length=64, blank=True)
    agent_id = models.CharField(max_length=40, blank=True)
    detail = models.TextField()

    class Meta:
        ordering = ["-position"]
        indexes = [models.Index(fields=["workspace", "kind", "position"], name="attribution_refusal_kind")]

    def __str__(self) -> str:
        return f"{self.kind} at #{self.position}"


class PaymentAttribution(models.Model):
    """The decision that a payment belongs to an agent (written once, never changed)."""

    # No index of its own: an index of this table leads with it, and each index costs every write.
    workspace = projection_workspace()
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
    sequence = models.PositiveIntegerField(help_text=(
        "Decided order: 1 for the customer's first payment decided (it earns the referral), 2 for the next…; "
        "kept as decided, so the ledger never changes. PaymentRecord.sequence is the business-time order."))
    first_payment_at = models.DateTimeField(
        help_text="The customer's earliest payment known when decided; the recurring cap counts from it.")
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
