"""Payment-provider webhooks: the view, and the delivery services it and the console share.

Every request becomes a ``Delivery`` row with its verdict, whatever happens. The order of work is
record → verify → normalise → append, as STYLE habit 3 asks, with one deliberate change for the
hot path (issue #6): the delivery row is not committed on its own before the append. Verification
and normalisation are pure CPU on the raw bytes, so the row is inserted, with its final verdict,
in the SAME transaction as the events it produced: one commit per accepted webhook instead of
two. What habit 3 protects is kept:

* a request refused before anything is appended (unknown provider or workspace, missing secret,
  bad signature, unparseable payload) gets its row in its own short transaction;
* if the append transaction fails, it rolls back as a whole and the row is then written on its
  own with ``verdict=error`` and the reason, so a failure is never silent;
* if the process dies mid-transaction nothing was committed, the provider saw no 2xx and
  retries; nothing accepted is lost.

Verdicts: ``accepted`` (new canonical events), ``duplicate`` (every event already stored: a
redelivery, answered 200), ``ignored`` (a new ``provider.ignored`` only), ``rejected`` (not
proven authentic, or addressed to nothing: 400/404/413, nothing appended), ``error`` (verified
but not normalisable or not storable: 422/500; an operator can re-normalise it after a fix).

Secrets are read from the database on every request (no cache, so a rotation or revocation
applies to the very next delivery), are never logged, and never appear in an error message.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import BooleanField, CharField, TextField
from django.http import HttpRequest, JsonResponse
from django.http.request import HttpHeaders
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .errors import ApplicationError, error_body, error_response
from .ids import new_id
from .models import Delivery, Event, ProviderSecret, Workspace
from .providers import get_provider
from .providers.base import NormaliseContext, Normalised, PayloadError, Provider, SignatureError
from .store import NewEvent, event_append_many

logger = logging.getLogger(__name__)

# A request larger than this is refused (413) before its body is read. Provider events are a few
# kilobytes; Stripe invoices with many lines stay far below it.
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024
IGNORED = "provider.ignored"
_GENERIC_HEADERS = ("content-type", "user-agent")
# Verdicts whose signature was verified: only these may be re-normalised.
RENORMALISABLE = (Delivery.Verdict.ACCEPTED, Delivery.Verdict.DUPLICATE, Delivery.Verdict.IGNORED,
                  Delivery.Verdict.ERROR)


@dataclass
class WebhookResult:
    """What to answer, and what was recorded."""

    status: int
    body: dict[str, Any]
    delivery_id: str
    verdict: str
    event_ids: list[str] = field(default_factory=list)
    created: int = 0


# --- the view ----------------------------------------------------------------------------------


@csrf_exempt
def webhook_view(request: HttpRequest, provider: str, business_id: str) -> JsonResponse:
    """``POST /webhooks/<provider>/<businessId>``: record, verify, normalise, append, answer."""
    if request.method != "POST":
        return error_response("method_not_allowed", "Webhooks are POST requests.", 405, headers={"Allow": "POST"})
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    oversized = length > MAX_WEBHOOK_BYTES
    try:
        result = webhook_receive(
            provider_name=provider, business_id=business_id,
            body=b"" if oversized else request.body, headers=_MetaHeaders(request.META),
            remote_ip=request.META.get("REMOTE_ADDR"), oversized=oversized,
        )
    except (OperationalError, InterfaceError) as exc:
        # The database is down: nothing can be recorded; a 503 makes the provider retry.
        logger.warning("webhook not recorded, database unavailable: %s", type(exc).__name__,
                       extra={"provider": provider[:20], "business_id": business_id[:40]})
        return error_response("unavailable", "The database is unavailable; retry later.", 503,
                              headers={"Retry-After": "5"})
    return JsonResponse(result.body, status=result.status)


class _MetaHeaders(Mapping[str, str]):
    """The request's headers, read from ``META`` by name, as ``request.headers`` answers them.

    The webhook reads only the few headers its provider records, so it does not build Django's
    ``HttpHeaders`` (every header of the request, re-keyed: ~2 % of a webhook's CPU). Names are
    case-insensitive and ``Content-Type``/``Content-Length`` live unprefixed, as in ``HttpHeaders``.
    """

    __slots__ = ("_meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self._meta = meta

    @staticmethod
    def _key(name: str) -> str:
        return HttpHeaders.to_wsgi_name(name)  # as ``HttpHeaders``: "x_sig" finds X-Sig too

    def __getitem__(self, name: str) -> str:
        return self._meta[self._key(name)]

    def get(self, name: str, default: Any = None) -> Any:
        return self._meta.get(self._key(name), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._meta

    def __iter__(self) -> Iterator[str]:
        return iter(HttpHeaders(self._meta))

    def __len__(self) -> int:
        return len(HttpHeaders(self._meta))


# --- the delivery services ---------------------------------------------------------------------


def webhook_receive(*, provider_name: str, business_id: str, body: bytes, headers: Mapping[str, str],
                    remote_ip: str | None, oversized: bool = False) -> WebhookResult:
    """Handle one webhook request end to end and return the answer; the delivery is always recorded."""
    received_at = timezone.now()
    now = time.time()
    provider = get_provider(provider_name)
    delivery = Delivery(
        id=new_id("dlv"), provider=provider_name[:20], received_at=received_at, remote_ip=_ip(remote_ip),
    )
    _keep_body(delivery, body)
    if provider is None:
        delivery.headers = _kept_headers(headers, _GENERIC_HEADERS)
        return _refuse(delivery, 404, "unknown_provider", f"unknown provider {provider_name[:40]!r}")
    seen = _kept_headers(headers, provider.recorded_headers + provider.redacted_headers)
    delivery.headers = {k: ("[redacted]" if k in provider.redacted_headers else v) for k, v in seen.items()}

    secrets = active_secrets(workspace_id=business_id, provider=provider.name)
    if not secrets:
        if not Workspace.objects.filter(pk=business_id).exists():
            return _refuse(delivery, 404, "unknown_workspace", "unknown businessId")
        delivery.workspace_id = business_id
        return _refuse(delivery, 400, "no_provider_secret",
                       f"No {provider.name} secret is configured for this business: add {provider.secret_hint} "
                       f"in the admin (Provider secrets) or with `manage.py set_provider_secret`.")
    delivery.workspace_id = business_id
    if oversized:
        return _refuse(delivery, 413, "payload_too_large", f"webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
    try:
        provider.verify(body, seen, secrets, now)
    except SignatureError as exc:
        return _refuse(delivery, 400, exc.code, exc.message)
    return _process(provider, delivery, body, seen, insert=True)


def delivery_renormalise(*, delivery: Delivery, actor: str = "") -> WebhookResult:
    """Run a stored, verified delivery through the current mapping again and append what it yields.

    The signature is not re-checked (its timestamp has long expired): only deliveries that were
    verified on receipt qualify. Results dedupe like any event: what is already stored is matched,
    not appended twice; a mapping fix that now yields a different canonical type appends it.
    ``actor`` (``user:<name>``) is recorded on every event appended, so the log says which
    operator's action produced them.
    """
    if delivery.verdict not in RENORMALISABLE:
        raise ApplicationError(f"delivery {delivery.id} was {delivery.verdict}: only verified deliveries "
                               "can be re-normalised", code="not_verified")
    provider = get_provider(delivery.provider)
    if provider is None or not delivery.workspace_id:
        raise ApplicationError(f"delivery {delivery.id} has no known provider or workspace", code="not_verified")
    body = _full_body(delivery).encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (delivery.headers or {}).items()}
    return _process(provider, delivery, body, headers, insert=False, actor=actor)


# --- internals ---------------------------------------------------------------------------------


def _process(provider: Provider, delivery: Delivery, body: bytes, headers: Mapping[str, str], *,
             insert: bool, actor: str = "") -> WebhookResult:
    workspace_id = str(delivery.workspace_id)
    context = NormaliseContext(workspace_id=workspace_id, find_payment=_payment_finder(workspace_id),
                               refunded_before=_refunded_finder(workspace_id),
                               linked_payment=_link_finder(workspace_id))
    try:
        payload = provider.parse(body)
        normalised = provider.normalise(payload, body=body, headers=headers, context=context,
                                        received_at=delivery.received_at)
    except PayloadError as exc:
        return _fail(delivery, 422, "unprocessable_payload", f"verified, but not normalisable: {exc}", insert=insert)
    except Exception as exc:  # noqa: BLE001 - a mapping bug must leave an error row, never a bare 500
        logger.exception("webhook normalisation failed", extra={"provider": provider.name, "delivery_id": delivery.id})
        return _fail(delivery, 500, "normalisation_failed", f"normalisation failed ({type(exc).__name__})",
                     insert=insert, trace=traceback.format_exc())
    try:
        return _store(provider, delivery, normalised, insert=insert, actor=actor)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError as exc:
        logger.exception("webhook append failed", extra={"provider": provider.name, "delivery_id": delivery.id})
        return _fail(delivery, 500, "append_failed", f"the events could not be stored ({type(exc).__name__})",
                     insert=insert, trace=traceback.format_exc())


def _store(provider: Provider, delivery: Delivery, normalised: Normalised, *, insert: bool,
           actor: str = "") -> WebhookResult:
    """Insert the delivery row and append its events in one transaction (one commit)."""
    raw: dict[str, Any] = {"delivery_id": delivery.id, "provider_type": normalised.provider_type,
                           "provider_event_key": normalised.key}
    if delivery.body_truncated:
        # The delivery keeps a bounded prefix; the full body lives with its events instead.
        raw["body"] = _full_body(delivery)
    news = [
        NewEvent(
            workspace_id=str(delivery.workspace_id), source=provider.name,
            source_event_id=normalised.source_event_id(event), type=event.type,
            occurred_at=event.occurred_at or normalised.occurred_at, data=event.data, raw=raw, actor=actor,
        )
        for event in normalised.events
    ]
    only_ignored = all(new.type == IGNORED for new in news)
    previous = delivery.verdict
    delivery.verdict = Delivery.Verdict.IGNORED if only_ignored else Delivery.Verdict.ACCEPTED
    delivery.event_ids = [new.event_id for new in news]
    delivery.error = ""
    # The delivery row and the events commit together, in one transaction (on PostgreSQL in one
    # round trip, see ``event_append_many``). The row is corrected afterwards only when some
    # events already existed (a redelivery) or when it was stored before (a re-normalisation).
    # On PostgreSQL the delivery row goes in after the events, in the same message, with its verdict
    # and event ids read from what the insert found (``_delivery_insert_settled``): a redelivery
    # costs what a new delivery costs. Elsewhere it goes in first and is corrected just after.
    settle = insert and connection.vendor == "postgresql"
    results = event_append_many(news, before=[_delivery_insert(delivery)] if insert and not settle else [],
                                after=[_delivery_insert_settled(delivery, news)] if settle else [])
    created = sum(1 for r in results if r.created)
    if created < len(results):
        delivery.event_ids = [r.event_id for r in results]
        if created == 0:
            # A redelivery (or a re-normalisation that matched everything already stored).
            keep = not insert and previous in (Delivery.Verdict.ACCEPTED, Delivery.Verdict.IGNORED)
            delivery.verdict = previous if keep else Delivery.Verdict.DUPLICATE
    if not settle and (not insert or created < len(results)):
        _update_delivery(delivery)
    if only_ignored and created:
        logger.info("provider event ignored", extra={
            "provider": provider.name, "event_type": normalised.provider_type, "delivery_id": delivery.id})
    return WebhookResult(
        status=200,
        body={"success": True, "verdict": delivery.verdict, "deliveryId": delivery.id,
              "eventIds": delivery.event_ids},
        delivery_id=delivery.id, verdict=delivery.verdict, event_ids=delivery.event_ids, created=created,
    )


def _refuse(delivery: Delivery, status: int, code: str, message: str) -> WebhookResult:
    """Record a request that appends nothing (verdict ``rejected``) and build its error answer."""
    delivery.verdict = Delivery.Verdict.REJECTED
    delivery.error = f"{code}: {message}"
    _insert_delivery(delivery)
    logger.warning("webhook rejected: %s", code, extra={
        "provider": delivery.provider, "business_id": delivery.workspace_id, "delivery_id": delivery.id})
    return WebhookResult(status, error_body(code, message, deliveryId=delivery.id), delivery.id, delivery.verdict)


def _fail(delivery: Delivery, status: int, code: str, message: str, *, insert: bool, trace: str = "") -> WebhookResult:
    """Record a verified delivery that could not be normalised or stored (verdict ``error``).

    A failed re-normalisation leaves an accepted delivery's verdict as it was: what was stored
    from it still stands. An ``error`` delivery gets the new reason.
    """
    error = f"{code}: {message}" + (f"\n\n{trace}" if trace else "")
    if insert:
        delivery.verdict = Delivery.Verdict.ERROR
        delivery.error = error
        _insert_delivery(delivery)
    elif delivery.verdict == Delivery.Verdict.ERROR:
        delivery.error = error
        Delivery.objects.filter(pk=delivery.pk).update(error=error)
    return WebhookResult(status, error_body(code, message, deliveryId=delivery.id), delivery.id, Delivery.Verdict.ERROR)


def active_secrets(*, workspace_id: str, provider: str) -> list[str]:
    """Return the workspace's unrevoked secrets for ``provider``, newest first, read now.

    The hot-path twin of ``ingestion.workspaces.provider_secrets`` (same rows, same order; a test
    holds them equal): one plain query instead of an ORM queryset, because every webhook runs it
    and secrets are deliberately never cached (a rotation or revocation applies at once).
    """
    with connection.cursor() as cursor:
        cursor.execute(_sql()["secrets"], [workspace_id, provider])
        return [row[0] for row in cursor.fetchall()]


def _delivery_insert(delivery: Delivery) -> tuple[str, list[Any]]:
    """The INSERT of the delivery row, with the ORM's own value adaptation, without a queryset."""
    fields = Delivery._meta.concrete_fields
    values = [f.get_db_prep_save(f.pre_save(delivery, True), connection) for f in fields]
    delivery._state.adding = False
    delivery._state.db = connection.alias
    return _sql()["insert"], values


def _delivery_insert_settled(delivery: Delivery, news: list[NewEvent]) -> tuple[str, list[Any]]:
    """PostgreSQL, after the events' insert: INSERT the delivery row with the stored events' ids, in
    order, and the verdict ``duplicate`` when none of them is the one drawn here (all were in)."""
    params: list[Any] = []
    for f in Delivery._meta.concrete_fields:
        if f.name == "verdict":
            params.extend([Delivery.Verdict.DUPLICATE, delivery.verdict])
        elif f.name != "event_ids":
            params.append(_prep_save(f, getattr(delivery, f.attname)))
    for order, new in enumerate(news):
        params.extend([order, new.workspace_id, new.source, new.source_event_id, new.event_id])
    delivery._state.adding = False
    delivery._state.db = connection.alias
    return _settled_sql(len(news)), params


_SETTLED_SQL: dict[tuple[str, int], str] = {}


def _settled_sql(count: int) -> str:
    """The statement of ``_delivery_insert_settled`` for ``count`` events, built once per count.

    Building it per request (and preparing every field through ``pre_save``) was 9 % of a
    webhook's CPU under cProfile; the text depends only on the models and the count.
    """
    found = _SETTLED_SQL.get((connection.vendor, count))
    if found is None:
        quote = connection.ops.quote_name
        fields = Delivery._meta.concrete_fields
        selects = ["found.ids" if f.name == "event_ids"
                   else "CASE WHEN found.created = 0 THEN %s ELSE %s END" if f.name == "verdict" else "%s"
                   for f in fields]
        values = ", ".join(["(%s::int, %s, %s, %s, %s)"] * count)
        found = (
            f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {', '.join(selects)} "
            f"FROM (SELECT jsonb_agg(e.event_id ORDER BY v.ord) AS ids, "
            f"count(*) FILTER (WHERE e.event_id = v.mine) AS created "
            f"FROM (VALUES {values}) AS v(ord, ws, src, sid, mine) JOIN ingestion_event e "
            f"ON e.workspace_id = v.ws AND e.source = v.src AND e.source_event_id = v.sid) AS found"
        )
        _SETTLED_SQL[(connection.vendor, count)] = found
    return found


def _prep_save(f: Any, value: Any) -> Any:
    """``f.get_db_prep_save(f.pre_save(delivery, True))`` for the delivery's fields, which have no
    ``pre_save`` of their own; a ``str`` in a char or text column, or a ``bool``, is sent as it is."""
    if (type(value) is str and type(f) in _TEXT_FIELDS) or (type(value) is bool and type(f) is BooleanField):
        return value
    return f.get_db_prep_save(value, connection)


_TEXT_FIELDS = (CharField, TextField)


def _insert_delivery(delivery: Delivery) -> None:
    sql, values = _delivery_insert(delivery)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def _update_delivery(delivery: Delivery) -> None:
    meta = Delivery._meta
    values = [meta.get_field(name).get_db_prep_save(getattr(delivery, name), connection)
              for name in ("verdict", "event_ids", "error")]
    with connection.cursor() as cursor:
        cursor.execute(_sql()["update"], [*values, delivery.pk])


_SQL: dict[str, dict[str, str]] = {}


def _sql() -> dict[str, str]:
    """Statements for the current backend, built once from the models' metadata."""
    found = _SQL.get(connection.vendor)
    if found is None:
        quote = connection.ops.quote_name
        delivery = Delivery._meta
        secret = ProviderSecret._meta
        columns = [quote(f.column) for f in delivery.concrete_fields]
        col = {name: quote(secret.get_field(name).column)
               for name in ("secret", "workspace", "provider", "revoked_at", "created_at")}
        updated = ", ".join(f"{quote(delivery.get_field(n).column)} = %s" for n in ("verdict", "event_ids", "error"))
        found = {
            "secrets": (f"SELECT {col['secret']} FROM {quote(secret.db_table)} WHERE {col['workspace']} = %s "
                        f"AND {col['provider']} = %s AND {col['revoked_at']} IS NULL "
                        f"ORDER BY {col['created_at']} DESC"),
            "insert": (f"INSERT INTO {quote(delivery.db_table)} ({', '.join(columns)}) "
                       f"VALUES ({', '.join(['%s'] * len(columns))})"),
            "update": f"UPDATE {quote(delivery.db_table)} SET {updated} WHERE {quote(delivery.pk.column)} = %s",
        }
        _SQL[connection.vendor] = found
    return found


def _payment_finder(workspace_id: str) -> Any:
    def find(provider: str, provider_payment_id: str) -> dict[str, Any] | None:
        return (
            Event.objects.filter(workspace_id=workspace_id, source=provider, type="payment.succeeded",
                                 data__provider_payment_id=provider_payment_id)
            .order_by("position").values_list("data", flat=True).first()
        )

    return find


def _refunded_finder(workspace_id: str) -> Any:
    """The refunded total already stored for a payment: the highest running total, else the sum.

    Queried only by refund normalisers (rare next to payments), never on the payment path.
    """

    def refunded(provider: str, payment_ref: str) -> int:
        rows = Event.objects.filter(workspace_id=workspace_id, source=provider, type="payment.refunded",
                                    data__payment_ref=payment_ref).values_list("data", flat=True)
        running, summed = 0, 0
        for data in rows:
            total, amount = data.get("refunded_total"), data.get("amount")
            if isinstance(total, int) and not isinstance(total, bool):
                running = max(running, total)
            elif isinstance(amount, int) and not isinstance(amount, bool):
                summed += amount
        return max(running, summed)

    return refunded


def _link_finder(workspace_id: str) -> Any:
    """The payment an earlier ``provider.ignored`` linked an alias to (Stripe ``invoice_payment.paid``)."""

    def linked(provider: str, alias: str) -> str | None:
        data = (
            Event.objects.filter(workspace_id=workspace_id, source=provider, type=IGNORED, data__link__alias=alias)
            .order_by("position").values_list("data", flat=True).first()
        )
        ref = (data or {}).get("link", {}).get("payment_ref")
        return ref if isinstance(ref, str) and ref else None

    return linked


def _keep_body(delivery: Delivery, body: bytes) -> None:
    limit = settings.REFAIRN_MAX_BODY_BYTES
    delivery.body_truncated = len(body) > limit
    delivery._full_body = body  # type: ignore[attr-defined]  # for events' raw when truncated
    delivery.body = _clean(body[:limit].decode("utf-8", "replace"))


def _full_body(delivery: Delivery) -> str:
    full = getattr(delivery, "_full_body", None)
    if full is not None:
        return _clean(full.decode("utf-8", "replace"))
    if not delivery.body_truncated:
        return delivery.body
    for raw in Event.objects.filter(event_id__in=delivery.event_ids or []).values_list("raw", flat=True):
        if isinstance(raw, dict) and isinstance(raw.get("body"), str):
            return raw["body"]
    raise ApplicationError(f"delivery {delivery.id} kept only the first {settings.REFAIRN_MAX_BODY_BYTES} bytes "
                           "of its body; it cannot be re-normalised", code="body_truncated")


def _kept_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    kept = {}
    for name in names:
        value = headers.get(name)
        if value:
            kept[name] = _clean(str(value))[:2000]
    return kept


def _clean(value: str) -> str:
    # PostgreSQL refuses NUL in text and jsonb.
    return value.replace("\x00", "\ufffd")


@lru_cache(maxsize=1024)
def _ip(value: str | None) -> str | None:
    # Cached: webhooks come from a few provider addresses, and parsing one was ~2 % of a webhook's CPU.
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None
