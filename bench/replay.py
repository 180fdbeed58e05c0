"""Replay benchmark: rebuild every projection from a store of realistic events.

How to run (PostgreSQL on 127.0.0.1:5432)::

    .venv/bin/python -m bench.replay                     # 1,000,000 events
    .venv/bin/python -m bench.replay --quick             # 20,000 events, for development
    .venv/bin/python -m bench.replay --profile           # also print where the rebuild's time goes

What it does, in one run on one machine:

1. Creates a fresh database (``--db``, default ``refairn_bench_replay``) with production settings
   and a world: 3 workspaces with their own currencies, 3 programs each (percent and fixed
   referral commissions, recurring with and without a cap, support commissions), ``--agents``
   agents per workspace, enrolled and approved (``enrollment.approved`` events with the terms
   snapshot, some approved later in the timeline, a few removed).
2. Generates ``--events`` events over two years of business time: clicks on referral links,
   signups (most with a referral code or click id), first payments, monthly renewals,
   cancellations, refunds (full and partial), disputes (opened, won, lost) and support
   assignments, in the canonical shapes of the receivers (API, Stripe, link, operator sources).
3. Appends them with COPY in chunks of ``--chunk`` events and runs the projections after each
   chunk: the incremental state, as a live worker would build it. Snapshots the ledger (row count,
   per-currency sums, a digest of every entry's id, kind, amount and currency) and attribution.
4. Times a read-only pass: the runner's loop (a transaction per batch of events read with
   ``event_list_after``) without applying anything.
5. Times ``rebuild_projections`` (all projections: reset, then replay from position 0).
6. Prints events/s for both, the ratio, and whether the rebuilt ledger equals the incremental one.

Goal (issue #9): >= 15,000 events/s end to end and >= 50 % of the read-only pass; rebuilt ledger
== incremental ledger. COPY bypasses ``event_append``'s lock: this script is the only writer.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench import harness

COLUMNS = ("event_id", "workspace_id", "source", "source_event_id", "type", "occurred_at", "recorded_at",
           "data", "raw", "schema_version", "actor")
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730
# Per workspace: the currencies its customers pay in, and a price list per currency (minor units).
WORKSPACES = (
    ("Acme Analytics", "USD", {"USD": (1900, 4900, 9900, 29900), "EUR": (1800, 4500, 8900),
                               "GBP": (1500, 3900, 7900)}),
    ("Lagos Ledger", "NGN", {"NGN": (500000, 1500000, 4500000), "GHS": (25000, 90000), "KES": (150000, 450000),
                             "USD": (2900, 9900)}),
    ("Tokyo Tasks", "JPY", {"JPY": (980, 2980, 9800), "EUR": (900, 2900), "INR": (49900, 149900)}),
)
PROGRAMS = (
    {"name": "Partners", "referral_type": "percent", "referral_value": "20", "recurring_percent": "10",
     "recurring_duration_months": 12, "support_percent": "5", "hold_days": 14},
    {"name": "Affiliates", "referral_type": "percent", "referral_value": "30", "recurring_percent": "0",
     "recurring_duration_months": 0, "support_percent": "0", "hold_days": 30},
    {"name": "Resellers", "referral_type": "fixed", "referral_value": None, "recurring_percent": "15",
     "recurring_duration_months": None, "support_percent": "2.5", "hold_days": 7},
)
AGENTS_NAMES = ("Ada", "Bola", "Chen", "Dana", "Efe", "Femi", "Gita", "Hana", "Ivo", "Juno", "Kemi", "Lars")


@dataclass
class Code:
    workspace_id: str
    enrollment_id: str
    agent_id: str
    program_id: str
    product_id: str
    code: str
    approved_at: datetime


@dataclass
class Row:
    at: datetime
    workspace_id: str
    source: str
    source_event_id: str
    type: str
    data: dict[str, Any]
    actor: str = ""


# --- the world ----------------------------------------------------------------------------------

def build_world(rng: random.Random, agents_per_workspace: int) -> tuple[list[Code], list[Row], dict[str, Any]]:
    """Workspaces, products, programs, agents and approved enrollments (rows + their events)."""
    from agents.models import Agent, Enrollment, Program
    from agents.terms import program_terms
    from ingestion.models import Product
    from ingestion.workspaces import workspace_create

    codes: list[Code] = []
    events: list[Row] = []
    world: dict[str, Any] = {}
    for ws_index, (name, base, prices) in enumerate(WORKSPACES):
        created = workspace_create(name=name, base_currency=base, product_url=f"https://ws{ws_index}.example.com/")
        workspace = created.workspace
        products = [created.product, Product.objects.create(workspace=workspace, name=f"{name} Plus",
                                                            url=f"https://ws{ws_index}.example.com/plus")]
        programs = []
        for p_index, template in enumerate(PROGRAMS):
            fields = dict(template)
            if fields["referral_type"] == "fixed":
                fields["referral_value"] = "25" if base != "JPY" else "2500"
                fields["referral_currency"] = "USD" if base != "JPY" else "JPY"
            fields = {k: Decimal(v) if k.endswith(("_value", "_percent")) else v for k, v in fields.items()}
            program = Program.objects.create(workspace=workspace, product=products[p_index % len(products)],
                                             enrollment_mode="manual", **fields)
            programs.append(program)
        agents = Agent.objects.bulk_create([
            Agent(workspace=workspace, email=f"agent{i}@ws{ws_index}.example.com",
                  name=f"{AGENTS_NAMES[i % len(AGENTS_NAMES)]} {i}")
            for i in range(agents_per_workspace)
        ])
        enrollments = []
        for i, agent in enumerate(agents):
            chosen = [programs[i % len(programs)]] + ([programs[(i + 1) % len(programs)]] if i % 5 == 0 else [])
            for program in chosen:
                # Most agents are there from the start; a quarter join during the two years.
                approved_at = START + timedelta(days=0 if i % 4 else rng.uniform(0, SPAN_DAYS * 0.7))
                # The program's index, not its (random) id: two ids can end alike, two indexes cannot.
                code = f"W{ws_index}{AGENTS_NAMES[i % len(AGENTS_NAMES)].upper()}{i:04d}P{programs.index(program)}"
                enrollments.append(Enrollment(
                    workspace=workspace, agent=agent, program=program, status="approved", referral_code=code,
                    terms=program_terms(program), applied_at=approved_at, decided_at=approved_at))
        Enrollment.objects.bulk_create(enrollments)
        for enrollment in enrollments:
            agent = enrollment.agent
            program = enrollment.program
            data = {"enrollment_id": enrollment.id, "agent_id": agent.id, "agent_email": agent.email,
                    "program_id": program.id, "product_id": program.product_id,
                    "referral_code": enrollment.referral_code, "terms": enrollment.terms, "reason": ""}
            events.append(Row(enrollment.decided_at, workspace.id, "operator", f"enrollment:{enrollment.id}:approved",
                              "enrollment.approved", data, "user:bench"))
            codes.append(Code(workspace.id, enrollment.id, agent.id, program.id, program.product_id,
                              enrollment.referral_code, enrollment.decided_at))
        # A few removals late in the timeline: their later payments earn nothing.
        for enrollment in rng.sample(enrollments, max(1, len(enrollments) // 50)):
            removed_at = START + timedelta(days=rng.uniform(SPAN_DAYS * 0.5, SPAN_DAYS))
            data = {"enrollment_id": enrollment.id, "agent_id": enrollment.agent.id,
                    "agent_email": enrollment.agent.email, "program_id": enrollment.program.id,
                    "product_id": enrollment.program.product_id, "referral_code": enrollment.referral_code,
                    "terms": enrollment.terms, "reason": "left the program"}
            events.append(Row(removed_at, workspace.id, "operator", f"enrollment:{enrollment.id}:removed",
                              "enrollment.removed", data, "user:bench"))
        world[workspace.id] = {"prices": prices, "products": [p.id for p in products],
                               "agents": [a.id for a in agents]}
    return codes, events, world


# --- the events ---------------------------------------------------------------------------------

def customer_events(rng: random.Random, n: int, codes_by_ws: dict[str, list[Code]],
                    world: dict[str, Any]) -> Iterator[Row]:
    """One customer's life: clicks, signup, payments, renewals, refunds, disputes, cancellation."""
    ws = rng.choice(list(world))
    info = world[ws]
    signup = START + timedelta(days=rng.uniform(0, SPAN_DAYS - 1), seconds=rng.uniform(0, 86400))
    email = f"customer{n}@mail{n % 97}.example.com"
    customer_ref = f"user_{n}"
    product_id = rng.choice(info["products"])
    referred = rng.random() < 0.65
    code = None
    click_id = None
    if referred:
        eligible = [c for c in rng.sample(codes_by_ws[ws], 5) if c.approved_at <= signup]
        code = eligible[0] if eligible else None
    if code is not None:
        first_click = None
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            at = max(signup - timedelta(days=rng.uniform(0, 20), minutes=k), code.approved_at + timedelta(seconds=1))
            click_id = f"clk_{n}_{k}"
            first_click = first_click or click_id
            yield Row(at, ws, "link", click_id, "click.recorded", {
                "click_id": click_id, "referral_code": code.code,
                "landing_url": f"https://ws.example.com/pricing?ref={code.code}",
                "ip_hash": f"{(n * 2654435761) % 2**32:08x}{k:02d}", "user_agent": "Mozilla/5.0 (bench)",
                "first_click_id": first_click})
    customer = {"customer_ref": customer_ref, "email": email, "name": f"Customer {n}", "product_id": product_id}
    if code is not None:
        if rng.random() < 0.7:
            customer["referral_code"] = code.code.lower() if rng.random() < 0.1 else code.code
        else:
            customer["click_id"] = click_id
    yield Row(signup, ws, "api", f"customer:{customer_ref}", "customer.created", customer)
    if rng.random() < 0.08:
        yield Row(signup + timedelta(hours=1), ws, "api", f"support:{customer_ref}", "support.assigned",
                  {"customer_ref": customer_ref, "agent_id": rng.choice(info["agents"])})
    if rng.random() > 0.8:
        return   # a lead who never pays
    currency = rng.choice(list(info["prices"]))
    amount = rng.choice(info["prices"][currency])
    provider = "stripe" if rng.random() < 0.4 else "api"
    subscription = f"sub_{n}"
    months = min(int(rng.expovariate(1 / 8)) + 1, 30)
    end = START + timedelta(days=SPAN_DAYS)
    paid_at = signup + timedelta(days=rng.uniform(0, 5))
    for month in range(months):
        at = paid_at + timedelta(days=30 * month)
        if at > end:
            return
        payment_ref = f"in_{n}_{month}" if provider == "stripe" else f"pay_{n}_{month}"
        data = {"payment_ref": payment_ref, "email": email, "amount": amount, "currency": currency,
                "subscription_ref": subscription, "plan": "Pro", "product_id": product_id}
        if provider == "stripe":
            data.update(provider="stripe", provider_customer_id=f"cus_{n}")
            if month == 0:
                data["customer_ref"] = customer_ref
        else:
            data["customer_ref"] = customer_ref
        yield Row(at, ws, provider, f"evt_{payment_ref}" if provider == "stripe" else f"payment:{payment_ref}",
                  "payment.succeeded", data)
        roll = rng.random()
        if roll < 0.03:
            refund = amount if rng.random() < 0.6 else amount // 2
            yield Row(at + timedelta(days=rng.uniform(1, 20)), ws, "api", f"refund:re_{payment_ref}",
                      "payment.refunded", {"payment_ref": payment_ref, "refund_ref": f"re_{payment_ref}",
                                           "amount": refund, "currency": currency})
        elif roll < 0.034:
            opened = at + timedelta(days=rng.uniform(2, 30))
            base = {"payment_ref": payment_ref, "dispute_ref": f"dp_{payment_ref}", "amount": amount,
                    "currency": currency}
            yield Row(opened, ws, "api", f"dispute:dp_{payment_ref}:opened", "payment.disputed",
                      {**base, "outcome": None})
            outcome = rng.choice(("won", "lost"))
            yield Row(opened + timedelta(days=rng.uniform(10, 60)), ws, "api", f"dispute:dp_{payment_ref}:{outcome}",
                      "payment.disputed", {**base, "outcome": outcome})
    cancelled = paid_at + timedelta(days=30 * months - rng.uniform(0, 10))
    if cancelled < end:
        yield Row(cancelled, ws, "api", f"cancel:{subscription}", "subscription.cancelled",
                  {"subscription_ref": subscription, "customer_ref": customer_ref})


