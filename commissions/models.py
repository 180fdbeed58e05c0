"""The commission ledger and payouts, built only by ``commissions.projector``."""
