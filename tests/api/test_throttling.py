"""The per-key request rate: past it, 429 with Retry-After; other keys are not affected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from ingestion.models import Event
from ingestion.throttling import parse_rate
from ingestion.workspaces import CreatedWorkspace
from tests.api.conftest import Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_rate(settings: Any) -> Iterator[None]:
    """Two requests per day per key (the setting is read at call time). A day rather than a minute, so
    that a window boundary falling between two requests of a test is practically impossible."""
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "2/day"}}
    yield
    cache.clear()


@pytest.mark.smoke
@pytest.mark.usefixtures("tiny_rate")
def test_past_the_rate_is_429_with_retry_after(event: Post) -> None:
    """The third request in the window answers 429 with Retry-After in seconds, and appends nothing."""
    assert event("customer-created", email="a@b.co").status_code == 200
    assert event("customer-created", email="b@b.co").status_code == 200
    response = event("customer-created", email="c@b.co")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 86400
    assert Event.objects.count() == 2


@pytest.mark.usefixtures("tiny_rate")
def test_the_rate_is_per_key(event: Post, other_api: APIClient, other_tenant: CreatedWorkspace) -> None:
    """One key over its rate does not slow down another workspace's key."""
    for email in ("a@b.co", "b@b.co", "c@b.co"):
        event("customer-created", email=email)
    response = other_api.post("/api/events/customer-created", {
        "businessId": other_tenant.workspace.id, "productId": other_tenant.product.id, "email": "a@b.co"},
        format="json")
    assert response.status_code == 200


@pytest.mark.usefixtures("tiny_rate")
def test_reads_count_against_the_same_rate(api: APIClient) -> None:
    """Every API endpoint shares the key's rate."""
    assert [api.get("/api/events").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.usefixtures("tiny_rate")
def test_unauthenticated_requests_are_401_not_429(ids: dict[str, str]) -> None:
    """Requests without a key are refused as unauthenticated, never counted."""
    client = APIClient()
    statuses = [client.post("/api/events/customer-created", {**ids, "email": "a@b.co"}, format="json").status_code
                for _ in range(3)]
    assert statuses == [401, 401, 401]


def test_the_default_rate_allows_normal_traffic(event: Post) -> None:
    """At the default rate a burst of requests passes."""
    cache.clear()
    assert {event("customer-created", email=f"{n}@b.co").status_code for n in range(20)} == {200}


@pytest.mark.parametrize(("rate", "parsed"), [("6000/min", (6000, 60)), ("10/s", (10, 1)), ("5/hour", (5, 3600)),
                                              ("100/day", (100, 86400))])
def test_rates_use_drf_notation(rate: str, parsed: tuple[int, int]) -> None:
    """Rates read like DRF's: a count per second, minute, hour or day."""
    assert parse_rate(rate) == parsed


@pytest.mark.redis
def test_on_redis_a_request_is_counted_in_one_pipelined_round_trip(settings: Any, monkeypatch: pytest.MonkeyPatch):
    """INCR and EXPIRE NX together: Django's ``incr`` (a round trip to check the key, then another) is not used."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from ingestion.throttling import _count
    from tests.conftest import redis_url

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url(), "KEY_PREFIX": "throttle-test"}}
    backend = caches["default"]
    assert isinstance(backend, RedisCache)

    def two_round_trips(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("counted with cache.incr")

    monkeypatch.setattr(RedisCache, "incr", two_round_trips)
    key = "rf:rate:test-key:60:1"
    backend.delete(key)
    assert [_count(key, 61), _count(key, 61)] == [1, 2]
    assert 0 < backend._cache.get_client().ttl(backend.make_and_validate_key(key)) <= 61
    backend.delete(key)
