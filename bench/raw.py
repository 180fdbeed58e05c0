"""The lean reference: the least work a signed-webhook endpoint can do, with one raw INSERT.

Verify a Stripe-style signature (HMAC-SHA256 over ``"t." + body``, 300 s tolerance) with a
secret from settings, ``json.loads`` the body, check the few fields it needs, run one
``INSERT … ON CONFLICT DO NOTHING`` of a ~1.5 KB jsonb row into ``bench_event`` (no lock, no
other query), answer a small JSON. It is the ceiling for a request that stores one event through
gunicorn and Django on this machine; the real endpoints are compared with it.
"""

from __future__ import annotations

import hmac
import json
import time
from datetime import UTC, datetime
from hashlib import sha256

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ingestion.ids import new_id

TOLERANCE_SECONDS = 300
_INSERT = (
    "INSERT INTO bench_event (event_id, workspace_id, source, source_event_id, type, occurred_at, "
    "recorded_at, data, raw, schema_version, actor) "
    "VALUES (%s, %s, 'stripe', %s, %s, %s, %s, %s::jsonb, %s::jsonb, 1, '') "
    "ON CONFLICT (workspace_id, source, source_event_id) DO NOTHING RETURNING position"
)


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": {"code": "invalid", "message": message}}, status=status)


def _signature_ok(body: bytes, header: str) -> bool:
    timestamp = None
    signatures = []
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or timestamp < time.time() - TOLERANCE_SECONDS:
        return False
    expected = hmac.new(settings.BENCH_RAW_SECRET.encode(), f"{timestamp}.".encode() + body, sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


@csrf_exempt
def raw_insert(request: HttpRequest, business_id: str) -> JsonResponse:
    if request.method != "POST":
        return _bad("POST only", 405)
    body = request.body
    if not _signature_ok(body, request.headers.get("Stripe-Signature", "")):
        return _bad("bad signature")
    try:
        payload = json.loads(body)
        event_id = payload["id"]
        event_type = payload["type"]
        created = payload["created"]
        obj = payload["data"]["object"]
        amount = obj["amount_paid"]
        currency = obj["currency"]
    except (ValueError, KeyError, TypeError):
        return _bad("malformed event")
    if not (isinstance(event_id, str) and isinstance(event_type, str) and isinstance(created, int)
            and isinstance(amount, int) and isinstance(currency, str) and len(currency) == 3):
        return _bad("malformed event")
    data = {"payment_ref": obj.get("id"), "customer_ref": obj.get("customer"), "amount": amount,
            "currency": currency.upper(), "email": obj.get("customer_email")}
    stored_id = new_id("evt", 24)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [
            stored_id, business_id, event_id, event_type, datetime.fromtimestamp(created, UTC),
            datetime.now(UTC), json.dumps(data, separators=(",", ":")), body.decode(),
        ])
        row = cursor.fetchone()
    return JsonResponse({"success": True, "eventId": stored_id, "position": row[0] if row else None})
