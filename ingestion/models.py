"""Tenancy, credentials, the append-only event store, deliveries and projection checkpoints."""

from django.conf import settings
from django.db import models, router, transaction
from django.utils import timezone

from .ids import new_id


def _biz_id() -> str:
    return new_id("biz")


def _prod_id() -> str:
    return new_id("prod")


def _key_id() -> str:
    return new_id("key")


def _dlv_id() -> str:
    return new_id("dlv")


def _imp_id() -> str:
    return new_id("imp")


class Workspace(models.Model):
    """One business. Every other row in Refairn belongs to exactly one workspace."""

    id = models.CharField(primary_key=True, max_length=40, default=_biz_id, editable=False,
                          help_text="The public businessId (biz_…).")
    name = models.CharField(max_length=200)
    base_currency = models.CharField(max_length=3, default="USD",
                                     help_text="Currency assumed for CSV rows without a Currency column.")
    operators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="workspaces",
        help_text="Staff users who may see and act on this workspace in the console.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


def projection_workspace(*, db_index: bool = False) -> models.ForeignKey:
    """The workspace column of a projection table: a foreign key that PostgreSQL does not check.

    A projection writes only rows derived from stored events, whose workspace the store's own
    foreign key has already checked, and it writes hundreds of thousands of them in one batch.
    PostgreSQL checks a deferred foreign key row by row at commit: about 6 µs per row, a tenth of
    a backlog's drain (bench/lag.py). Django still joins on it and still refuses to delete a
    workspace that has projection rows (``PROTECT`` is enforced by the ORM).
    """
    return models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+", db_index=db_index,
                             db_constraint=False)


class Product(models.Model):
    class PricingModel(models.TextChoices):
        ONE_TIME = "one_time"
        SUBSCRIPTION_MONTHLY = "subscription_monthly"
        SUBSCRIPTION_ANNUAL = "subscription_annual"
        USAGE_BASED = "usage_based"

    id = models.CharField(primary_key=True, max_length=40, default=_prod_id, editable=False,
                          help_text="The public productId (prod_…).")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    url = models.URLField(blank=True, help_text="Where referral links redirect to.")
    pricing_model = models.CharField(max_length=32, choices=PricingModel.choices,
                                     default=PricingModel.SUBSCRIPTION_MONTHLY)
    category = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class ApiKey(models.Model):
    """A secret API key, stored only as its SHA-256; the secret is shown once, at creation."""

    id = models.CharField(primary_key=True, max_length=40, default=_key_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    live = models.BooleanField(default=True, help_text="rf_live_ keys when set, rf_test_ keys otherwise.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=24, editable=False, help_text="Prefix and last four characters.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} {self.hint}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove a stored event."""


class EventQuerySet(models.QuerySet):
    """Refuses bulk changes in Python too, so the ORM fails loudly before the trigger does.

    ``bulk_create`` takes the append lock, like ``event_append``, so rows inserted outside the
    store still become visible in position order (see ``ingestion.store``).
    """

    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("stored events are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("stored events are never deleted")

    def bulk_update(self, objs: object, fields: object, batch_size: int | None = None) -> int:
        raise AppendOnlyError("stored events are never updated")

    def bulk_create(self, objs: object, *args: object, **kwargs: object) -> list:  # type: ignore[override]
        from .store import lock_appends

        with transaction.atomic(using=self.db):
            lock_appends(self.db)
            return super().bulk_create(objs, *args, **kwargs)  # type: ignore[arg-type]


class Event(models.Model):
    """One fact, as accepted. Never updated, never deleted: the audit log of everything."""

    class Source(models.TextChoices):
        API = "api"
        CSV = "csv"
        STRIPE = "stripe"
        PAYSTACK = "paystack"
        FLUTTERWAVE = "flutterwave"
        PADDLE = "paddle"
        LEMONSQUEEZY = "lemonsqueezy"
        LINK = "link"
        OPERATOR = "operator"

    position = models.BigAutoField(primary_key=True, help_text="Global order; projectors read by it.")
    event_id = models.CharField(max_length=40, unique=True, editable=False, help_text="Public id (evt_…).")
    # No index of its own: the unique key and both composite indexes lead with the workspace, and
    # every append pays for each index it maintains.
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+", db_index=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_event_id = models.CharField(
        max_length=255, help_text="Provider event id, caller eventId, natural key or CSV row key.")
    type = models.CharField(max_length=64, help_text="Canonical type, e.g. payment.succeeded.")
    occurred_at = models.DateTimeField(help_text="When it happened in the business's world.")
    recorded_at = models.DateTimeField(help_text="When the store accepted it.")
    data = models.JSONField(help_text="Canonical payload (snake_case); the only thing projectors read.")
    raw = models.JSONField(null=True, blank=True, help_text="The input as received, for audit.")
    schema_version = models.PositiveSmallIntegerField(default=1)
    actor = models.CharField(max_length=200, blank=True, help_text="Who did it (operator events).")

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "source_event_id"],
                                    name="ingestion_event_source_uniq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "type", "position"], name="ingestion_event_ws_type_pos"),
            models.Index(fields=["workspace", "position"], name="ingestion_event_ws_pos"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.type} ({self.event_id})"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AppendOnlyError("stored events are never updated")
        from .store import lock_appends

        # Inserted outside event_append (fixtures, scripts): still take the append lock, so
        # this row cannot become visible after a higher position (see ingestion.store).
        using = str(kwargs.get("using") or router.db_for_write(type(self), instance=self))
        with transaction.atomic(using=using):
            lock_appends(using)
            super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        raise AppendOnlyError("stored events are never deleted")


class ProjectionCheckpoint(models.Model):
    """How far a projection has applied the store; moved in the same transaction as its batch."""

    name = models.CharField(primary_key=True, max_length=64)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class ProviderSecret(models.Model):
    """A webhook signing secret for one provider of one workspace; several allow rotation."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="provider_secrets")
    provider = models.CharField(max_length=20)
    secret = models.CharField(max_length=500, help_text="Never shown after entry, never logged.")
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workspace", "provider", "-created_at"]

    def __str__(self) -> str:
        return f"{self.provider} secret …{self.secret[-4:] if len(self.secret) > 8 else ''} ({self.workspace_id})"


class Delivery(models.Model):
    """One webhook request as received, with its verdict; recorded whatever happens next."""

    class Verdict(models.TextChoices):
        RECEIVED = "received"
        ACCEPTED = "accepted"
        DUPLICATE = "duplicate"
        IGNORED = "ignored"
        REJECTED = "rejected"
        ERROR = "error"

    id = models.CharField(primary_key=True, max_length=40, default=_dlv_id, editable=False)
    # Covered by ``ingestion_delivery_ws_v``, which leads with the workspace (one index less per webhook).
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    provider = models.CharField(max_length=20)
    received_at = models.DateTimeField(default=timezone.now)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, help_text="The headers that matter for verification.")
    body = models.TextField(blank=True, help_text="Raw body (bounded in size).")
    body_truncated = models.BooleanField(default=False)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.RECEIVED)
    error = models.TextField(blank=True)
    event_ids = models.JSONField(default=list, blank=True, help_text="Events appended or matched.")

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["workspace", "verdict", "received_at"], name="ingestion_delivery_ws_v")]

    def __str__(self) -> str:
        return f"{self.provider} {self.id} {self.verdict}"


class ImportJob(models.Model):
    """One CSV import (or dry run): its progress, counts and row errors."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=_imp_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    filename = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to="imports/", blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    events_appended = models.PositiveIntegerField(default=0)
    events_duplicate = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, column, reason}]")
    extra_columns = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename or self.id} ({self.status})"
