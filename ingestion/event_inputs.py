"""Event bodies of the API (camelCase) → canonical events (snake_case ``data``), by plain checks.

Why plain functions and not DRF serializers: this is the hot path (DESIGN.md "The HTTP surface"),
where a serializer costs more CPU than the insert. Each kind is a table of fields (``FIELDS``);
``event_from_body`` refuses unknown fields, checks each field's type and format, applies the
kind's cross-field rules, and returns a ``NewEvent`` ready for ``event_append``. The same tables
generate the OpenAPI request schemas (``ingestion.api``), so the documentation cannot drift.

``source_event_id`` (the idempotency key of the store, unique per workspace and source "api"):
``eventId`` > ``Idempotency-Key`` header > the kind's own id (``paymentId``, ``refundId``,
``disputeId`` + outcome, ``customerId`` or email for a signup, …) > the natural key of a payment
(email + payment date + amount + currency: ``ingestion.natural_keys``, shared with the CSV import).
Each is prefixed by its namespace (``id:``, ``key:``, ``payment:``, …) so that a refund id can
never collide with a payment id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .api_io import invalid, parse_currency, parse_datetime, parse_email, parse_money
from .errors import ApplicationError
from .natural_keys import payment_natural_key
from .store import NewEvent
from .workspaces import PROVIDERS

SOURCE = "api"
MAX_ID = 200
# A referral code as given (trimmed) may be any printable text up to this long; longer is a mistake.
MAX_CODE = 200
# A caller's clock may run a little ahead; an event from further in the future is a mistake.
MAX_FUTURE = timedelta(days=1)

# kind in the URL / batch "type" → canonical type
KINDS: dict[str, str] = {
    "customer-created": "customer.created",
    "payment-succeeded": "payment.succeeded",
    "payment-refunded": "payment.refunded",
    "payment-disputed": "payment.disputed",
    "subscription-cancelled": "subscription.cancelled",
    "support-assigned": "support.assigned",
    "support-unassigned": "support.unassigned",
}


@dataclass(frozen=True)
class Field:
    """One body field: its camelCase name, what it holds, and whether it must be present."""

    name: str
    kind: str  # id | text | email | code | currency | amount | minor | datetime | provider | outcome
    required: bool = False
    help: str = ""
    example: Any = None
    alias_of: str | None = None


_COMMON = (
    Field("businessId", "id", True, "Your workspace id (biz_…); must be the API key's workspace.", "biz_…"),
    Field("productId", "id", True, "The product this event is about (prod_…).", "prod_…"),
    Field("eventId", "id", False, "Your own unique id for this event; a retry with the same eventId is "
          "answered 409 with the original event's id. Takes precedence over Idempotency-Key."),
)


def _when(*aliases: str, what: str) -> tuple[Field, ...]:
    main = Field("occurredAt", "datetime", False, f"When {what} (ISO 8601); defaults to now.",
                 "2024-05-01T12:00:00Z")
    return (main, *(Field(a, "datetime", False, "Alias of occurredAt.", alias_of="occurredAt") for a in aliases))


_MONEY = (
    Field("amount", "amount", False, 'Major units as a decimal string ("99.00"; "500" for JPY). '
          "Give amount or amountMinor (both must agree).", "99.00"),
    Field("amountMinor", "minor", False, "The amount in integer minor units (9900 = 99.00 USD).", 9900),
    Field("currency", "currency", True, "ISO 4217 code; its exponent decides the allowed decimals.", "USD"),
)

FIELDS: dict[str, tuple[Field, ...]] = {
    "customer-created": (
        *_COMMON,
        Field("customerId", "id", False, "Your own id for the customer; payments may reference it.", "user_4812"),
        Field("email", "email", True, "The customer's email (matched trimmed and lower-cased).",
              "jane@example.com"),
        Field("name", "text", False, "The customer's name.", "Jane Doe"),
        Field("referralCode", "code", False, "The agent's referral code, from ?ref= or the refairn_code "
              "cookie, or typed at signup.", "JANE2024"),
        Field("clickId", "id", False, "The click id from ?rf_click= or the refairn_click cookie."),
        Field("provider", "provider", False, "Payment provider that knows this customer."),
        Field("providerCustomerId", "id", False, "The provider's customer id (e.g. Stripe cus_…)."),
        *_when("signedUpAt", "createdAt", what="the customer signed up"),
    ),
    "payment-succeeded": (
        *_COMMON,
        Field("paymentId", "id", False, "Your (or the provider's) payment id; one payment earns once, whatever "
              "channel reports it. Without it the payment is identified by email + date + amount + currency.",
              "pi_3PQ1x2"),
        Field("customerId", "id", False, "Your id for the paying customer.", "user_4812"),
        Field("email", "email", False, "The paying customer's email.", "jane@example.com"),
        Field("provider", "provider", False, "Payment provider that processed the payment."),
        Field("providerCustomerId", "id", False, "The provider's customer id."),
        *_MONEY,
        Field("subscriptionId", "id", False, "The subscription this payment renews.", "sub_981"),
        Field("plan", "text", False, "Plan name.", "Pro monthly"),
        Field("referralCode", "code", False, "A referral code carried with the payment (e.g. in metadata)."),
        *_when("paymentDate", "paidAt", what="the payment succeeded"),
    ),
    "payment-refunded": (
        *_COMMON,
        Field("paymentId", "id", True, "The refunded payment.", "pi_3PQ1x2"),
        Field("refundId", "id", False, "Your (or the provider's) refund id; required unless eventId or an "
              "Idempotency-Key identifies the refund.", "re_77"),
        *_MONEY,
        Field("refundedTotal", "amount", False, "Cumulative amount refunded on the payment so far, when you "
              "report running totals (major units)."),
        Field("refundedTotalMinor", "minor", False, "refundedTotal in minor units."),
        *_when("refundedAt", "refundDate", what="the refund happened"),
    ),
    "payment-disputed": (
        *_COMMON,
        Field("paymentId", "id", True, "The disputed payment.", "pi_3PQ1x2"),
        Field("disputeId", "id", False, "The dispute id; required unless eventId or an Idempotency-Key "
              "identifies the report.", "dp_12"),
        *_MONEY,
        Field("outcome", "outcome", False, 'null or "opened" when opened, then "won" or "lost".', None),
        *_when("disputedAt", what="the dispute was opened or decided"),
    ),
    "subscription-cancelled": (
        *_COMMON,
        Field("subscriptionId", "id", False, "The cancelled subscription.", "sub_981"),
        Field("customerId", "id", False, "Your id for the customer.", "user_4812"),
        Field("email", "email", False, "The customer's email."),
        Field("provider", "provider", False, "Payment provider of the subscription."),
        Field("providerCustomerId", "id", False, "The provider's customer id."),
        *_when("cancelledAt", "canceledAt", what="the subscription was cancelled"),
    ),
    "support-assigned": (
        *_COMMON,
        Field("customerId", "id", False, "Your id for the customer (give customerId or email).", "user_4812"),
        Field("email", "email", False, "The customer's email (give customerId or email).", "jane@example.com"),
        Field("agentId", "id", True, "The agent now supporting the customer (agt_…).", "agt_…"),
        *_when("assignedAt", what="the agent was assigned"),
    ),
    "support-unassigned": (
        *_COMMON,
        Field("customerId", "id", False, "Your id for the customer (give customerId or email).", "user_4812"),
        Field("email", "email", False, "The customer's email (give customerId or email).", "jane@example.com"),
        Field("agentId", "id", True, "The agent no longer supporting the customer (agt_…).", "agt_…"),
        *_when("unassignedAt", what="the agent was unassigned"),
    ),
}

_ALLOWED: dict[str, frozenset[str]] = {kind: frozenset(f.name for f in fields) for kind, fields in FIELDS.items()}


def _check(field: Field, value: Any, prefix: str) -> Any:
    """Check one present, non-null value by its kind; return it normalised."""
    name = prefix + field.name
    kind = field.kind
    if kind == "email":
        return parse_email(value, name)
    if kind == "datetime":
        return parse_datetime(value, name)
    if kind in ("amount", "minor", "currency"):
        return value  # checked together by _money, which knows the currency
    if kind == "outcome":
        if value not in ("opened", "won", "lost"):
            raise invalid(f'{name} must be null, "opened", "won" or "lost"', name)
        return None if value == "opened" else value
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", name)
    text = value.strip()
    if not text:
        if field.required:
            raise invalid(f"{name} must not be empty", name)
        return None
    if kind == "provider":
        if text not in PROVIDERS:
            raise invalid(f"{name} must be one of {', '.join(PROVIDERS)}", name)
        return text
    if kind == "code":
        # Evidence, not a lookup key: a code no enrollment could have ("SUMMER-24", a long one) is
        # still stored, so the projector records the customer as unattributed with "unknown code"
        # instead of the signup being lost to a 400 (PRODUCT.md, Attribution).
        if len(text) > MAX_CODE:
            raise invalid(f"{name} is longer than {MAX_CODE} characters", name)
        if not text.isprintable():
            raise invalid(f"{name} must be printable characters", name)
        return text.upper()
    limit = MAX_ID if kind == "id" else 500
    if len(text) > limit:
        raise invalid(f"{name} is longer than {limit} characters", name)
    return text


def read_fields(kind: str, body: Mapping[str, Any], *, prefix: str = "",
                optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Refuse unknown fields; check each known one; return {name: value or None}.

    ``optional`` names required fields the caller supplies otherwise (e.g. a batch's productId).
    """
    allowed = _ALLOWED[kind]
    for key in body:
        if key not in allowed:
            raise invalid(f"unknown field {key!r} for {kind}", prefix + key)
    values: dict[str, Any] = {}
    for field in FIELDS[kind]:
        value = body.get(field.name)
        if value is None:
            if field.required and field.name not in optional:
                raise invalid(f"{field.name} is required", prefix + field.name)
            values[field.name] = None
            continue
        values[field.name] = _check(field, value, prefix)
    return values


