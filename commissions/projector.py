"""The ledger projector (issue #5 fills it in)."""

from ingestion.projections import Projector


class LedgerProjector(Projector):
    name = "ledger"
    depends_on = ("attribution",)

    def apply(self, event: object) -> None:
        return None

    def reset(self) -> None:
        return None
