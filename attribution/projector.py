"""The attribution projector (issue #3 fills it in)."""

from ingestion.projections import Projector


class AttributionProjector(Projector):
    name = "attribution"

    def apply(self, event: object) -> None:
        return None

    def reset(self) -> None:
        from .models import PaymentAttribution

        PaymentAttribution.objects.all().delete()
