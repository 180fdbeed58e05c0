"""A per-API-key request rate: one counter per key and time window, in the Django cache.

Why not DRF's ``SimpleRateThrottle``: it keeps a list of every request timestamp in the window and
pickles it into the cache on each request (6,000 floats at the default rate), and it binds the
rates at import, so ``override_settings`` cannot change them. A fixed-window counter costs one
``incr`` per request (two on a window's first request) and reads the rate at call time.

The cache decides the scope: the default local-memory cache counts per process; with ``CACHE_URL``
(Redis) every process of every host shares one counter per key.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Parse ``"6000/min"`` (DRF's notation: s, m, h, d by first letter) into (requests, seconds)."""
    count, _, period = rate.partition("/")
    unit = period.strip()[:1].lower()
    if unit not in _UNITS:
        raise ValueError(f"bad throttle rate {rate!r}; expected e.g. '6000/min'")
    return int(count), _UNITS[unit]


def _count(cache_key: str, timeout: int) -> int:
    """Add one to the window's counter and return it.

    On Redis: INCR and EXPIRE NX in one pipelined round trip (Django's ``cache.incr`` checks that
    the key exists first, a second round trip on every request). Elsewhere the cache API. The
    backend itself, not ``django.core.cache.cache``: that is a proxy, never a ``RedisCache``, and
    the check through it sent every counted request the two-round-trip way.
    """
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        key = cache.make_and_validate_key(cache_key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, timeout, nx=True)
        count, _ = pipe.execute()
        return int(count)
    try:
        return cache.incr(cache_key)
    except ValueError:
        # First request of the window; ``add`` loses to a concurrent first request, then incr.
        return 1 if cache.add(cache_key, 1, timeout=timeout) else cache.incr(cache_key)


class ApiKeyRateThrottle(BaseThrottle):
    """Allow at most ``DEFAULT_THROTTLE_RATES["api_key"]`` requests per key and window; then 429."""

    scope = "api_key"

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: object) -> bool:
        key_id = getattr(request.auth, "id", None)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if key_id is None or not rate:
            # Unauthenticated requests are refused (401) before any work; nothing to count.
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        cache_key = f"rf:rate:{key_id}:{period}:{window}"
        try:
            count = _count(cache_key, period + 1)
        except Exception as exc:  # noqa: BLE001 - a cache outage must not refuse events
            # Redis (the shared cache) is down: let the request through uncounted rather than
            # answer 500 to events that the database can still store (issue #9 fault 7).
            logger.warning("rate counter unavailable (%s); request allowed", type(exc).__name__)
            return True
        if count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self._wait
