"""Projection lag benchmark: from a 200 answer to the ledger entry, and a backlog's drain.

How to run (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379)::

    .venv/bin/python -m bench.lag                               # 30 s at 200 events/s, 100,000-event backlog
    .venv/bin/python -m bench.lag --quick                       # a few seconds, for development

What it does, in one run on one machine, with the production shape: gunicorn (as in
``bench/ingest.py``), a real Celery worker (prefork, concurrency 1) and Celery beat (catch-up
every 2 s), on Redis db 8, PostgreSQL with durable commits:

1. Fresh database (``--db``, default ``refairn_bench_lag``), a workspace, a program (20 %
   referral, 10 % recurring without a cap: every payment of a referred customer earns an entry),
   ``--agents`` approved agents (through ``agents.services``, so ``enrollment.approved`` events
   carry their terms) and ``--customers`` signups with their referral codes (appended through
   ``event_append_many``), projected before anything is measured.
2. Steady load: API ``payment-succeeded`` events for those attributed customers at ``--rate``
   per second (open loop: request i is sent at start + i/rate by a pool of client threads) for
   ``--seconds``. A poller reads the ledger's checkpoint every 10 ms; an event's lag is the time
   from its 200 answer to the first poll that sees the ledger checkpoint at or past its position.
   At the end the ledger is checked to hold an entry for every accepted payment.
3. Backlog: the worker and beat are stopped, ``--backlog`` events (payments of attributed
   customers, new referred signups, clicks) are appended through ``event_append_many`` in batches
   of 1,000, then the worker is started again; printed: the time until every projection's
   checkpoint reaches the head, from the worker's start and from its first applied batch
   (projection time), and the task run times the worker logged.

Goals (issue #9): p99 lag <= 2 s at 200 events/s; the 100,000-event backlog drains in <= 10 s
of projection time. All traffic goes to 127.0.0.1; every wait is bounded (``--drain-timeout``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench import harness
from bench.replay import read_only_pass


@dataclass
class World:
    business_id: str
    product_id: str
    api_key: str
    customers: list[str]
    codes: list[str]


@dataclass
class Answered:
    payment_ref: str
    position: int
    answered: float
    lag: float | None = None


@dataclass
class LoadState:
    answered: list[Answered] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    late: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_world(agents: int, customers: int) -> World:
    from agents.models import Program
    from agents.services import agent_create, enrollment_apply, program_create
    from ingestion.store import NewEvent, event_append_many
    from ingestion.workspaces import workspace_create

    created = workspace_create(name="Lag Bench", base_currency="USD", product_url="https://lag.example.com/")
    workspace, product = created.workspace, created.product
    program = program_create(workspace=workspace, product=product, name="Partners", referral_type="percent",
                             referral_value=20, recurring_percent=10, recurring_duration_months=None,
                             hold_days=14, enrollment_mode=Program.EnrollmentMode.OPEN)
    codes = []
    for i in range(agents):
        agent = agent_create(workspace=workspace, email=f"agent{i}@lag.example.com", name=f"Agent {i}")
        codes.append(enrollment_apply(agent=agent, program=program, actor="user:bench").referral_code)
    refs = [f"user_{i}" for i in range(customers)]
    start = datetime.now(UTC) - timedelta(days=1)
    news = [NewEvent(workspace_id=workspace.id, source="api", source_event_id=f"customer:{ref}",
                     type="customer.created", occurred_at=start,
                     data={"customer_ref": ref, "email": f"{ref}@mail.example.com", "name": ref,
                           "product_id": product.id, "referral_code": codes[i % len(codes)]})
            for i, ref in enumerate(refs)]
    for offset in range(0, len(news), 1000):
        event_append_many(news[offset:offset + 1000])
    return World(workspace.id, product.id, created.api_key.secret, refs, codes)


# --- reading the projections' progress -----------------------------------------------------------

def checkpoints(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT name, position FROM ingestion_projectioncheckpoint").fetchall()
    return dict(rows)


def head(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(max(position), 0) FROM ingestion_event").fetchone()[0]


def wait_caught_up(dsn: str, names: list[str], timeout: float) -> tuple[bool, float | None, float]:
    """Wait until every projection's checkpoint reaches the head.

    Returns (caught up, seconds from now until the first checkpoint moved, seconds until caught up).
    """
    start = time.monotonic()
    first_move: float | None = None
    with psycopg.connect(dsn, autocommit=True) as conn:
        target = head(conn)
        initial = checkpoints(conn)
        while time.monotonic() - start < timeout:
            current = checkpoints(conn)
            if first_move is None and any(current.get(n, 0) != initial.get(n, 0) for n in names):
                first_move = time.monotonic() - start
            if all(current.get(n, 0) >= target for n in names):
                return True, first_move, time.monotonic() - start
            time.sleep(0.01)
    return False, first_move, time.monotonic() - start


# --- the steady load ----------------------------------------------------------------------------

def steady_load(world: World, port: int, rate: float, seconds: float, threads: int, state: LoadState) -> None:
    """Open loop: request i leaves at t0 + i/rate; a pool of threads keeps the schedule."""
    total = int(rate * seconds)
    counter = iter(range(total))
    counter_lock = threading.Lock()
    t0 = time.monotonic() + 0.5

    def worker() -> None:
        conn = http.client.HTTPConnection(harness.HOST, port, timeout=10)
        while True:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                return
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                with state.lock:
                    state.late.append(-delay)
            ref = f"pay_lag_{i:07d}"
            body = json.dumps({
                "businessId": world.business_id, "productId": world.product_id, "paymentId": ref,
                "customerId": world.customers[i % len(world.customers)], "amount": "49.00", "currency": "USD",
            })
            sent = time.monotonic()
            try:
                conn.request("POST", "/api/events/payment-succeeded", body=body, headers={
                    "Authorization": f"Bearer {world.api_key}", "Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                answered = time.monotonic()
                if response.status == 200:
                    position = json.loads(payload)["position"]
                    with state.lock:
                        state.answered.append(Answered(ref, position, answered))
                        state.latencies.append(answered - sent)
                else:
                    with state.lock:
                        state.errors[str(response.status)] = state.errors.get(str(response.status), 0) + 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with state.lock:
                    state.errors[type(exc).__name__] = state.errors.get(type(exc).__name__, 0) + 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 60)


def poll_lag(dsn: str, state: LoadState, stop: threading.Event) -> None:
    """Every 10 ms: the ledger checkpoint; every answered event at or below it gets its lag."""
    pending: list[Answered] = []
    seen = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            with state.lock:
                pending.extend(state.answered[seen:])
                seen = len(state.answered)
            position = checkpoints(conn).get("ledger", 0)
            now = time.monotonic()
            still = []
            for item in pending:
                if item.position <= position:
                    item.lag = now - item.answered
                else:
                    still.append(item)
            pending = still
            if stop.is_set() and not pending:
                with state.lock:
                    if seen == len(state.answered):
                        return
            time.sleep(0.01)


# --- the backlog --------------------------------------------------------------------------------

def append_backlog(world: World, count: int) -> float:
    """Append ``count`` events (payments 70 %, referred signups 20 %, clicks 10 %) in batches of 1,000."""
    from ingestion.store import NewEvent, event_append_many

    now = datetime.now(UTC)
    news: list[NewEvent] = []
    started = time.perf_counter()
    for i in range(count):
        kind = i % 10
        at = now - timedelta(hours=1) + timedelta(milliseconds=i)
        if kind < 7:
            news.append(NewEvent(
                workspace_id=world.business_id, source="api", source_event_id=f"payment:pay_backlog_{i}",
                type="payment.succeeded", occurred_at=at,
                data={"payment_ref": f"pay_backlog_{i}", "customer_ref": world.customers[i % len(world.customers)],
                      "amount": 4900, "currency": "USD", "product_id": world.product_id}))
        elif kind < 9:
            ref = f"user_backlog_{i}"
            news.append(NewEvent(
                workspace_id=world.business_id, source="api", source_event_id=f"customer:{ref}",
                type="customer.created", occurred_at=at,
                data={"customer_ref": ref, "email": f"{ref}@mail.example.com", "name": ref,
                      "product_id": world.product_id, "referral_code": world.codes[i % len(world.codes)]}))
        else:
            click = f"clk_backlog_{i}"
            code = world.codes[i % len(world.codes)]
            news.append(NewEvent(
                workspace_id=world.business_id, source="link", source_event_id=click, type="click.recorded",
                occurred_at=at, data={"click_id": click, "referral_code": code, "first_click_id": click,
                                      "landing_url": "https://lag.example.com/?ref=" + code,
                                      "ip_hash": f"{i:016x}", "user_agent": "Mozilla/5.0 (bench)"}))
        if len(news) == 1000:
            event_append_many(news)
            news = []
    if news:
        event_append_many(news)
    return time.perf_counter() - started


def task_seconds(log: Path) -> list[float]:
    """Run times of the projection tasks that applied events ("… succeeded in 1.23s: {'ledger': 1000}")."""
    pattern = re.compile(r"ingestion\.tasks\.run_projections\[[^\]]+\] succeeded in ([0-9.]+)s: (\{[^}]*\})")
    seconds = []
    for match in pattern.finditer(log.read_text(errors="replace")):
        if re.search(r": [1-9]", match.group(2)):
            seconds.append(float(match.group(1)))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="events per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30, help="steady-load duration (default 30)")
    parser.add_argument("--backlog", type=int, default=100_000, help="backlog events (default 100,000)")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=32, help="client threads keeping the schedule")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--drain-timeout", type=float, default=600, help="give up waiting after this many s")
    parser.add_argument("--db", default="refairn_bench_lag")
    parser.add_argument("--port", type=int, default=0, help="gunicorn port (default 0: a free one)")
    parser.add_argument("--quick", action="store_true",
                        help="development run: 5 s of steady load, a 5,000-event backlog, 10 agents, 500 customers")
    args = parser.parse_args()
    args.port = args.port or harness.free_port()
    if args.quick:
        args.seconds, args.backlog, args.agents, args.customers = 5, 5000, 10, 500

    print("Refairn projection lag benchmark (bench/lag.py)")
    harness.print_machine()
    url = harness.fresh_database(args.db)
    env = harness.app_env(url)
    harness.flush_redis()
    harness.setup_django(env)
    from ingestion import projections

    names = list(projections.registered())
    world = build_world(args.agents, args.customers)
    harness.close_django_connections()
    work = Path(tempfile.mkdtemp(prefix="refairn-lag-"))
    gunicorn = harness.Gunicorn(args.workers, args.worker_class)
    print(f"production shape: {gunicorn.describe()}, Celery worker (prefork, concurrency 1) and beat "
          f"on {harness.REDIS_URL}; logs in {work}")
    web = harness.start_gunicorn(gunicorn, args.port, env, work)
    worker = harness.start_worker(env, work)
    beat = harness.start_beat(env, work)
    try:
        ok, _, took = wait_caught_up(url, names, args.drain_timeout)
        print(f"setup: {len(world.codes)} agents, {len(world.customers)} referred signups projected "
              f"{'in' if ok else 'NOT within'} {took:.1f} s")

        # --- steady load
        state = LoadState()
        stop = threading.Event()
        poller = threading.Thread(target=poll_lag, args=(url, state, stop), daemon=True)
        poller.start()
        started = time.monotonic()
        steady_load(world, args.port, args.rate, args.seconds, args.threads, state)
        sent_for = time.monotonic() - started
        stop.set()
        poller.join(args.drain_timeout)
        lags = [a.lag for a in state.answered if a.lag is not None]
        missing = sum(1 for a in state.answered if a.lag is None)
        with psycopg.connect(url) as conn:
            refs = [a.payment_ref for a in state.answered]
            with_entry = conn.execute(
                "SELECT count(DISTINCT payment_ref) FROM commissions_ledgerentry WHERE payment_ref = ANY(%s)",
                [refs]).fetchone()[0]
        achieved = len(state.answered) / sent_for if sent_for else 0
        print(f"\nsteady load: {len(state.answered)} payments answered 200 in {sent_for:.1f} s "
              f"({achieved:.0f}/s, target {args.rate:.0f}/s), errors {state.errors or 0}, "
              f"requests sent late: {len(state.late)} (max {max(state.late, default=0) * 1000:.0f} ms)")
        print(f"  request latency p50 {harness.percentile(state.latencies, 50) * 1000:.1f} ms, "
              f"p99 {harness.percentile(state.latencies, 99) * 1000:.1f} ms")
        print(f"  200 answer -> ledger checkpoint past the event: p50 {harness.percentile(lags, 50):.3f} s, "
              f"p99 {harness.percentile(lags, 99):.3f} s, max {max(lags, default=float('nan')):.3f} s "
              f"({missing} never seen)")
        print(f"  ledger entries for {with_entry} of {len(refs)} accepted payments")

        # --- backlog
        worker.stop()
        beat.stop()
        with psycopg.connect(url) as conn:
            before = head(conn)
        appended_in = append_backlog(world, args.backlog)
        # The reference, same run, same events: the runner's read loop over the backlog, applying nothing.
        t0 = time.perf_counter()
        read = read_only_pass(start=before)
        read_seconds = time.perf_counter() - t0
        harness.close_django_connections()
        with psycopg.connect(url) as conn:
            target = head(conn)
            behind = {n: target - p for n, p in checkpoints(conn).items()}
        print(f"\nbacklog: {args.backlog:,} events appended in {appended_in:.1f} s with the worker stopped; "
              f"behind: {behind}")
        print(f"  reference: read-only pass over the backlog (batches of 1,000, no apply): {read:,} events in "
              f"{read_seconds:.2f} s = {read / read_seconds:,.0f} events/s")
        worker_log = work / "worker-backlog.log"
        worker = harness.start_worker(harness.app_env(url, LOG_LEVEL="INFO"), work, name="worker-backlog",
                                     loglevel="INFO")
        beat = harness.start_beat(env, work)
        ok, first_move, took = wait_caught_up(url, names, args.drain_timeout)
        time.sleep(1.0)  # the task logs its run time just after its last commit
        tasks = task_seconds(worker_log) if worker_log.exists() else []
        projection = sum(tasks) if tasks else took
        print(f"  caught up {'' if ok else 'NOT '}within {took:.1f} s of the worker's start "
              f"(worker boot included; first batch committed after {first_move or float('nan'):.1f} s)")
        print(f"  projection time (run times the worker logged for the {len(tasks)} task(s) that applied "
              f"events): {projection:.1f} s = {args.backlog / projection if projection else 0:,.0f} events/s")
        print(f"  ratio drain / read-only pass: "
              f"{harness.ratio(args.backlog / projection if projection else 0, read / read_seconds)} "
              f"(the worker runs the {len(names)} projections in turns, sharing each batch's read)")
        print("\ngoals (issue #9):")
        p99 = harness.percentile(lags, 99)
        steady = achieved >= 0.95 * args.rate
        print(f"  p99 answer -> ledger <= 2 s at {args.rate:.0f} events/s: {p99:.3f} s at {achieved:.0f} events/s: "
              f"{harness.verdict(p99 <= 2 and steady and missing == 0 and not state.errors)}"
              + ("" if steady else " (the rate was not reached)"))
        print(f"  {args.backlog:,}-event backlog drains in <= 10 s of projection time: ~{projection:.1f} s: "
              f"{harness.verdict(ok and projection <= 10)}")
    finally:
        for service in (beat, worker, web):
            service.stop()
        harness.flush_redis()


if __name__ == "__main__":
    sys.exit(main())
