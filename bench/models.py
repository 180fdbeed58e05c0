"""The reference table: a copy of the event store's table (same columns, indexes and FK).

Unmanaged: ``bench.harness.create_reference_table`` creates ``bench_event`` with
``CREATE TABLE … (LIKE ingestion_event INCLUDING ALL)``, so the references write rows exactly as
wide and as indexed as the store's without touching the store itself.
"""

from django.db import models

from ingestion.models import Workspace


class NaiveEvent(models.Model):
    position = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=40, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16)
    source_event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    data = models.JSONField()
    raw = models.JSONField(null=True, blank=True)
    schema_version = models.PositiveSmallIntegerField(default=1)
    actor = models.CharField(max_length=200, blank=True)

    class Meta:
        managed = False
        db_table = "bench_event"

    def __str__(self) -> str:
        return f"#{self.position} {self.type}"