def _occurred_at(kind: str, values: dict[str, Any], now: datetime, prefix: str) -> tuple[datetime, bool]:
    given = [f.name for f in FIELDS[kind] if f.kind == "datetime" and values[f.name] is not None]
    if len(given) > 1:
        raise invalid(f"give one of {', '.join(given)}, not several", prefix + given[1])
    if not given:
        return now, False
    when = values[given[0]]
    if when > now + MAX_FUTURE:
        raise invalid(f"{given[0]} is in the future", prefix + given[0])
    return when, True


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        data[key] = value


def event_from_body(kind: str, body: Mapping[str, Any], *, workspace_id: str, idempotency_key: str | None = None,
                    now: datetime | None = None, actor: str = "", prefix: str = "",
                    product_id: str | None = None, raw: dict[str, Any] | None = None) -> NewEvent:
    """Validate one event body of ``kind`` and return the canonical event to append.

    ``product_id`` supplies a productId the body may omit (a batch's default). Whether the product
    and agent exist is the caller's check (it needs the database); this function does no I/O.
    """
    values = read_fields(kind, body, prefix=prefix,
                         optional=frozenset({"productId"}) if product_id else frozenset())
    now = now or timezone.now()
    occurred_at, explicit_time = _occurred_at(kind, values, now, prefix)
    data: dict[str, Any] = {}
    product = values["productId"] or product_id
    natural: str

    if kind == "customer-created":
        data = {"email": values["email"], "name": values["name"] or "", "product_id": product}
        _put(data, "customer_ref", values["customerId"])
        _put(data, "referral_code", values["referralCode"])
        _put(data, "click_id", values["clickId"])
        _put(data, "provider", values["provider"])
        _put(data, "provider_customer_id", values["providerCustomerId"])
        natural = f"customer:id:{values['customerId']}" if values["customerId"] else f"customer:email:{values['email']}"

    elif kind == "payment-succeeded":
        currency = parse_currency(values["currency"], prefix + "currency")
        amount = parse_money(values["amount"], values["amountMinor"], currency, field=prefix + "amount")
        if not (values["customerId"] or values["email"] or values["providerCustomerId"]):
            raise invalid("a payment needs customerId, email or providerCustomerId to find its customer",
                          prefix + "email")
        if values["paymentId"]:
            payment_ref = values["paymentId"]
        elif values["email"]:
            # Without a date the payment is taken as today's (UTC), like any event without occurredAt.
            payment_ref = payment_natural_key(email=values["email"], paid_at=occurred_at, amount=amount,
                                              currency=currency)
        else:
            raise invalid("paymentId is required when no email is given", prefix + "paymentId")
        data = {"payment_ref": payment_ref, "amount": amount, "currency": currency, "product_id": product}
        _put(data, "customer_ref", values["customerId"])
        _put(data, "email", values["email"])
        _put(data, "provider", values["provider"])
        _put(data, "provider_customer_id", values["providerCustomerId"])
        _put(data, "subscription_ref", values["subscriptionId"])
        _put(data, "plan", values["plan"])
        _put(data, "referral_code", values["referralCode"])
        natural = f"payment:{payment_ref}"

    elif kind == "payment-refunded":
        currency = parse_currency(values["currency"], prefix + "currency")
        amount = parse_money(values["amount"], values["amountMinor"], currency, field=prefix + "amount")
        total = parse_money(values["refundedTotal"], values["refundedTotalMinor"], currency,
                            field=prefix + "refundedTotal", required=False)
        refund_ref = values["refundId"] or values["eventId"] or idempotency_key
        if not refund_ref:
            raise invalid("refundId is required (or an eventId / Idempotency-Key naming this refund)",
                          prefix + "refundId")
        data = {"payment_ref": values["paymentId"], "refund_ref": refund_ref, "amount": amount,
                "currency": currency, "product_id": product}
        _put(data, "refunded_total", total)
        natural = f"refund:{refund_ref}"

    elif kind == "payment-disputed":
        currency = parse_currency(values["currency"], prefix + "currency")
        amount = parse_money(values["amount"], values["amountMinor"], currency, field=prefix + "amount")
        dispute_ref = values["disputeId"] or values["eventId"] or idempotency_key
        if not dispute_ref:
            raise invalid("disputeId is required (or an eventId / Idempotency-Key naming this report)",
                          prefix + "disputeId")
        outcome = values["outcome"]
        data = {"payment_ref": values["paymentId"], "dispute_ref": dispute_ref, "amount": amount,
                "currency": currency, "outcome": outcome, "product_id": product}
        natural = f"dispute:{dispute_ref}:{outcome or 'opened'}"

    elif kind == "subscription-cancelled":
        ref = values["subscriptionId"] or values["customerId"] or values["email"] or values["providerCustomerId"]
        if not ref:
            raise invalid("give subscriptionId, customerId, email or providerCustomerId", prefix + "subscriptionId")
        data = {"product_id": product}
        _put(data, "subscription_ref", values["subscriptionId"])
        _put(data, "customer_ref", values["customerId"])
        _put(data, "email", values["email"])
        _put(data, "provider", values["provider"])
        _put(data, "provider_customer_id", values["providerCustomerId"])
        which = ("sub" if values["subscriptionId"] else "cus" if values["customerId"]
                 else "email" if values["email"] else "pcus")
        # A customer may cancel, come back and cancel again: a given time tells the two apart.
        natural = f"cancel:{which}:{ref}" + (f":{occurred_at.isoformat()}" if explicit_time else "")

    elif kind in ("support-assigned", "support-unassigned"):
        if not (values["customerId"] or values["email"]):
            raise invalid("give customerId or email", prefix + "customerId")
        data = {"agent_id": values["agentId"], "product_id": product}
        _put(data, "customer_ref", values["customerId"])
        _put(data, "email", values["email"])
        who = f"id:{values['customerId']}" if values["customerId"] else f"email:{values['email']}"
        natural = f"{kind}:{who}:{values['agentId']}" + (f":{occurred_at.isoformat()}" if explicit_time else "")

    else:  # pragma: no cover - the URL table only routes known kinds
        raise ApplicationError(f"unknown event kind {kind!r}", code="not_found", status_code=404)

    if values["eventId"]:
        source_event_id = f"id:{values['eventId']}"
    elif idempotency_key:
        source_event_id = f"key:{idempotency_key}"
    else:
        source_event_id = natural
    if len(source_event_id) > 255:
        # Fits the column without cutting off what tells two keys apart.
        source_event_id = source_event_id[:180] + ":" + hashlib.sha256(source_event_id.encode()).hexdigest()
    return NewEvent(
        workspace_id=workspace_id,
        source=SOURCE,
        source_event_id=source_event_id,
        type=KINDS[kind],
        occurred_at=occurred_at,
        data=data,
        raw=raw if raw is not None else {"body": dict(body)},
        actor=actor,
    )


def check_idempotency_key(value: str | None) -> str | None:
    """Return the ``Idempotency-Key`` header value stripped, or 400 when it is unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_ID or not value.isprintable():
        raise invalid(f"Idempotency-Key must be printable and at most {MAX_ID} characters", "Idempotency-Key")
    return value

