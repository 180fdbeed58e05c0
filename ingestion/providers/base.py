"""The small interface every payment provider implements: a verifier, a normaliser, a mapping table.

A provider module subclasses ``Provider``, sets its ``name`` (the URL segment and the event store
``source``), the headers worth keeping on a delivery, and a ``mapping`` from the provider's own
event type to a function that turns one verified payload into canonical events. The webhook
service (``ingestion.webhooks``) does everything else: recording, secrets, appending, verdicts.

Helpers here are the ones several providers need: reading nested JSON safely, minor-unit money,
timestamps, referral codes from metadata. They raise ``PayloadError`` for anything that cannot be
represented exactly, never guess.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from ..money import MoneyError, exponent, normalise_currency, to_minor

# Where a checkout, customer or transaction carries the agent's referral code (PRODUCT.md).
REFERRAL_KEY = "refairn_code"
_MAX_SOURCE_EVENT_ID = 255


class SignatureError(Exception):
    """The request is not proven to come from the provider; answered 400, appends nothing.

    ``code`` is machine-readable (``missing_signature``, ``invalid_signature``,
    ``stale_signature``, ``future_signature``, ``malformed_signature``); the message never
    contains a secret or an expected signature.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PayloadError(Exception):
    """A verified payload that cannot be normalised (missing field, inexact amount, bad JSON)."""


@dataclass(frozen=True)
class Canonical:
    """One canonical event produced from a provider payload (before it gets a store position)."""

    type: str
    data: dict[str, Any]
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Envelope:
    """What a mapping function receives: the verified payload and what the provider said about it."""

    provider: str
    type: str
    key: str
    occurred_at: datetime
    payload: Any
    headers: Mapping[str, str]
    context: NormaliseContext


@dataclass(frozen=True)
class Normalised:
    """The canonical reading of one provider request: its type, dedupe key and events."""

    provider_type: str
    key: str
    occurred_at: datetime
    events: list[Canonical] = field(default_factory=list)

    def source_event_id(self, event: Canonical) -> str:
        """Derive a stable ``source_event_id`` per canonical type from the provider's event key.

        The canonical type is part of it so one request can yield several events, and so a
        re-normalisation after a mapping fix appends the newly mapped event instead of matching
        an earlier ``provider.ignored`` twin.
        """
        value = f"{self.key}:{event.type}"
        if len(value) > _MAX_SOURCE_EVENT_ID:
            value = "sha256:" + hashlib.sha256(value.encode()).hexdigest() + f":{event.type}"
        return value


@dataclass(frozen=True)
class NormaliseContext:
    """Read-only answers a normaliser may need from earlier events of the same workspace.

    * ``find_payment(provider, provider_payment_id)`` returns the data of an earlier
      ``payment.succeeded`` (Flutterwave refunds name the transaction id but not its currency);
    * ``refunded_before(provider, payment_ref)`` returns the refunded total already stored for a
      payment (LemonSqueezy reports only running totals; this refund's own amount is the step);
    * ``linked_payment(provider, alias)`` returns the ``payment_ref`` an earlier event linked an
      alias to (Stripe basil: ``invoice_payment.paid`` is the only link from ``pi_…`` to ``in_…``).

    The defaults answer "nothing stored", so a normaliser stays usable outside a request.
    """

    workspace_id: str
    find_payment: Callable[[str, str], dict[str, Any] | None] = lambda provider, ref: None
    refunded_before: Callable[[str, str], int] = lambda provider, ref: 0
    linked_payment: Callable[[str, str], str | None] = lambda provider, alias: None


Mapper = Callable[[Envelope], list[Canonical]]


class Provider:
    """Base class: verify raw bytes, parse once, normalise through the mapping table."""

    name: ClassVar[str] = ""
    # Header names (lower case) kept on the delivery row. Never list a header that carries a
    # secret verbatim; ``redacted_headers`` are kept as "[redacted]" so their presence shows.
    recorded_headers: ClassVar[tuple[str, ...]] = ()
    redacted_headers: ClassVar[tuple[str, ...]] = ()
    mapping: ClassVar[dict[str, Mapper]] = {}
    # Where in the dashboard the secret comes from, for error messages and the README.
    secret_hint: ClassVar[str] = "the webhook signing secret"

    def verify(self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: float) -> None:
        """Raise ``SignatureError`` unless one of ``secrets`` signed ``body`` (constant time)."""
        raise NotImplementedError

    def parse(self, body: bytes) -> Any:
        """Parse the verified body once; amounts that are JSON numbers become ``Decimal``."""
        try:
            return json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"body is not valid JSON ({exc.__class__.__name__})") from None

    def event_type(self, payload: Any, headers: Mapping[str, str]) -> str:
        raise NotImplementedError

    def event_key(self, payload: Any, event_type: str, body: bytes) -> str:
        """Return the dedupe key: the provider's event id, or its documented composite."""
        raise NotImplementedError

    def occurred_at(self, payload: Any, event_type: str) -> datetime | None:
        return None

    def mapper_for(self, provider_type: str) -> Mapper | None:
        """Return the mapping function for a provider event type (``None``: not relevant here)."""
        return self.mapping.get(provider_type)

    def normalise(self, payload: Any, *, body: bytes, headers: Mapping[str, str],
                  context: NormaliseContext, received_at: datetime) -> Normalised:
        """Map one verified payload to canonical events; unmapped types become ``provider.ignored``."""
        if not isinstance(payload, dict):
            raise PayloadError("the payload is not a JSON object")
        provider_type = self.event_type(payload, headers)
        key = self.event_key(payload, provider_type, body)
        occurred_at = self.occurred_at(payload, provider_type) or received_at
        envelope = Envelope(self.name, provider_type, key, occurred_at, payload, headers, context)
        mapper = self.mapper_for(provider_type)
        events = mapper(envelope) if mapper is not None else []
        if not events:
            events = [Canonical("provider.ignored", {"provider": self.name, "provider_type": provider_type})]
        return Normalised(provider_type, key, occurred_at, events)


