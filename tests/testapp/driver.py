"""A writer process for fault tests: reads JSON commands on stdin, answers one JSON line each.

    {"op": "append", "workspace": "biz_…", "prefix": "p", "count": 50, "hold": 0.003, "spacing": 0,
     "payment": {"emails": [...], "currency": "USD"}}   (payment: optional, else test.event)
        appends ``count`` events, each in its own transaction, sleeping a random time up to
        ``hold`` before and after the append INSIDE the transaction; answers
        {"results": [[source_event_id, event_id, position, created, seconds], …]}
    {"op": "publish"}   times one projection wake-up publish: {"seconds": s}
    {"op": "quit"}

Run with ``--no-wakeups`` when the test itself tails the store (appends then schedule nothing).
A separate OS process per writer gives real concurrency (no shared GIL, own connection).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.worker_settings")
    import django

    django.setup()
    from django.db import transaction

    from ingestion import projections
    from ingestion.store import NewEvent, event_append

    if "--no-wakeups" in sys.argv:
        projections.schedule_run = lambda: None
    rng = random.Random(os.getpid())
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "quit":
            return
        if op == "publish":
            started = time.monotonic()
            projections._publish_wake(0)
            print(json.dumps({"seconds": time.monotonic() - started}), flush=True)
            continue
        results = []
        hold = float(command.get("hold", 0))
        for i in range(int(command["count"])):
            key = f"{command['prefix']}-{i}"
            payment = command.get("payment")
            if payment:  # a realistic payment by one of the given (attributed) customers
                emails = payment["emails"]
                type_, data = "payment.succeeded", {
                    "payment_ref": key, "email": emails[i % len(emails)], "amount": 1000 + i,
                    "currency": payment.get("currency", "USD")}
            else:
                type_, data = "test.event", {"amount": i, "key": key}
            # Payments happen "now", after the signups and enrollments the test made before.
            occurred_at = datetime.now(UTC) if payment else datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
            new = NewEvent(workspace_id=command["workspace"], source="api", source_event_id=key, type=type_,
                           occurred_at=occurred_at, data=data)
            started = time.monotonic()
            try:
                with transaction.atomic():
                    if hold:
                        time.sleep(rng.uniform(0, hold))
                    appended = event_append(new)
                    if hold:
                        time.sleep(rng.uniform(0, hold))
                results.append([key, appended.event_id, appended.position, appended.created,
                                time.monotonic() - started])
            except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
                results.append([key, None, None, f"{type(exc).__name__}: {exc}", time.monotonic() - started])
            if command.get("spacing"):
                time.sleep(float(command["spacing"]))
        print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
