"""Rows written by the test projectors: one per applied event, no uniqueness on purpose.

Without a unique constraint a double application shows up as two rows instead of an error, so
tests can count how often each event was applied.
"""

from django.db import models


class ProjectedEvent(models.Model):
    projector = models.CharField(max_length=64)
    position = models.BigIntegerField()
    event_id = models.CharField(max_length=40)
    workspace_id = models.CharField(max_length=40)
    type = models.CharField(max_length=64)
    amount = models.BigIntegerField(default=0)
    # For the dependent projector: did its dependency already hold this event when it ran?
    dependency_seen = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["projector", "position"], name="testapp_proj_pos")]

    def __str__(self) -> str:
        return f"{self.projector} #{self.position}"
