"""Natural keys shared by every receiver, so one payment gets one ``payment_ref`` whatever the channel.

PRODUCT.md ("One payment, one commission, whatever the channel"): a payment without a provider
charge id or a caller ``paymentId`` is identified by email + payment date + amount + currency.
The CSV importer and the API's ``payment-succeeded`` endpoint both build that ``payment_ref`` with
``payment_natural_key`` and nothing else; if the string differed by one character between them,
the same payment reported twice would earn twice.

The format (``nk:`` prefix, fields joined with ``|``):

    nk:<email trimmed, lower-cased>|<YYYY-MM-DD, UTC date of the payment>|<amount, integer minor units>|<ISO code>

e.g. ``nk:ada@example.com|2024-05-01|9900|USD``. Amounts are minor units, so ``99``, ``99.0`` and
``99.00`` USD give the same key; the date is the UTC calendar date, so an API payment at
``2024-05-01T23:30:00-02:00`` (``2024-05-02`` in UTC) matches a CSV row dated ``2024-05-02``.
A key longer than ``NATURAL_KEY_MAX`` characters (only with very long emails) is replaced by a
SHA-256 digest of the same string, so it always fits ``source_event_id`` and ``payment_ref``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

NATURAL_KEY_PREFIX = "nk:"
NATURAL_KEY_MAX = 200


def normalise_email(email: str) -> str:
    """Trim and lower-case; plus-addressing is kept as given (PRODUCT.md, Attribution)."""
    return email.strip().lower()


def payment_date(paid_at: date | datetime) -> date:
    """Return the UTC calendar date of a payment time (a ``date`` is taken as already UTC)."""
    if isinstance(paid_at, datetime):
        if paid_at.tzinfo is None:
            raise ValueError("a payment time must be timezone-aware")
        return paid_at.astimezone(UTC).date()
    return paid_at


def payment_natural_key(*, email: str, paid_at: date | datetime, amount: int, currency: str) -> str:
    """Return the ``payment_ref`` of a payment that has no provider or caller id.

    ``amount`` is integer minor units (never a float or a decimal string), ``currency`` an ISO
    4217 code, ``paid_at`` the payment time (aware datetime) or its UTC date.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amount must be an integer number of minor units")
    key = "|".join((normalise_email(email), payment_date(paid_at).isoformat(), str(amount),
                    currency.strip().upper()))
    full = NATURAL_KEY_PREFIX + key
    if len(full) <= NATURAL_KEY_MAX:
        return full
    return NATURAL_KEY_PREFIX + "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def customer_email_key(email: str) -> str:
    """Return the CSV ``source_event_id`` of a customer's ``customer.created`` (one per email)."""
    key = "customer:" + normalise_email(email)
    if len(key) <= NATURAL_KEY_MAX:
        return key
    return "customer:sha256:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()