def generate(rng: random.Random, total: int, codes: list[Code], world: dict[str, Any],
             head: list[Row]) -> list[Row]:
    codes_by_ws: dict[str, list[Code]] = {}
    for code in codes:
        codes_by_ws.setdefault(code.workspace_id, []).append(code)
    rows = list(head)
    n = 0
    while len(rows) < total:
        n += 1
        rows.extend(customer_events(rng, n, codes_by_ws, world))
    # Store order follows business time, as events mostly arrive (ties keep generation order).
    rows.sort(key=lambda r: r.at)
    del rows[total:]
    return rows


def copy_rows(rows: list[Row], first_number: int) -> None:
    """Append ``rows`` with COPY (in store order), as fast as PostgreSQL takes them."""
    from django.db import connection

    with connection.cursor() as cursor:
        raw_conn = cursor.connection
        with raw_conn.cursor() as pg, pg.copy(f"COPY ingestion_event ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for offset, row in enumerate(rows):
                data = json.dumps(row.data, separators=(",", ":"))
                raw = None if row.source in ("operator", "link") else f'{{"body":{data}}}'
                copy.write_row((f"evt_r{first_number + offset:019d}", row.workspace_id, row.source,
                                row.source_event_id, row.type, row.at, row.at + timedelta(seconds=2), data, raw, 1,
                                row.actor))


# --- measuring ----------------------------------------------------------------------------------

def ledger_snapshot() -> dict[str, Any]:
    """What must be equal after a rebuild: ledger rows, per-currency sums, a digest of every entry."""
    from django.apps import apps
    from django.db import connection

    snapshot: dict[str, Any] = {}
    with connection.cursor() as cursor:
        try:
            table = apps.get_model("commissions", "LedgerEntry")._meta.db_table
        except LookupError:
            return {"ledger": "no ledger model"}
        cursor.execute(f"SELECT count(*) FROM {table}")
        snapshot["ledger rows"] = cursor.fetchone()[0]
        cursor.execute(f"SELECT currency, count(*), sum(amount) FROM {table} GROUP BY currency ORDER BY currency")
        snapshot["per currency (rows, sum)"] = {c: (n, int(s)) for c, n, s in cursor.fetchall()}
        cursor.execute(f"SELECT kind, count(*) FROM {table} GROUP BY kind ORDER BY kind")
        snapshot["per kind"] = dict(cursor.fetchall())
        cursor.execute(f"SELECT md5(coalesce(string_agg(id || ':' || kind || ':' || amount || ':' || currency || ':' "
                       f"|| agent_id, ',' ORDER BY id), '')) FROM {table}")
        snapshot["digest"] = cursor.fetchone()[0]
        try:
            attribution = apps.get_model("attribution", "PaymentAttribution")._meta.db_table
            cursor.execute(f"SELECT count(*) FROM {attribution}")
            snapshot["payment attributions"] = cursor.fetchone()[0]
        except LookupError:
            pass
    return snapshot


def read_only_pass(batch: int = 0, start: int = 0) -> int:
    """The runner's loop without applying: a transaction per batch, events read by position."""
    from django.conf import settings
    from django.db import transaction

    batch = batch or settings.REFAIRN_PROJECTION_BATCH_SIZE

    from ingestion.store import event_list_after

    position = start
    count = 0
    while True:
        with transaction.atomic():
            events = event_list_after(position, limit=batch)
            if not events:
                return count
            position = events[-1].position
            count += len(events)


def type_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT type, count(*) FROM ingestion_event GROUP BY type ORDER BY count(*) DESC")
        return dict(cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store (default 1,000,000)")
    parser.add_argument("--agents", type=int, default=400, help="agents per workspace (3 workspaces)")
    parser.add_argument("--chunk", type=int, default=0,
                        help="events appended between incremental projection runs (default events/50)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--db", default="refairn_bench_replay")
    parser.add_argument("--profile", action="store_true", help="profile the rebuild (cProfile) and print the top")
    parser.add_argument("--budget", type=float, default=3600,
                        help="stop appending (and skip the rebuild) when the run would exceed this many seconds")
    parser.add_argument("--quick", action="store_true", help="development run: 20,000 events, 50 agents")
    args = parser.parse_args()
    if args.quick:
        args.events, args.agents = 20_000, 50
    chunk = args.chunk or max(1000, args.events // 50)

    print("Refairn replay benchmark (bench/replay.py)")
    harness.print_machine()
    url = harness.fresh_database(args.db)
    harness.setup_django(harness.app_env(url, broker=False))
    from django.conf import settings

    from ingestion import projections

    print(f"projections: {', '.join(projections.registered())}; batch size {settings.REFAIRN_PROJECTION_BATCH_SIZE}")
    rng = random.Random(args.seed)

    t0 = time.perf_counter()
    codes, head, world = build_world(rng, args.agents)
    rows = generate(rng, args.events, codes, world, head)
    generated = time.perf_counter() - t0
    print(f"\ngenerated {len(rows):,} events ({len(codes):,} referral codes, {len(world)} workspaces) "
          f"in {generated:.1f} s")

    copy_seconds = 0.0
    apply_seconds = 0.0
    deadline = time.perf_counter() + args.budget
    appended = 0
    for start in range(0, len(rows), chunk):
        if time.perf_counter() > deadline:
            print(f"BUDGET: stopped appending after {appended:,} of {len(rows):,} events "
                  f"(--budget {args.budget:.0f} s); the figures below cover those")
            break
        appended = min(len(rows), start + chunk)
        t0 = time.perf_counter()
        copy_rows(rows[start:start + chunk], start)
        copy_seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        projections.run_all()
        apply_seconds += time.perf_counter() - t0
    total = appended
    del rows
    print(f"appended with COPY in {copy_seconds:.1f} s ({total / copy_seconds:,.0f} events/s)")
    print(f"incremental: projections run after every {chunk:,} appended events: {apply_seconds:.1f} s "
          f"({total / apply_seconds:,.0f} events/s)")
    for kind, count in type_counts().items():
        print(f"  {kind:<24} {count:>9,}")
    incremental = ledger_snapshot()

    t0 = time.perf_counter()
    read = read_only_pass()
    read_seconds = time.perf_counter() - t0
    read_rate = read / read_seconds

    estimate = apply_seconds  # a rebuild applies the same events the incremental runs did
    if time.perf_counter() + estimate > deadline + args.budget:
        print(f"\nSKIPPED the rebuild: at the incremental rate it would take ~{estimate:.0f} s")
        return
    profiler = cProfile.Profile() if args.profile else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    applied = projections.rebuild()
    if profiler:
        profiler.disable()
    rebuild_seconds = time.perf_counter() - t0
    rebuild_cpu = time.process_time() - cpu0
    rebuild_rate = total / rebuild_seconds
    rebuilt = ledger_snapshot()
    lag = projections.projection_lag()

    from django.conf import settings

    print(f"\nread-only pass (batches of {settings.REFAIRN_PROJECTION_BATCH_SIZE:,}, no apply): "
          f"{read:,} events in {read_seconds:.1f} s = "
          f"{read_rate:,.0f} events/s")
    print(f"rebuild_projections (all: {', '.join(f'{k} {v:,}' for k, v in applied.items())}): "
          f"{rebuild_seconds:.1f} s = {rebuild_rate:,.0f} events/s end to end")
    print(f"  of which this process's CPU: {rebuild_cpu:.1f} s (the rest: PostgreSQL's work and round trips)")
    print(f"ratio rebuild / read-only: {rebuild_rate / read_rate:.0%} "
          f"(the {len(applied)} projections go in turns and share each batch's read of the store)")
    print(f"lag after rebuild: {lag}")
    print("\nincremental vs rebuilt ledger:")
    for key in incremental:
        same = incremental[key] == rebuilt.get(key)
        print(f"  {key:<26} {'equal' if same else 'DIFFERENT'}: {incremental[key]}"
              + ("" if same else f" vs {rebuilt.get(key)}"))
    equal = incremental == rebuilt
    print("\ngoals (issue #9):")
    print(f"  >= 15,000 events/s end to end: {rebuild_rate:,.0f}: {harness.verdict(rebuild_rate >= 15000)}")
    print(f"  >= 50 % of the read-only pass: {rebuild_rate / read_rate:.0%}: "
          f"{harness.verdict(rebuild_rate >= 0.5 * read_rate)}")
    print(f"  rebuilt ledger == incremental (rows, per-currency sums, digest): {harness.verdict(equal)}")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(90)
        print("\nwhere the rebuild's time goes (cProfile; its overhead inflates Python-heavy parts):")
        print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
