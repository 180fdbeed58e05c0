"""Console figures from attribution (filled in once the attribution models land)."""


def unattributed_payments(workspace_ids: list[str] | None) -> int:
    return 0
