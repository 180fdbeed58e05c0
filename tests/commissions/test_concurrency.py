"""Payouts under concurrency, on a real PostgreSQL: two operators paying one agent at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from commissions.models import LedgerEntry, Payout, PayoutLine
from commissions.services import payout_create
from ingestion import projections
from ingestion.errors import ConflictError
from ingestion.workspaces import CreatedWorkspace
from tests.factories import ProgramFactory, approved_enrollment

from .support import append


@pytest.mark.postgres
def test_concurrent_payouts_for_one_agent_never_cover_an_entry_twice(transactional_db: None,
                                                                      tenant: CreatedWorkspace) -> None:
    """Two threads, each with its own connection, create a payout for the same agent and currency at the
    same moment: one gets the payable entries, the other is told nothing is payable; no payout is
    rejected and every entry is in exactly one payout."""
    ws = tenant.workspace
    enrollment = approved_enrollment(program=ProgramFactory(workspace=ws, product=tenant.product), code="RACE")
    agent = enrollment.agent
    rounds = 3
    past = timezone.now() - timedelta(days=30)
    outcomes: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []
    for index in range(rounds):
        barrier = threading.Barrier(2, timeout=30)
        # Committed appends run the projections inline (the embedded default), as in production.
        email = f"race{index}@example.com"
        append(ws.id, "customer.created", {"email": email, "name": "R", "product_id": tenant.product.id,
                                           "referral_code": enrollment.referral_code}, at=past)
        append(ws.id, "payment.succeeded", {"payment_ref": f"pi_race_{index}", "email": email, "amount": 9900,
                                            "currency": "USD"}, at=past + timedelta(hours=1))
        projections.run_all()
        assert LedgerEntry.objects.filter(payment_ref=f"pi_race_{index}").count() == 1

        def worker(slot: list[str], barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                created = payout_create(workspace=ws, agent_id=agent.id, currency="USD", actor="user:race")
                slot.append(f"created:{len(created.entries)}")
            except ConflictError as exc:
                slot.append(exc.code)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                barrier.abort()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=(outcomes[index],)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        projections.run_all()
    assert [sorted(o) for o in outcomes] == [["created:1", "nothing_payable"]] * rounds
    assert sorted(Payout.objects.values_list("status", flat=True)) == ["created"] * rounds
    lines = list(PayoutLine.objects.values_list("entry_id", flat=True))
    assert len(lines) == len(set(lines)) == rounds