# --- helpers -------------------------------------------------------------------------------


# Paths are the mappings' literals: each is split once, not on every call (dig runs a dozen times
# per webhook).
_PATHS: dict[str, tuple[str, ...]] = {}


def dig(value: Any, path: str, default: Any = None) -> Any:
    """Return ``value["a"]["b"]`` for path ``"a.b"``, or ``default`` when any step is missing."""
    parts = _PATHS.get(path)
    if parts is None:
        parts = tuple(path.split("."))
        if len(_PATHS) < 512:  # bounded, should a caller ever build paths from data
            _PATHS[path] = parts
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return default
        if value is None:
            return default
    return value


def require(value: Any, path: str) -> Any:
    """Like ``dig`` but a missing or empty value is a ``PayloadError`` naming the path."""
    found = dig(value, path)
    if found is None or found == "":
        raise PayloadError(f"missing {path}")
    return found


def same(given: str, expected: str) -> bool:
    """Compare two strings in constant time (as bytes, so any header value is accepted)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def text(value: Any) -> str:
    """Return a clean string for canonical data (PostgreSQL refuses NUL in text and jsonb)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        value = format(value, "f")
    return str(value).replace("\x00", "").strip()


def email(value: Any) -> str:
    """Trim and lower-case an email, as attribution matches them (PRODUCT.md)."""
    return text(value).lower()


def currency(value: Any) -> str:
    try:
        return normalise_currency(value)
    except MoneyError as exc:
        raise PayloadError(str(exc)) from None


def minor_units(amount: Any, code: str, *, path: str) -> int:
    """Read an amount already in the provider's minor units: an int, or a string of digits."""
    if isinstance(amount, bool) or amount is None:
        raise PayloadError(f"missing or invalid amount at {path}")
    if isinstance(amount, int):
        value = amount
    elif isinstance(amount, str) and amount.strip().lstrip("-").isdigit():
        value = int(amount.strip())
    elif isinstance(amount, Decimal) and amount == amount.to_integral_value():
        value = int(amount)
    else:
        raise PayloadError(f"amount at {path} is not an integer of minor units: {amount!r}")
    if value < 0:
        raise PayloadError(f"amount at {path} is negative")
    return value


def major_to_minor(amount: Any, code: str, *, path: str, provider: str | None = None) -> int:
    """Convert a major-unit amount (JSON number parsed as ``Decimal``, or a string) exactly."""
    if isinstance(amount, bool) or amount is None or isinstance(amount, float):
        raise PayloadError(f"missing or invalid amount at {path}")
    try:
        return to_minor(amount, code, provider=provider)
    except MoneyError as exc:
        raise PayloadError(f"{path}: {exc}") from None


def provider_minor(amount: Any, code: str, *, provider: str, path: str, theirs: int | None = None) -> int:
    """Read minor units in a provider's own exponent and re-express them in ISO minor units.

    Stripe counts MGA in whole units and ISK in hundredths, where ISO gives MGA two decimals and
    ISK none; the stored amount always follows ISO (``ingestion.money.EXPONENTS``). ``theirs``
    overrides the provider's exponent (Paystack's "subunit" is always a hundredth).
    """
    value = minor_units(amount, code, path=path)
    if theirs is None:
        theirs = exponent(code, provider)
    ours = exponent(code)
    if theirs == ours:
        return value
    scaled = Decimal(value).scaleb(ours - theirs)
    if scaled != scaled.to_integral_value():
        raise PayloadError(f"{path}: {amount!r} {code} is not a whole amount in ISO minor units")
    return int(scaled)


def from_unix(value: Any) -> datetime | None:
    """Unix seconds (int or digit string) to an aware UTC datetime."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_unix_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> datetime | None:
    """ISO-8601 / RFC 3339 (``Z`` or offset, any fraction digits) to an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip().replace(" ", "T", 1)
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    # Python < 3.11 accepted only 3 or 6 fraction digits; normalise to 6 for safety.
    if "." in raw:
        head, _, rest = raw.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits):]
        raw = f"{head}.{(digits + '000000')[:6]}{tail}"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def referral_code(*carriers: Any) -> str | None:
    """Return the first ``refairn_code`` found in the given metadata objects, upper-cased.

    A carrier may be a dict, a JSON string of a dict (Paystack accepts that), or the empty
    values providers send when nothing was set (``0``, ``""``, ``null``).
    """
    for carrier in carriers:
        found = _code_in(carrier)
        if found:
            return found
    return None


def _code_in(carrier: Any) -> str | None:
    if isinstance(carrier, str) and carrier.strip().startswith("{"):
        try:
            carrier = json.loads(carrier)
        except ValueError:
            return None
    if not isinstance(carrier, dict):
        return None
    value = carrier.get(REFERRAL_KEY)
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        code = text(value).upper()
        return code or None
    return None


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is ``None`` or ``""`` (optional canonical fields stay absent)."""
    return {k: v for k, v in data.items() if v is not None and v != ""}
