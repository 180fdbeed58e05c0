"""The attribution projector: which agent earned which customer and payment, from events alone.

It reads nothing but the events and its own tables (``attribution.models``): referral codes come
from ``enrollment.*`` events, never from the ``agents`` tables, ids come from ``derived_id``, and
time from the events' ``occurred_at``, so a rebuild decides exactly what the live run decided.

Speed (issue #3, replay of a million events): a batch is applied as one unit of work. Every key the
batch names (codes, clicks, customers by ref/email/provider id, payment refs) is loaded in a few
``__in`` queries, the events are folded into those in-memory rows, and new and changed rows are
written at the end of the batch (``ingestion.bulk_writes``: COPY and array updates), inside the runner's
transaction. Within a batch the in-memory maps are the truth; the database is only read for keys
not loaded yet.

The rules themselves live in ``attribution.domain``.

**One payment, one commission, whatever the channel** (PRODUCT.md). Reports of one payment are
folded into one ``PaymentRecord`` (and at most one ``PaymentAttribution``):

- the same ``payment_ref`` again is a duplicate (``duplicates`` counts it);
- a payment reported with its own id (a provider charge id, the API's ``paymentId``: anything that
  is not an ``nk:`` natural key) whose event carries an ``email`` is also looked up by its natural
  key (``ingestion.natural_keys.payment_natural_key`` of that email, the UTC date of its
  ``occurred_at``, its amount and currency). If a payment with that key is already recorded (a CSV
  row, or the API without ``paymentId``), the new report is that payment: no second decision, no
  second commission, and the record keeps the id as its ``alias_ref`` (with the alias event's
  position) so that a refund or dispute naming the id reaches the commission created from the
  row (``commissions.projector`` follows aliases recorded before the refund, and at the alias's
  position the payment adopts what was parked under the id before). **Decision**: only
  the event's own ``email`` counts, not the email of the customer it matches: the CSV importer's
  check for the other order (``ingestion.csv_import.reported_elsewhere``) reads the same field, so
  both orders pair the same reports. A natural-key payment takes at most ONE alias: a second
  charge with another id, same email, day, amount and currency, is a different payment.
- the other order: a natural-key report (the API without ``paymentId``, a CSV row) of a payment
  already reported with its own id. The payment of the customer with that email whose natural key
  it is becomes the report's payment (``own_id_twin``) and keeps the natural key as its
  ``alias_ref``, if the event that reported it carried that email (as ``twin_of`` asks of the
  other order, so that which report arrives first changes nothing). The CSV importer skips such
  rows itself when it sees them (``reported_elsewhere``); this catches what reaches the store
  anyway. Whichever report comes second may carry the referral code or click the first did not:
  it decides then, as it would have first (``decide_by_other_report``).

**Arrival order of a customer's payments.** Attribution's own view is by business time
(``domain.payment_order``: ``occurred_at``, then ``payment_ref``) and does not depend on the order
payments arrive in: ``Customer.first_payment_at``/``first_payment_event_id`` are the earliest
payment's, ``PaymentRecord.sequence`` is each payment's number in that order (re-numbered when an
earlier-dated payment arrives late), a late signup claims its parked payments in that order, and
a metadata code decides on the customer's earliest payment whenever that one arrives.
``PaymentAttribution`` rows, the ledger's contract, are different: written once when the payment
is decided and never changed, so the ledger of a given store order never changes and a rebuild
equals the incremental run. **Decision**: their ``sequence`` is the DECIDED order (1 for the first
payment attributed, the one that earns the referral commission; n for the n-th), so a customer
earns exactly one referral commission; when an earlier-dated payment arrives after a later one
already earned it, that earlier payment is decided with the next number and earns the recurring
commission, with the recurring cap counted from the earliest payment known at that point
(``first_payment_at``). Where the arrival order was the business order the two numbers agree.
The explain trail reads the decided ``sequence``, so it always agrees with the entry's kind.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings

from ingestion.bulk_writes import chunks, clear_tables, insert_rows, row_maker, update_rows
from ingestion.ids import derived_id
from ingestion.models import Event
from ingestion.natural_keys import NATURAL_KEY_PREFIX, payment_date, payment_natural_key
from ingestion.projections import Projector
from ingestion.store import StoredEvent

from . import domain
from .models import (
    AttributionRefusal,
    Click,
    Customer,
    PaymentAttribution,
    PaymentRecord,
    ProviderCustomerLink,
    ReferralCode,
    SubscriptionLink,
)

logger = logging.getLogger(__name__)

_CUSTOMER_FIELDS = [
    f.name for f in Customer._meta.concrete_fields if f.name not in {"id", "workspace"}
]
_PAYMENT_FIELDS = [
    "customer_id", "attributed", "agent_id", "decided_position", "duplicates", "sequence", "alias_ref",
    "alias_event_id", "alias_position",
]
_CODE_FIELDS = [
    "enrollment_id", "agent_id", "agent_email", "program_id", "product_id", "terms", "status",
    "approved_event_id", "approved_position", "decided_event_id", "decided_position",
]
# New rows are built by ``row_maker``'s constructors: a batch creates tens of thousands.
_refusal_row = row_maker(AttributionRefusal)
_code_row = row_maker(ReferralCode)
_click_row = row_maker(Click)
_customer_row = row_maker(Customer)
_provider_link_row = row_maker(ProviderCustomerLink)
_subscription_link_row = row_maker(SubscriptionLink)
_attribution_row = row_maker(PaymentAttribution)
_payment_row = row_maker(PaymentRecord)
_ENROLLMENT_TYPES = {"enrollment.approved", "enrollment.rejected", "enrollment.removed"}
_CUSTOMER_TYPES = {"customer.created", "payment.succeeded", "subscription.cancelled", "support.assigned",
                   "support.unassigned", "attribution.reassigned"}
_CREATING_TYPES = {"customer.created", "payment.succeeded", "support.assigned"}
_CLICK_NAMING_TYPES = {"click.recorded", *_CUSTOMER_TYPES}


class AttributionProjector(Projector):
    """Folds clicks, signups, payments, cancellations, support and reassignments into attribution."""

    name = "attribution"

    def apply(self, event: StoredEvent) -> None:
        self.apply_batch([event])

    def apply_batch(self, events: Sequence[StoredEvent], carry: _UnitOfWork | None = None) -> None:
        work = carry if carry is not None else _UnitOfWork()
        if work.size() > settings.REFAIRN_PROJECTION_CARRY_ROWS:
            work.forget(settings.REFAIRN_PROJECTION_CARRY_ROWS)  # a bound on the worker's memory
        if not work.knows_all:
            work.prefetch(events)  # complete maps know every row: nothing to read ahead
        elif work.forgotten:
            work.prefetch_forgotten(events)
        for event in events:
            work.handle(event)
        work.flush()

    def start_run(self, *, empty: bool) -> _UnitOfWork:
        return _UnitOfWork(complete=empty)

    def handoff(self, carry: _UnitOfWork | None) -> list[PaymentAttribution] | None:
        """The decisions the batch just committed wrote: the ledger's next batch needs exactly these."""
        return carry.flushed_attributions if carry is not None else None

    models = (PaymentAttribution, PaymentRecord, AttributionRefusal, SubscriptionLink, ProviderCustomerLink,
              Customer, Click, ReferralCode)

    def reset(self) -> None:
        clear_tables(self.models)


