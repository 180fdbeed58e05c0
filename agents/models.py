"""Programs (current terms), agents, and enrollments (terms snapshotted at approval)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from ingestion.ids import new_id
from ingestion.models import Product, Workspace


def _prog_id() -> str:
    return new_id("prog")


def _agt_id() -> str:
    return new_id("agt")


def _enr_id() -> str:
    return new_id("enr")


class Program(models.Model):
    """A partner program of one product; its terms are the defaults for future enrollments."""

    class ReferralType(models.TextChoices):
        PERCENT = "percent"
        FIXED = "fixed"

    class PayoutFrequency(models.TextChoices):
        WEEKLY = "weekly"
        BIWEEKLY = "biweekly"
        MONTHLY = "monthly"

    class ConflictMode(models.TextChoices):
        OPEN = "open"
        DISCLOSED = "disclosed"
        CATEGORY_RESTRICTED = "category_restricted"
        EXCLUSIVE = "exclusive"

    class EnrollmentMode(models.TextChoices):
        MANUAL = "manual"
        OPEN = "open"

    id = models.CharField(primary_key=True, max_length=40, default=_prog_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="programs")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="programs")
    name = models.CharField(max_length=200)
    referral_type = models.CharField(max_length=10, choices=ReferralType.choices, default=ReferralType.PERCENT)
    referral_value = models.DecimalField(
        max_digits=18, decimal_places=6, default=Decimal("20"),
        help_text="Percent of the first payment, or a fixed amount in major units of referral_currency.")
    referral_currency = models.CharField(max_length=3, blank=True, help_text="For a fixed referral commission.")
    recurring_percent = models.DecimalField(max_digits=9, decimal_places=4, default=Decimal("0"))
    recurring_duration_months = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cap in months from the first payment; empty = no cap, 0 = none.")
    support_percent = models.DecimalField(max_digits=9, decimal_places=4, default=Decimal("0"))
    attribution_window_days = models.PositiveIntegerField(default=90)
    hold_days = models.PositiveIntegerField(default=14)
    payout_frequency = models.CharField(max_length=10, choices=PayoutFrequency.choices,
                                        default=PayoutFrequency.MONTHLY)
    payout_threshold = models.JSONField(default=dict, blank=True,
                                        help_text='Per currency, in minor units, e.g. {"USD": 5000}.')
    conflict_mode = models.CharField(max_length=24, choices=ConflictMode.choices, default=ConflictMode.DISCLOSED)
    enrollment_mode = models.CharField(max_length=10, choices=EnrollmentMode.choices,
                                       default=EnrollmentMode.MANUAL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Agent(models.Model):
    """A partner who refers customers; may log in to the agent dashboard through ``user``."""

    id = models.CharField(primary_key=True, max_length=40, default=_agt_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="agents")
    email = models.EmailField(help_text="Normalised (trimmed, lower-cased); used to refuse self-referral.")
    name = models.CharField(max_length=200)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="agent", help_text="Login for the agent dashboard.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="agents_agent_workspace_email_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Enrollment(models.Model):
    """An agent in a program: applied → approved | rejected, later removed."""

    class Status(models.TextChoices):
        APPLIED = "applied"
        APPROVED = "approved"
        REJECTED = "rejected"
        REMOVED = "removed"

    id = models.CharField(primary_key=True, max_length=40, default=_enr_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="enrollments")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="enrollments")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="enrollments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPLIED)
    referral_code = models.CharField(max_length=32, null=True, blank=True,
                                     help_text="Upper-case; unique in the workspace; kept after removal.")
    terms = models.JSONField(null=True, blank=True, help_text="The program's terms when approved.")
    reason = models.TextField(blank=True, help_text="Reason given with the latest decision.")
    applied_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-applied_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "program"], name="agents_enrollment_agent_program_uniq"),
            models.UniqueConstraint(fields=["workspace", "referral_code"], name="agents_enrollment_code_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} in {self.program} ({self.status})"