class _UnitOfWork:
    """The rows a batch reads and writes: identity maps of loaded rows, and what to flush.

    One unit of work serves every batch of a run (``Projector.start_run``): ``flush`` writes a
    batch's rows and clears the write lists, and the maps stay, so the next batch reads nothing
    it has already seen (the runner starts a new one if anything else may have written the
    tables). When ``complete`` (the run started with empty tables) every row in the tables is
    one this run wrote: a key the maps do not know is absent and costs no query, so a rebuild
    reads nothing back from its own tables.

    Memory: past ``REFAIRN_PROJECTION_CARRY_ROWS`` the projector ``forget``s rows: the payments
    first, then the clicks, everything but the codes (a few per agent) if that is not enough. A
    complete unit of
    work still knows, in ``written``, the hashes of every key it wrote: a key whose hash is not
    there is still absent without a query, and one whose hash is there is read back (a hash
    collision costs one query that finds nothing).
    """

    def __init__(self, *, complete: bool = False) -> None:
        self.complete = complete
        self.evicted = False
        # The maps ``forget`` dropped on their own ("payments", "clicks"): the others stay whole.
        self.forgotten: set[str] = set()
        self.written: set[int] = set()
        # The ``PaymentAttribution`` rows the last ``flush`` wrote (``AttributionProjector.handoff``).
        self.flushed_attributions: list[PaymentAttribution] = []
        self._clear_codes()
        self._clear_maps()
        self._clear_writes()

    def forget(self, bound: int) -> None:
        """Drop rows (never the codes) so that at most ``bound`` remain; later lookups of them read
        the database again.

        Payments go first, then clicks, as long as that leaves room to grow (under three quarters
        of ``bound``). Payments are the largest map (a customer pays month after month), and a
        later batch seldom needs an old one: only when it is reported twice or by another channel,
        or when an earlier-dated payment re-numbers its customer's. A click is needed again only
        by its visitor's signup or next click, mostly days later. Every payment, signup and
        cancellation asks for customers. A long rebuild that forgot everything read them back
        batch after batch for the rest of the run (bench/RESULTS.md, the 1,000,000-event replay).
        """
        room = bound * 3 // 4
        if not self.evicted:
            self.forgotten.add("payments")
            self._clear_payments()
            if self.size() < room:
                return
            self.forgotten.add("clicks")
            self.clicks = {}
            if self.size() < room:
                return
        self.evicted = True
        self._clear_maps()

    def size(self) -> int:
        return len(self.customers) + len(self.payments) + len(self.clicks) + len(self.by_email)

    def _stored(self, tag: str, ws: str, values: Iterable[Any], *, whole: bool | None = None) -> list[Any]:
        """Of ``values`` the maps lack, those the tables may hold: all, unless ``complete``.

        ``whole`` says whether the map asked about holds every row the run wrote (by default,
        ``knows_all``; the payments' and clicks' maps say ``knows_payments``, ``knows_clicks``).
        """
        if not self.complete:
            return list(values)
        if self.knows_all if whole is None else whole:
            return []  # the maps hold every row the run wrote
        written = self.written
        return [v for v in values if hash((tag, ws, v)) in written]

    def _remember_written(self) -> None:
        """Record the keys of this batch's new and changed rows (``_stored``)."""
        if not self.complete:
            return
        add = self.written.add
        for click in self.new_clicks:
            add(hash(("click", click.workspace_id, click.click_id)))
        for customer in (*self.new_customers.values(), *self.dirty_customers.values()):
            # A customer is dirty at nearly every payment, and its keys rarely change (``learn``
            # fills a missing ref or email): hashing them again each time was 5 % of a rebuild's
            # py-spy samples.
            keys = (customer.customer_ref, customer.email)
            state = customer.__dict__
            if state.get("_remembered_keys") == keys:
                continue
            state["_remembered_keys"] = keys
            ws = customer.workspace_id
            add(hash(("cus", "", customer.id)))
            if customer.customer_ref:
                add(hash(("ref", ws, customer.customer_ref)))
            if customer.email:
                add(hash(("email", ws, customer.email)))
        for link in self.new_provider_links:
            add(hash(("pcl", link.workspace_id, (link.provider, link.provider_customer_id))))
        for sub in self.new_subscription_links:
            add(hash(("sub", sub.workspace_id, sub.subscription_ref)))
        for record in self.new_payments:
            add(hash(("pay", record.workspace_id, record.payment_ref)))

    def _clear_codes(self) -> None:
        self.codes: dict[tuple[str, str], ReferralCode | None] = {}
        # The rows of ``codes`` by (workspace, enrollment) and by (workspace, agent): a few each.
        self.codes_by_enrollment: dict[tuple[str, str], list[ReferralCode]] = defaultdict(list)
        self.codes_by_agent: dict[tuple[str, str], list[ReferralCode]] = defaultdict(list)
        # (workspace, agent) and (workspace, enrollment) whose codes are all in ``codes``.
        self.agents_loaded: set[tuple[str, str]] = set()
        self.enrollments_loaded: set[tuple[str, str]] = set()

    def _add_code(self, ws: str, row: ReferralCode) -> None:
        self.codes[(ws, row.code)] = row
        self.codes_by_enrollment[(ws, row.enrollment_id)].append(row)
        self.codes_by_agent[(ws, row.agent_id)].append(row)

    def _clear_maps(self) -> None:
        # The id ``create_customer`` derives for a customer key: every payment of a batch asks
        # (``prefetch``), and a customer's payments share its key. A short string per key, cleared
        # with the maps: not counted in ``size``, so the carry is forgotten no sooner than before.
        self.customer_ids: dict[tuple[str, str], str] = {}
        # Identity maps. A key present with ``None`` is known not to exist.
        self.clicks: dict[tuple[str, str], Click | None] = {}
        self.customers: dict[str, Customer | None] = {}
        self.by_ref: dict[tuple[str, str], str | None] = {}
        self.by_email: dict[tuple[str, str], str | None] = {}
        self.by_provider: dict[tuple[str, str, str], str | None] = {}
        self.by_subscription: dict[tuple[str, str], str | None] = {}
        self._clear_payments()

    def _clear_payments(self) -> None:
        self.payments: dict[tuple[str, str], PaymentRecord | None] = {}
        # A customer's payments by ref, complete once loaded (``customer_payments``), kept complete
        # as batches record more; and the payments recorded since the maps were cleared, by
        # customer, for customers not loaded yet.
        self.payments_of: dict[str, dict[str, PaymentRecord]] = {}
        self.new_payments_of: dict[str, list[PaymentRecord]] = defaultdict(list)
        # The same rows of ``payments_of`` in business order (``place``), for the customers that
        # have had a late payment; kept sorted as payments are added.
        self.ordered_payments_of: dict[str, list[PaymentRecord]] = {}

    def _clear_writes(self) -> None:
        self.new_codes: list[ReferralCode] = []
        self.dirty_codes: dict[int, ReferralCode] = {}
        self.new_clicks: list[Click] = []
        self.new_customers: dict[str, Customer] = {}
        self.dirty_customers: dict[str, Customer] = {}
        self.new_provider_links: list[ProviderCustomerLink] = []
        self.new_subscription_links: list[SubscriptionLink] = []
        self.new_payments: list[PaymentRecord] = []
        self.dirty_payments: dict[int, PaymentRecord] = {}
        self.new_attributions: list[PaymentAttribution] = []
        self.new_refusals: list[AttributionRefusal] = []

    # --- loading -------------------------------------------------------------------------------

    def prefetch(self, events: Sequence[StoredEvent]) -> None:
        """Load, in a few queries per workspace, every row the batch's events name."""
        codes: dict[str, set[str]] = defaultdict(set)
        clicks: dict[str, set[str]] = defaultdict(set)
        refs: dict[str, set[str]] = defaultdict(set)
        emails: dict[str, set[str]] = defaultdict(set)
        providers: dict[str, set[tuple[str, str]]] = defaultdict(set)
        subscriptions: dict[str, set[str]] = defaultdict(set)
        payment_refs: dict[str, set[str]] = defaultdict(set)
        customer_ids: set[str] = set()
        payment_events: list[tuple[StoredEvent, dict]] = []
        for event in events:
            data = event.data if isinstance(event.data, dict) else {}
            ws = event.workspace_id
            kind = event.type
            if kind in _ENROLLMENT_TYPES or kind == "click.recorded":
                code = domain.normalise_code(data.get("referral_code"))
                if code:
                    codes[ws].add(code)
                if kind == "click.recorded":
                    for key in ("click_id", "first_click_id"):
                        value = domain.text(data.get(key), 40)
                        if value:
                            clicks[ws].add(value)
                continue
            if kind not in _CUSTOMER_TYPES:
                continue
            ref = domain.text(data.get("customer_ref"))
            if ref:
                refs[ws].add(ref)
            email = domain.normalise_email(data.get("email"))
            if email:
                emails[ws].add(email)
            pcid = domain.text(data.get("provider_customer_id"))
            if pcid:
                providers[ws].add((_provider(event, data), pcid))
            sub = domain.text(data.get("subscription_ref"))
            if sub:
                subscriptions[ws].add(sub)
            code = domain.given_code(data.get("referral_code"))
            if code:
                codes[ws].add(code)
            click_id = domain.text(data.get("click_id"), 40)
            if click_id:
                clicks[ws].add(click_id)
            if kind == "payment.succeeded":
                payment_events.append((event, data))
                _add_payment_refs(payment_refs, event, data)
            customer_id = domain.text(data.get("customer_id"), 40)
            if customer_id:
                customer_ids.add(customer_id)
            if kind in _CREATING_TYPES:
                # The id ``create_customer`` would derive: loaded here, its existence check costs no query.
                ids = _Ids.of(event, data)
                key = domain.customer_key(
                    customer_ref=ids.ref, email=ids.email, provider=ids.provider, provider_customer_id=ids.pcid,
                    payment_ref=domain.text(data.get("payment_ref")) if kind == "payment.succeeded" else "")
                customer_ids.add(self.customer_id_of(ws, key))

        for ws, values in codes.items():
            self._load_codes(ws, values)
        for ws, values in clicks.items():
            self._load_clicks(ws, values)
        # The first clicks of the loaded clicks (the visitor's first touch).
        roots: dict[str, set[str]] = defaultdict(set)
        for (ws, _), click in list(self.clicks.items()):
            if click is not None and (ws, click.first_click_id) not in self.clicks:
                roots[ws].add(click.first_click_id)
        for ws, values in roots.items():
            self._load_clicks(ws, values)
        for ws, values in refs.items():
            self._load_customers_by("customer_ref", ws, values, self.by_ref)
        for ws, values in emails.items():
            self._load_customers_by("email", ws, values, self.by_email)
        for ws, pairs in providers.items():
            self._load_provider_links(ws, pairs)
        for ws, values in subscriptions.items():
            self._load_subscription_links(ws, values)
        for ws, values in payment_refs.items():
            self._load_payments(ws, values)
        linked = {cid for cid in (*self.by_provider.values(), *self.by_subscription.values()) if cid}
        self._load_customers((customer_ids | linked) - set(self.customers))
        # The codes the loaded customers are attributed to (read when their payments are emitted).
        attributed: dict[str, set[str]] = defaultdict(set)
        for customer in self.customers.values():
            if customer is not None and customer.referral_code:
                attributed[customer.workspace_id].add(customer.referral_code)
        for ws, values in attributed.items():
            self._load_codes(ws, values)
        self._load_payments_of(self._late_payers(payment_events))

    def prefetch_forgotten(self, events: Sequence[StoredEvent]) -> None:
        """``prefetch`` for a complete unit of work that forgot some maps only (``forget``).

        The other maps are whole: only the batch's payments (with their natural-key twins and the
        late payers' payments) and clicks (with their visitors' first clicks) may need a query.
        """
        payments, clicks = "payments" in self.forgotten, "clicks" in self.forgotten
        payment_refs: dict[str, set[str]] = defaultdict(set)
        payment_events: list[tuple[StoredEvent, dict]] = []
        click_ids: dict[str, set[str]] = defaultdict(set)
        for event in events:
            if not isinstance(event.data, dict):
                continue
            data, ws, kind = event.data, event.workspace_id, event.type
            if clicks and kind in _CLICK_NAMING_TYPES:
                for key in ("click_id", "first_click_id"):
                    value = domain.text(data.get(key), 40)
                    if value:
                        click_ids[ws].add(value)
            if payments and kind == "payment.succeeded":
                payment_events.append((event, data))
                _add_payment_refs(payment_refs, event, data)
        for ws, values in click_ids.items():
            self._load_clicks(ws, values)
            roots = {click.first_click_id for value in values if (click := self.clicks[(ws, value)]) is not None}
            self._load_clicks(ws, roots)
        for ws, values in payment_refs.items():
            self._load_payments(ws, values)
        if payments:
            self._load_payments_of(self._late_payers(payment_events))

    def customer_id_of(self, ws: str, key: str) -> str:
        """The id of the customer created for ``key`` (``domain.customer_key``): derived once per run."""
        found = self.customer_ids.get((ws, key))
        if found is None:
            found = self.customer_ids[(ws, key)] = derived_id("cus", ws, key)
        return found

    def _late_payers(self, payment_events: list[tuple[StoredEvent, dict]]) -> set[str]:
        """Known customers a payment of the batch is dated before (or with) their last payment.

        ``place`` re-numbers those customers' payments, so it needs all of them: loaded here in a
        query per 500 customers instead of one per customer. Any customer the payment names by
        any key is taken; loading one too many costs a few rows.
        """
        late: set[str] = set()
        for event, data in payment_events:
            ws = event.workspace_id
            ids = _Ids.of(event, data)
            for customer_id in (self.by_ref.get((ws, ids.ref)), self.by_provider.get((ws, ids.provider, ids.pcid)),
                                self.by_email.get((ws, ids.email))):
                customer = self.customers.get(customer_id) if customer_id else None
                if (customer is not None and customer.last_payment_at is not None
                        and event.occurred_at <= customer.last_payment_at):
                    late.add(customer.id)
        return late

    def _load_codes(self, ws: str, values: Iterable[str]) -> None:
        values = [v for v in values if (ws, v) not in self.codes]
        for chunk in chunks(values):
            for key in chunk:
                self.codes[(ws, key)] = None
            if self.complete:
                continue
            for row in ReferralCode.objects.filter(workspace_id=ws, code__any_of=chunk):
                self._add_code(ws, row)

    def _load_clicks(self, ws: str, values: Iterable[str]) -> None:
        values = [v for v in values if (ws, v) not in self.clicks]
        for chunk in chunks(values):
            for key in chunk:
                self.clicks[(ws, key)] = None
            chunk = self._stored("click", ws, chunk, whole=self.knows_clicks)
            if not chunk:
                continue
            for row in Click.objects.filter(workspace_id=ws, click_id__any_of=chunk):
                self.clicks[(ws, row.click_id)] = row

    def _load_customers_by(self, field: str, ws: str, values: Iterable[str],
                           index: dict[tuple[str, str], str | None]) -> None:
        values = [v for v in values if (ws, v) not in index]
        for chunk in chunks(values):
            for key in chunk:
                index[(ws, key)] = None
            chunk = self._stored("ref" if field == "customer_ref" else field, ws, chunk)
            if not chunk:
                continue
            rows = Customer.objects.filter(workspace_id=ws, **{f"{field}__any_of": chunk}).order_by("created_position")
            for row in rows:
                row = self._remember_customer(row)
                key = (ws, getattr(row, field))
                if index.get(key) is None:
                    index[key] = row.id

    def _load_customers(self, ids: Iterable[str]) -> None:
        ids = [i for i in ids if i not in self.customers]
        for chunk in chunks(ids):
            for key in chunk:
                self.customers[key] = None
            chunk = self._stored("cus", "", chunk)
            if not chunk:
                continue
            for row in Customer.objects.filter(id__any_of=chunk):
                self._remember_customer(row)

    def _load_payments_of(self, customer_ids: Iterable[str]) -> None:
        """Load every payment record of these customers (see ``customer_payments``)."""
        ids = [i for i in customer_ids if i not in self.payments_of]
        for chunk in chunks(ids):
            loaded: dict[str, dict[str, PaymentRecord]] = {customer_id: {} for customer_id in chunk}
            stored = self._stored("cus", "", chunk, whole=self.knows_payments)
            for row in PaymentRecord.objects.filter(customer_id__any_of=stored) if stored else ():
                key = (row.workspace_id, row.payment_ref)
                if self.payments.get(key) is None:
                    self.payments[key] = row
                loaded[row.customer_id][row.payment_ref] = self.payments[key]  # type: ignore[assignment]
            for customer_id, rows in loaded.items():
                for row in self.new_payments_of.pop(customer_id, ()):
                    rows[row.payment_ref] = row
                self.payments_of[customer_id] = rows

    def _remember_customer(self, row: Customer) -> Customer:
        """Keep the in-memory row when there is one: it may hold this batch's changes."""
        existing = self.customers.get(row.id)
        if existing is not None:
            return existing
        self.customers[row.id] = row
        return row

    def _load_provider_links(self, ws: str, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = [p for p in pairs if (ws, *p) not in self.by_provider]
        for provider, pcid in pairs:
            self.by_provider[(ws, provider, pcid)] = None
        for chunk in chunks(self._stored("pcl", ws, pairs)):
            ids = {pcid for _, pcid in chunk}
            rows = ProviderCustomerLink.objects.filter(workspace_id=ws, provider_customer_id__any_of=ids)
            for row in rows.values_list("provider", "provider_customer_id", "customer_id"):
                self.by_provider[(ws, row[0], row[1])] = row[2]

    def _load_subscription_links(self, ws: str, values: Iterable[str]) -> None:
        values = [v for v in values if (ws, v) not in self.by_subscription]
        for chunk in chunks(values):
            for key in chunk:
                self.by_subscription[(ws, key)] = None
            chunk = self._stored("sub", ws, chunk)
            if not chunk:
                continue
            rows = SubscriptionLink.objects.filter(workspace_id=ws, subscription_ref__any_of=chunk)
            for sub, customer_id in rows.values_list("subscription_ref", "customer_id"):
                self.by_subscription[(ws, sub)] = customer_id

    def _load_payments(self, ws: str, values: Iterable[str]) -> None:
        values = [v for v in values if (ws, v) not in self.payments]
        for chunk in chunks(values):
            for key in chunk:
                self.payments[(ws, key)] = None
            chunk = self._stored("pay", ws, chunk, whole=self.knows_payments)
            if not chunk:
                continue
            for row in PaymentRecord.objects.filter(workspace_id=ws, payment_ref__any_of=chunk):
                self.payments[(ws, row.payment_ref)] = row

    # --- lookups (identity map first, database for keys not loaded) ----------------------------
    #
    # While ``knows_all`` (a complete unit of work that has forgotten nothing, or only the maps
    # in ``forgotten``: see ``knows_payments`` and ``knows_clicks``), a key missing from a map is
    # absent: answered ``None`` at once, and not even stored as known-absent (a rebuild looks up
    # every new payment by its ref and its natural key).

    @property
    def knows_all(self) -> bool:
        return self.complete and not self.evicted

    @property
    def knows_payments(self) -> bool:
        return self.knows_all and "payments" not in self.forgotten

    @property
    def knows_clicks(self) -> bool:
        return self.knows_all and "clicks" not in self.forgotten

    def code(self, ws: str, code: str) -> ReferralCode | None:
        if not code:
            return None
        if (ws, code) not in self.codes:
            if self.complete:  # codes are never forgotten
                return None
            self._load_codes(ws, [code])
        return self.codes[(ws, code)]

    def click(self, ws: str, click_id: str) -> Click | None:
        if not click_id:
            return None
        if (ws, click_id) not in self.clicks:
            if self.knows_clicks:
                return None
            self._load_clicks(ws, [click_id])
        return self.clicks[(ws, click_id)]

    def customer(self, customer_id: str) -> Customer | None:
        if not customer_id:
            return None
        if customer_id not in self.customers:
            if self.knows_all:
                return None
            self._load_customers([customer_id])
        return self.customers[customer_id]

    def customer_by_ref(self, ws: str, ref: str) -> Customer | None:
        if (ws, ref) not in self.by_ref:
            if self.knows_all:
                return None
            self._load_customers_by("customer_ref", ws, [ref], self.by_ref)
        return self.customer(self.by_ref[(ws, ref)] or "")

    def customer_by_email(self, ws: str, email: str) -> Customer | None:
        if (ws, email) not in self.by_email:
            if self.knows_all:
                return None
            self._load_customers_by("email", ws, [email], self.by_email)
        return self.customer(self.by_email[(ws, email)] or "")

    def customer_by_provider(self, ws: str, provider: str, pcid: str) -> Customer | None:
        if (ws, provider, pcid) not in self.by_provider:
            if self.knows_all:
                return None
            self._load_provider_links(ws, [(provider, pcid)])
        return self.customer(self.by_provider[(ws, provider, pcid)] or "")

    def customer_by_subscription(self, ws: str, sub: str) -> Customer | None:
        if (ws, sub) not in self.by_subscription:
            if self.knows_all:
                return None
            self._load_subscription_links(ws, [sub])
        return self.customer(self.by_subscription[(ws, sub)] or "")

    def payment(self, ws: str, payment_ref: str) -> PaymentRecord | None:
        if (ws, payment_ref) not in self.payments:
            if self.knows_payments:
                return None
            self._load_payments(ws, [payment_ref])
        return self.payments[(ws, payment_ref)]

    def codes_of_agent(self, ws: str, agent_id: str) -> list[ReferralCode]:
        """The agent's codes in order of approval (rare path: reassignments and support)."""
        if not self.complete and (ws, agent_id) not in self.agents_loaded:
            for row in ReferralCode.objects.filter(workspace_id=ws, agent_id=agent_id):
                if self.codes.get((ws, row.code)) is None:
                    self._add_code(ws, row)
            self.agents_loaded.add((ws, agent_id))
        # A row stays listed under an agent it left (``on_enrollment``): filtered, and listed once.
        rows = {id(r): r for r in self.codes_by_agent.get((ws, agent_id), ()) if r.agent_id == agent_id}
        return sorted(rows.values(), key=lambda r: (r.approved_position or r.decided_position, r.code))

    def code_of_enrollment(self, ws: str, enrollment_id: str) -> ReferralCode | None:
        """The enrollment's code row with its latest decision (an enrollment whose code changed has several)."""
        if not self.complete and (ws, enrollment_id) not in self.enrollments_loaded:
            for row in ReferralCode.objects.filter(workspace_id=ws, enrollment_id=enrollment_id):
                if self.codes.get((ws, row.code)) is None:
                    self._add_code(ws, row)
            self.enrollments_loaded.add((ws, enrollment_id))
        rows = self.codes_by_enrollment.get((ws, enrollment_id))
        return max(rows, key=lambda r: (r.decided_position, r.code)) if rows else None

    def customer_payments(self, customer: Customer) -> list[PaymentRecord]:
        """Every payment record of the customer, from the database and from this batch.

        Read once per customer and batch (for most, in ``prefetch``), then kept in memory: a
        customer whose payments arrive out of business order (a backlog of older payments, a CSV
        of history) re-numbers them on every arrival, and reading them from the database each
        time made that path quadratic (bench/lag.py).
        """
        if customer.id not in self.payments_of:
            self._load_payments_of([customer.id])
        return list(self.payments_of[customer.id].values())

    def add_payment(self, record: PaymentRecord) -> None:
        """Record a new payment of this batch, and index it under its customer."""
        self.payments[(record.workspace_id, record.payment_ref)] = record
        self.new_payments.append(record)
        if not record.customer_id:
            return
        loaded = self.payments_of.get(record.customer_id)
        if loaded is not None:
            loaded[record.payment_ref] = record
            ordered = self.ordered_payments_of.get(record.customer_id)
            if ordered is not None:
                insort(ordered, record, key=domain.payment_record_order)
        else:
            self.new_payments_of[record.customer_id].append(record)

    # --- writes --------------------------------------------------------------------------------

    def touch_customer(self, customer: Customer, event: StoredEvent) -> None:
        customer.updated_position = event.position
        if customer.id not in self.new_customers:
            self.dirty_customers[customer.id] = customer

    def touch_payment(self, record: PaymentRecord) -> None:
        if record.pk is not None:
            self.dirty_payments[record.pk] = record

    def touch_code(self, row: ReferralCode) -> None:
        if row.pk is not None:
            self.dirty_codes[row.pk] = row

    def refuse(self, event: StoredEvent, kind: str, detail: str, *, customer_id: str = "", code: str = "",
               agent_id: str = "") -> None:
        self.new_refusals.append(_refusal_row(
            workspace_id=event.workspace_id, event_id=event.event_id, position=event.position,
            occurred_at=event.occurred_at, kind=kind, customer_id=customer_id, referral_code=code[:64],
            agent_id=agent_id, detail=detail,
        ))

    def flush(self) -> None:
        """Write this batch's new and changed rows (inside the runner's transaction), then forget them.

        Codes and payment records get their ids: a later batch of the run may change them.
        """
        insert_rows(ReferralCode, self.new_codes, set_ids=True)
        update_rows(ReferralCode, list(self.dirty_codes.values()), _CODE_FIELDS)
        insert_rows(Click, self.new_clicks)
        insert_rows(Customer, list(self.new_customers.values()))
        update_rows(Customer, list(self.dirty_customers.values()), _CUSTOMER_FIELDS)
        insert_rows(ProviderCustomerLink, self.new_provider_links)
        insert_rows(SubscriptionLink, self.new_subscription_links)
        insert_rows(PaymentRecord, self.new_payments, set_ids=True)
        update_rows(PaymentRecord, list(self.dirty_payments.values()), _PAYMENT_FIELDS)
        insert_rows(PaymentAttribution, self.new_attributions)
        insert_rows(AttributionRefusal, self.new_refusals)
        self._remember_written()
        self.flushed_attributions = self.new_attributions
        self._clear_writes()

    # --- events --------------------------------------------------------------------------------

    def handle(self, event: StoredEvent) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is None:
            return
        data = event.data if isinstance(event.data, dict) else {}
        handler(self, event, data)

    def on_enrollment(self, event: StoredEvent, data: dict) -> None:
        """Keep each code's state from the enrollment decisions (never from the agents tables)."""
        code = domain.normalise_code(data.get("referral_code"))
        enrollment_id = domain.text(data.get("enrollment_id"), 40)
        if not code or not enrollment_id:
            return  # a rejection before any code was chosen: nothing to attribute with
        status = event.type.split(".", 1)[1]
        ws = event.workspace_id
        row = self.code(ws, code)
        if row is not None and row.enrollment_id != enrollment_id:
            self.refuse(event, AttributionRefusal.Kind.INVALID_EVENT,
                        f"code {code} already belongs to enrollment {row.enrollment_id}", code=code)
            return
        terms = data.get("terms") if isinstance(data.get("terms"), dict) else {}
        if row is None:
            row = _code_row(workspace_id=ws, code=code, enrollment_id=enrollment_id, terms=terms,
                            agent_id=domain.text(data.get("agent_id"), 40))
            self._add_code(ws, row)
            self.new_codes.append(row)
        else:
            self.touch_code(row)
        agent_id = domain.text(data.get("agent_id"), 40)
        if agent_id != row.agent_id:
            self.codes_by_agent[(ws, agent_id)].append(row)
        row.agent_id = agent_id
        row.agent_email = domain.normalise_email(data.get("agent_email"))
        row.program_id = domain.text(data.get("program_id"), 40)
        row.product_id = domain.text(data.get("product_id"), 40) or domain.text(terms.get("product_id"), 40)
        row.status = status
        if status == ReferralCode.Status.APPROVED:
            row.terms = terms
            row.approved_event_id = event.event_id
            row.approved_position = event.position
        row.decided_event_id = event.event_id
        row.decided_position = event.position

    def on_click(self, event: StoredEvent, data: dict) -> None:
        ws = event.workspace_id
        click_id = domain.text(data.get("click_id"), 40)
        if not click_id or self.click(ws, click_id) is not None:
            return  # a repeated click event changes nothing
        code = domain.normalise_code(data.get("referral_code"))
        first_id, first_at = click_id, event.occurred_at
        cookie = domain.text(data.get("first_click_id"), 40)
        if cookie and cookie != click_id:
            earlier = self.click(ws, cookie)
            if earlier is not None:
                first_id, first_at = earlier.first_click_id, earlier.first_click_at
        state = self.code(ws, code)
        row = _click_row(
            workspace_id=ws, click_id=click_id, event_id=event.event_id, position=event.position,
            occurred_at=event.occurred_at, referral_code=code,
            agent_id=state.agent_id if state else "", enrollment_id=state.enrollment_id if state else "",
            first_click_id=first_id, first_click_at=first_at,
            landing_url=_str(data.get("landing_url")), referrer=_str(data.get("referrer")),
            ip_hash=domain.text(data.get("ip_hash"), 64), user_agent=_str(data.get("user_agent"))[:1000],
        )
        self.clicks[(ws, click_id)] = row
        self.new_clicks.append(row)

    def find_customer(self, ws: str, ids: _Ids) -> tuple[Customer | None, str]:
        """Match by the business's id, then the provider's id, then the email (PRODUCT.md order)."""
        if ids.ref:
            found = self.customer_by_ref(ws, ids.ref)
            if found is not None:
                return found, PaymentRecord.MatchedBy.CUSTOMER_REF
        if ids.pcid:
            found = self.customer_by_provider(ws, ids.provider, ids.pcid)
            if found is not None:
                return found, PaymentRecord.MatchedBy.PROVIDER_CUSTOMER
        if ids.email:
            found = self.customer_by_email(ws, ids.email)
            # The same email under another business id is another customer.
            if found is not None and not (ids.ref and found.customer_ref and found.customer_ref != ids.ref):
                return found, PaymentRecord.MatchedBy.EMAIL
        return None, ""

    def create_customer(self, event: StoredEvent, ids: _Ids, *, status: str, payment_ref: str = "") -> Customer:
        ws = event.workspace_id
        key = domain.customer_key(customer_ref=ids.ref, email=ids.email, provider=ids.provider,
                                  provider_customer_id=ids.pcid, payment_ref=payment_ref)
        customer_id = self.customer_id_of(ws, key)
        if self.customer(customer_id) is not None:  # defensive: never reuse a row for another key
            customer_id = derived_id("cus", ws, key, event.event_id)
        customer = _customer_row(
            id=customer_id, workspace_id=ws, status=status,
            unattributed_reason=Customer.Unattributed.NO_REFERRAL, attribution_detail="no referral code or click",
            created_event_id=event.event_id, created_position=event.position, created_at=event.occurred_at,
            updated_position=event.position,
        )
        self.customers[customer_id] = customer
        self.new_customers[customer_id] = customer
        return customer

    def learn(self, customer: Customer, event: StoredEvent, ids: _Ids) -> None:
        """Record identifiers newly known for the customer, so later events find it."""
        ws = event.workspace_id
        if ids.ref and not customer.customer_ref:
            customer.customer_ref = ids.ref
            if self.by_ref.get((ws, ids.ref)) is None:
                self.by_ref[(ws, ids.ref)] = customer.id
        if ids.email and not customer.email:
            customer.email = ids.email
            if self.by_email.get((ws, ids.email)) is None:
                self.by_email[(ws, ids.email)] = customer.id
        if ids.pcid and self.customer_by_provider(ws, ids.provider, ids.pcid) is None:
            self.by_provider[(ws, ids.provider, ids.pcid)] = customer.id
            self.new_provider_links.append(_provider_link_row(
                workspace_id=ws, provider=ids.provider, provider_customer_id=ids.pcid,
                customer_id=customer.id, event_id=event.event_id))
        if ids.subscription and self.customer_by_subscription(ws, ids.subscription) is None:
            self.by_subscription[(ws, ids.subscription)] = customer.id
            self.new_subscription_links.append(_subscription_link_row(
                workspace_id=ws, subscription_ref=ids.subscription, customer_id=customer.id,
                event_id=event.event_id))

    def touch_of(self, ws: str, data: dict) -> domain.Touch:
        click_id = domain.text(data.get("click_id"), 40)
        click = self.click(ws, click_id)
        first = self.click(ws, click.first_click_id) if click is not None else None
        return domain.Touch(code=domain.given_code(data.get("referral_code")), click_id=click_id,
                            click=_click_view(click), first_click=_click_view(first))

    def decide(self, event: StoredEvent, customer: Customer, touch: domain.Touch, *, at: datetime,
               product_id: str, code_via: str) -> domain.Decision:
        ws = event.workspace_id
        return domain.decide(touch, lookup=lambda code: _code_view(self.code(ws, code)), at=at,
                             email=customer.email, product_id=product_id, code_via=code_via)

    def attribute(self, customer: Customer, decision: domain.Decision, event: StoredEvent) -> None:
        state = self.code(event.workspace_id, decision.code)
        if state is None:  # unreachable: a decision to attribute names a known code
            raise RuntimeError(f"attributing to unknown code {decision.code}")
        customer.agent_id = state.agent_id
        customer.enrollment_id = state.enrollment_id
        customer.program_id = state.program_id
        customer.referral_code = state.code
        customer.attributed_via = decision.via
        customer.attributed_event_id = event.event_id
        customer.attributed_position = event.position
        customer.attributed_at = event.occurred_at
        customer.click_id = decision.click.click_id if decision.click else ""
        customer.click_event_id = decision.click.event_id if decision.click else ""
        customer.unattributed_reason = ""
        customer.attribution_detail = decision.detail

    def not_attributed(self, customer: Customer, decision: domain.Decision, event: StoredEvent) -> None:
        """Keep the reason; an informative one is never overwritten by a bare "no referral"."""
        if decision.reason == domain.NO_REFERRAL and customer.unattributed_reason != domain.NO_REFERRAL:
            return
        customer.unattributed_reason = decision.reason
        customer.attribution_detail = decision.detail
        if decision.reason != domain.NO_REFERRAL:
            state = self.code(event.workspace_id, decision.code)
            self.refuse(event, decision.reason, decision.detail, customer_id=customer.id, code=decision.code,
                        agent_id=state.agent_id if state else "")

    def emit(self, record: PaymentRecord, customer: Customer, event: StoredEvent, *, sequence: int) -> None:
        """Write the ledger's row for an attributed payment, decided by ``event``."""
        state = self.code(record.workspace_id, customer.referral_code)
        if state is None or customer.first_payment_at is None:  # unreachable: attributed means both
            raise RuntimeError(f"customer {customer.id} is attributed to unknown code {customer.referral_code}")
        record.attributed = True
        record.agent_id = customer.agent_id
        record.decided_position = event.position
        self.new_attributions.append(_attribution_row(
            workspace_id=record.workspace_id, payment_ref=record.payment_ref, payment_event_id=record.event_id,
            payment_position=record.position, decided_position=event.position, decided_event_id=event.event_id,
            occurred_at=record.occurred_at, amount=record.amount, currency=record.currency,
            customer_id=customer.id, agent_id=customer.agent_id, enrollment_id=customer.enrollment_id,
            program_id=customer.program_id, terms=state.terms, enrollment_event_id=state.approved_event_id,
            enrollment_active=state.status == ReferralCode.Status.APPROVED, sequence=sequence,
            first_payment_at=customer.first_payment_at, customer_cancelled=record.customer_cancelled,
            support_agent_id=record.support_agent_id, support_enrollment_id=record.support_enrollment_id,
            support_terms=record.support_terms, support_event_id=record.support_event_id,
        ))

    def claim_parked(self, customer: Customer, event: StoredEvent) -> None:
        """Attribute the payments that arrived before the attribution, in business-time order."""
        if not customer.payments_count:
            return
        parked = sorted((r for r in self.customer_payments(customer) if not r.attributed),
                        key=domain.payment_record_order)
        # An unattributed customer has no attributed payment, so these are all its payments and
        # the decided numbers are the business-time ones (``first_payment_at`` is already parked[0]'s).
        for sequence, record in enumerate(parked, start=1):
            self.emit(record, customer, event, sequence=sequence)
            self.touch_payment(record)

    def on_customer_created(self, event: StoredEvent, data: dict) -> None:
        ws = event.workspace_id
        ids = _Ids.of(event, data)
        customer, _ = self.find_customer(ws, ids)
        if customer is None:
            if not ids.any():
                self.refuse(event, AttributionRefusal.Kind.INVALID_EVENT, "a signup without email or customer id")
                return
            customer = self.create_customer(event, ids, status=Customer.Status.LEAD)
        self.learn(customer, event, ids)
        product_id = domain.text(data.get("product_id"), 40)
        if not customer.name:
            customer.name = _str(data.get("name"))[:255]
        if not customer.product_id:
            customer.product_id = product_id
        if not customer.signup_event_id:
            customer.signup_event_id = event.event_id
        self.touch_customer(customer, event)
        if customer.agent_id:
            return  # first touch wins: a later signup never moves an attributed customer
        decision = self.decide(event, customer, self.touch_of(ws, data), at=event.occurred_at,
                               product_id=product_id, code_via=domain.VIA_CODE)
        if not decision.attributed:
            self.not_attributed(customer, decision, event)
            return
        self.attribute(customer, decision, event)
        customer.signup_event_id = event.event_id
        self.claim_parked(customer, event)

    def on_payment(self, event: StoredEvent, data: dict) -> None:
        ws = event.workspace_id
        payment_ref = domain.text(data.get("payment_ref"))
        amount = data.get("amount")
        currency = data.get("currency")
        if (not payment_ref or not isinstance(amount, int) or isinstance(amount, bool)
                or not isinstance(currency, str) or len(currency) != 3):
            self.refuse(event, AttributionRefusal.Kind.INVALID_EVENT,
                        "a payment needs payment_ref, an integer amount and a currency")
            return
        existing = (self.payment(ws, payment_ref) or self.twin_of(event, data, payment_ref)
                    or self.own_id_twin(event, data, payment_ref))
        if existing is not None:
            # One payment, one commission, whatever the channel (PRODUCT.md).
            existing.duplicates += 1
            self.touch_payment(existing)
            if existing.payment_ref != payment_ref:
                self.decide_by_other_report(existing, event, data)
            return
        ids = _Ids.of(event, data)
        code = domain.given_code(data.get("referral_code"))
        customer, matched_by = self.find_customer(ws, ids)
        if customer is None and (ids.any() or code):
            customer = self.create_customer(event, ids, status=Customer.Status.CUSTOMER, payment_ref=payment_ref)
            matched_by = PaymentRecord.MatchedBy.NEW_CUSTOMER
        record = _payment_row(
            workspace_id=ws, payment_ref=payment_ref, event_id=event.event_id, position=event.position,
            occurred_at=event.occurred_at, amount=amount, currency=currency.upper(),
            customer_id=customer.id if customer else "", matched_by=matched_by or PaymentRecord.MatchedBy.NONE,
        )
        self.add_payment(record)
        if customer is None:
            return
        self.learn(customer, event, ids)
        customer.payments_count += 1
        first = self.place(record, customer)
        if customer.status == Customer.Status.LEAD:
            customer.status = Customer.Status.CUSTOMER
        record.customer_cancelled = customer.status == Customer.Status.CANCELLED
        self.snapshot_support(record, customer)
        self.touch_customer(customer, event)
        if not customer.agent_id and first and (code or data.get("click_id")) and self.decide_by_payment(
                customer, event, data):
            return
        if customer.agent_id:
            # Decided order (see the module docstring): the n-th payment decided is number n.
            self.emit(record, customer, event, sequence=customer.payments_count)

    def decide_by_other_report(self, record: PaymentRecord, event: StoredEvent, data: dict) -> None:
        """The same payment reported through another channel may carry the code or click the first
        report did not (a CSV row first, then Stripe's ``pi_…`` with ``metadata.referral_code``).

        It decides as the payment-only path of ``on_payment`` would have, had this report come
        first: only for an unattributed customer's earliest payment. A redelivery under the same
        ref decides nothing again (its code was read the first time): only the event that made
        this ref the record's alias decides, as only the first report under a record's own ref
        does. Deciding again recorded a second refusal, so the refusals depended on whether the
        natural-key report or the own-id ones had arrived first.
        """
        if record.alias_event_id != event.event_id:
            return
        code = domain.given_code(data.get("referral_code"))
        if not record.customer_id or not (code or data.get("click_id")):
            return
        customer = self.customer(record.customer_id)
        if customer is None or customer.agent_id or customer.first_payment_event_id != record.event_id:
            return
        self.decide_by_payment(customer, event, data)

    def decide_by_payment(self, customer: Customer, event: StoredEvent, data: dict) -> bool:
        """The payment-only path: the payment's code or click decides, the window running to this,
        the customer's first (by business time), payment. Returns whether it attributed."""
        decision = self.decide(event, customer, self.touch_of(event.workspace_id, data), at=event.occurred_at,
                               product_id=domain.text(data.get("product_id"), 40),
                               code_via=domain.VIA_PAYMENT_METADATA)
        if not decision.attributed:
            self.not_attributed(customer, decision, event)
            return False
        self.attribute(customer, decision, event)
        # Later-dated payments that arrived first are claimed with it, in business order.
        self.claim_parked(customer, event)
        return True

    def place(self, record: PaymentRecord, customer: Customer) -> bool:
        """Number ``record`` among the customer's payments by business time; is it the earliest?

        Also keeps ``first_payment_at`` (the earliest payment) and ``last_payment_at``. The common
        case, a payment dated after every known one, costs nothing; an earlier-dated (or equally
        dated) payment arriving late re-numbers the customer's payments (one query).
        ``customer.payments_count`` already counts ``record``.
        """
        if customer.payments_count == 1:
            record.sequence = 1
            customer.first_payment_at = customer.last_payment_at = record.occurred_at
            customer.first_payment_event_id = record.event_id
            return True
        if customer.last_payment_at is not None and record.occurred_at > customer.last_payment_at:
            record.sequence = customer.payments_count
            customer.last_payment_at = record.occurred_at
            return False
        ordered = self.ordered_payments_of.get(customer.id)
        if ordered is None:
            # Kept from here on (``add_payment``): a backlog of older payments re-numbers the same
            # customer at every arrival, and sorting all of its payments each time was a seventh
            # of a 100,000-event drain (bench/lag.py).
            ordered = self.ordered_payments_of[customer.id] = sorted(self.customer_payments(customer),
                                                                     key=domain.payment_record_order)
            start = 0
        else:
            # Every row before ``record`` was numbered by its rank when the list was sorted or
            # since: only ``record`` and the rows after it move.
            start = bisect_left(ordered, domain.payment_record_order(record), key=domain.payment_record_order)
        for number in range(start, len(ordered)):
            row = ordered[number]
            if row.sequence != number + 1:
                row.sequence = number + 1
                self.touch_payment(row)
        customer.first_payment_at = ordered[0].occurred_at
        customer.first_payment_event_id = ordered[0].event_id
        customer.last_payment_at = ordered[-1].occurred_at
        return ordered[0] is record

    def twin_of(self, event: StoredEvent, data: dict, payment_ref: str) -> PaymentRecord | None:
        """The natural-key payment this report (with its own id) is another report of, if any.

        On the first such report the twin records ``payment_ref`` as its alias, and the customer
        learns the report's identifiers (provider customer id, subscription), so later renewals
        and cancellations from that channel find it. See the module docstring.
        """
        key = _natural_key_of(event, data, payment_ref)
        twin = self.payment(event.workspace_id, key) if key else None
        if twin is None or twin.alias_ref not in ("", payment_ref):
            return None  # no twin, or it already stands for another payment with its own id
        if not twin.alias_ref:
            twin.alias_ref = payment_ref
            twin.alias_event_id = event.event_id
            twin.alias_position = event.position
            customer = self.customer(twin.customer_id)
            if customer is not None:
                self.learn(customer, event, _Ids.of(event, data))
                self.touch_customer(customer, event)
        return twin

    def own_id_twin(self, event: StoredEvent, data: dict, payment_ref: str) -> PaymentRecord | None:
        """The payment already reported with its own id that this natural-key report is, if any.

        The other order of ``twin_of``: a provider's ``pi_…`` first, then the same payment from the
        API without ``paymentId`` or a CSV row (email + UTC date + amount + currency). The payment
        of the customer with this email whose own natural key is this one, and which has absorbed
        no other natural-key report, takes ``payment_ref`` as its alias. Cheap when it cannot
        match: only a customer who has a payment on that day has its payments read.
        """
        if not payment_ref.startswith(NATURAL_KEY_PREFIX):
            return None
        email = domain.normalise_email(data.get("email"))
        customer = self.customer_by_email(event.workspace_id, email) if email else None
        if customer is None or customer.first_payment_at is None or customer.last_payment_at is None:
            return None
        day = payment_date(event.occurred_at)
        if not payment_date(customer.first_payment_at) <= day <= payment_date(customer.last_payment_at):
            return None
        for record in sorted(self.customer_payments(customer),
                             key=domain.payment_record_order):
            if record.payment_ref.startswith(NATURAL_KEY_PREFIX) or record.alias_ref not in ("", payment_ref):
                continue
            key = payment_natural_key(email=email, paid_at=record.occurred_at, amount=record.amount,
                                      currency=record.currency)
            if key != payment_ref or not self._reported_with_email(record, email):
                continue
            if not record.alias_ref:
                record.alias_ref = payment_ref
                record.alias_event_id = event.event_id
                record.alias_position = event.position
            return record
        return None

    def _reported_with_email(self, record: PaymentRecord, email: str) -> bool:
        """Did the event that first reported ``record`` carry ``email``?

        ``twin_of`` pairs the two reports by the own-id event's email, not by the customer it
        matched; asking the same here makes the pairing independent of which report arrives
        first. One read of one stored event, only for a payment that already matches on day,
        amount and currency.
        """
        data = Event.objects.filter(event_id=record.event_id).values_list("data", flat=True).first()
        return isinstance(data, dict) and domain.normalise_email(data.get("email")) == email

    def snapshot_support(self, record: PaymentRecord, customer: Customer) -> None:
        """Copy the customer's support assignment onto the payment, if its enrollment is still active."""
        if not customer.support_agent_id:
            return
        state = self.code_of_enrollment(record.workspace_id, customer.support_enrollment_id)
        if state is None or state.status != ReferralCode.Status.APPROVED:
            return
        record.support_agent_id = customer.support_agent_id
        record.support_enrollment_id = customer.support_enrollment_id
        record.support_terms = customer.support_terms
        record.support_event_id = customer.support_event_id

    def customer_named(self, event: StoredEvent, data: dict) -> Customer | None:
        """Find the customer an operator or cancellation event names (id, subscription, ref, provider, email)."""
        ws = event.workspace_id
        customer = self.customer(domain.text(data.get("customer_id"), 40))
        if customer is not None and customer.workspace_id == ws:
            return customer
        sub = domain.text(data.get("subscription_ref"))
        if sub:
            customer = self.customer_by_subscription(ws, sub)
            if customer is not None:
                return customer
        return self.find_customer(ws, _Ids.of(event, data))[0]

    def on_cancelled(self, event: StoredEvent, data: dict) -> None:
        customer = self.customer_named(event, data)
        if customer is None or customer.status == Customer.Status.CANCELLED:
            return
        customer.status = Customer.Status.CANCELLED
        customer.cancelled_at = event.occurred_at
        customer.cancelled_event_id = event.event_id
        self.touch_customer(customer, event)

    def on_support_assigned(self, event: StoredEvent, data: dict) -> None:
        ws = event.workspace_id
        agent_id = domain.text(data.get("agent_id"), 40)
        customer = self.customer_named(event, data)
        if customer is None:
            ids = _Ids.of(event, data)
            if not ids.any() or not agent_id:
                self.refuse(event, AttributionRefusal.Kind.INVALID_EVENT, "support.assigned names no customer")
                return
            customer = self.create_customer(event, ids, status=Customer.Status.LEAD)
            self.learn(customer, event, ids)
        state = domain.choose_enrollment(
            [v for v in (_code_view(r) for r in self.codes_of_agent(ws, agent_id)) if v is not None],
            prefer_product=customer.product_id)
        if state is None:
            self.refuse(event, AttributionRefusal.Kind.SUPPORT_REFUSED,
                        f"agent {agent_id or '?'} has no approved enrollment", customer_id=customer.id,
                        agent_id=agent_id)
            return
        row = self.code(ws, state.code)
        if row is None:  # unreachable: the state was built from this row
            return
        customer.support_agent_id = row.agent_id
        customer.support_enrollment_id = row.enrollment_id
        customer.support_terms = row.terms
        customer.support_event_id = event.event_id
        self.touch_customer(customer, event)

    def on_support_unassigned(self, event: StoredEvent, data: dict) -> None:
        customer = self.customer_named(event, data)
        agent_id = domain.text(data.get("agent_id"), 40)
        if customer is None or not customer.support_agent_id:
            return
        if agent_id and agent_id != customer.support_agent_id:
            return
        customer.support_agent_id = ""
        customer.support_enrollment_id = ""
        customer.support_terms = None
        customer.support_event_id = ""
        self.touch_customer(customer, event)

    def on_reassigned(self, event: StoredEvent, data: dict) -> None:
        """Move a customer to another agent: the only way; later payments follow, earlier ones stay."""
        ws = event.workspace_id
        agent_id = domain.text(data.get("agent_id"), 40)
        reason = _str(data.get("reason"))
        customer = self.customer_named(event, data)
        if customer is None:
            self.refuse(event, AttributionRefusal.Kind.REASSIGNMENT_REFUSED,
                        "the reassignment names no known customer", agent_id=agent_id)
            return
        enrollment_id = domain.text(data.get("enrollment_id"), 40)
        if enrollment_id:
            row = self.code_of_enrollment(ws, enrollment_id)
            state = _code_view(row) if row is not None and row.agent_id == agent_id else None
            if state is not None and state.status != ReferralCode.Status.APPROVED:
                state = None
        else:
            state = domain.choose_enrollment(
                [v for v in (_code_view(r) for r in self.codes_of_agent(ws, agent_id)) if v is not None],
                prefer_product=customer.product_id)
        if state is None:
            self.refuse(event, AttributionRefusal.Kind.REASSIGNMENT_REFUSED,
                        f"agent {agent_id or '?'} has no approved enrollment", customer_id=customer.id,
                        agent_id=agent_id)
            return
        if customer.email and state.agent_email and customer.email == state.agent_email:
            self.refuse(event, AttributionRefusal.Kind.SELF_REFERRAL,
                        f"reassignment to the customer's own email ({customer.email}) refused",
                        customer_id=customer.id, code=state.code, agent_id=state.agent_id)
            return
        previous = customer.agent_id
        decision = domain.Decision(
            True, state.code, domain.VIA_REASSIGNMENT, "",
            f"reassigned from {previous or 'nobody'} to {state.agent_id}: {reason or 'no reason given'}")
        self.attribute(customer, decision, event)
        self.touch_customer(customer, event)


class _Ids:
    """The customer identifiers an event carries, normalised."""

    __slots__ = ("email", "pcid", "provider", "ref", "subscription")

    def __init__(self, ref: str, email: str, provider: str, pcid: str, subscription: str) -> None:
        self.ref, self.email, self.provider, self.pcid, self.subscription = ref, email, provider, pcid, subscription

    @classmethod
    def of(cls, event: StoredEvent, data: dict) -> _Ids:
        return cls(domain.text(data.get("customer_ref")), domain.normalise_email(data.get("email"))[:254],
                   _provider(event, data), domain.text(data.get("provider_customer_id")),
                   domain.text(data.get("subscription_ref")))

    def any(self) -> bool:
        return bool(self.ref or self.email or self.pcid)


def _add_payment_refs(refs: defaultdict[str, set[str]], event: StoredEvent, data: dict) -> None:
    """Add the refs a payment event's row may be stored under, by workspace: its own, and its natural key's."""
    payment_ref = domain.text(data.get("payment_ref"))
    if payment_ref:
        found = refs[event.workspace_id]
        found.add(payment_ref)
        twin_key = _natural_key_of(event, data, payment_ref)
        if twin_key:
            found.add(twin_key)


def _natural_key_of(event: StoredEvent, data: dict, payment_ref: str) -> str:
    """The natural key of a payment reported with its own id and an email, else ``""``.

    ``""`` for a ref that already is a natural key, a payment without ``email``, or one whose
    amount or currency are unusable (``on_payment`` refuses those anyway).
    """
    if payment_ref.startswith(NATURAL_KEY_PREFIX):
        return ""
    email = domain.normalise_email(data.get("email"))
    amount, currency = data.get("amount"), data.get("currency")
    if (not email or not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str)
            or len(currency) != 3):
        return ""
    try:
        return payment_natural_key(email=email, paid_at=event.occurred_at, amount=amount, currency=currency)
    except (TypeError, ValueError):
        return ""


def _provider(event: StoredEvent, data: dict) -> str:
    return (domain.text(data.get("provider"), 20) or event.source).lower()


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _click_view(click: Click | None) -> domain.ClickView | None:
    if click is None:
        return None
    return domain.ClickView(click.click_id, click.event_id, click.referral_code, click.occurred_at)


def _code_view(row: ReferralCode | None) -> domain.CodeView | None:
    if row is None:
        return None
    return domain.CodeView(row.code, row.status, row.agent_id, row.agent_email, row.product_id, row.terms or {})


_HANDLERS = {
    "enrollment.approved": _UnitOfWork.on_enrollment,
    "enrollment.rejected": _UnitOfWork.on_enrollment,
    "enrollment.removed": _UnitOfWork.on_enrollment,
    "click.recorded": _UnitOfWork.on_click,
    "customer.created": _UnitOfWork.on_customer_created,
    "payment.succeeded": _UnitOfWork.on_payment,
    "subscription.cancelled": _UnitOfWork.on_cancelled,
    "support.assigned": _UnitOfWork.on_support_assigned,
    "support.unassigned": _UnitOfWork.on_support_unassigned,
    "attribution.reassigned": _UnitOfWork.on_reassigned,
}
