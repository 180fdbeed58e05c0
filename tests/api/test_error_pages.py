"""Refusals, unknown paths and unhandled exceptions under /api/ and /webhooks/ answer the JSON error shape.

A SaaS backend or a payment provider parses JSON; Django's HTML 404/500 pages would break its error
handling. Every other path (the console, the agent dashboard, the admin) keeps Django's HTML pages.
This module doubles as the URLconf of the 400, 403 and 500 tests: it wires the real handlers of
``refairn.urls`` to views that raise.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from refairn.urls import handler400, handler403, handler404, handler500

SECRET_DETAIL = "boom: the card number was 4242"


def _raise(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


def _suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation(SECRET_DETAIL)


def _denied(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied(SECRET_DETAIL)


urlpatterns = [path("api/boom", _raise), path("webhooks/boom", _raise), path("boom", _raise),
               path("api/suspicious", _suspicious), path("suspicious", _suspicious),
               path("api/denied", _denied), path("webhooks/denied", _denied), path("denied", _denied)]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


@pytest.fixture
def quiet_client() -> Client:
    """A client that returns the 500 answer instead of re-raising the view's exception."""
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("url", ["/api/does-not-exist", "/api/", "/webhooks/", "/webhooks/nope/biz_x/extra"])
def test_an_unknown_machine_path_is_a_json_404(client: Client, url: str) -> None:
    """A mistyped /api/ or /webhooks/ path answers 404 {"error": {"code": "not_found", …}} as JSON."""
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"]


def test_an_unknown_page_path_is_still_django_s_html_404(client: Client) -> None:
    """Outside /api/ and /webhooks/ (and for look-alikes such as /apiary) people get Django's HTML page."""
    for url in ("/does-not-exist", "/apiary"):
        response = client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize("url", ["/api/boom", "/webhooks/boom"])
def test_an_unhandled_exception_on_a_machine_path_is_a_json_500(quiet_client: Client, url: str) -> None:
    """An unhandled exception answers 500 {"error": {"code": "server_error"}}, never the exception's text."""
    response = quiet_client.get(url)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
    assert SECRET_DETAIL not in response.content.decode()


@override_settings(ROOT_URLCONF=__name__)
def test_an_unhandled_exception_on_a_page_is_still_django_s_html_500(quiet_client: Client) -> None:
    """Pages keep Django's HTML 500 (and its template, if the project adds one)."""
    response = quiet_client.get("/boom")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_host_not_allowed_on_a_machine_path_is_a_json_400(client: Client) -> None:
    """Django refuses a ``Host`` outside ALLOWED_HOSTS before any view: under /api/ the 400 is JSON."""
    response = client.get("/api/events", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "bad_request"
    assert "evil.example" not in response.content.decode()


@override_settings(ROOT_URLCONF=__name__)
def test_a_suspicious_request_on_a_machine_path_is_a_json_400_without_its_reason(client: Client) -> None:
    """A ``SuspiciousOperation`` answers 400 {"error": {"code": "bad_request"}}; its text is not echoed."""
    response = client.get("/api/suspicious")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert SECRET_DETAIL not in response.content.decode()


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize("url", ["/api/denied", "/webhooks/denied"])
def test_a_permission_denied_on_a_machine_path_is_a_json_403(client: Client, url: str) -> None:
    """A ``PermissionDenied`` outside DRF answers 403 {"error": {"code": "forbidden"}} as JSON."""
    response = client.get(url)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "forbidden"


@override_settings(ROOT_URLCONF=__name__)
def test_refusals_on_pages_are_still_django_s_html_pages(client: Client) -> None:
    """Outside /api/ and /webhooks/ a 400 or 403 keeps Django's HTML page."""
    for url, status in (("/suspicious", 400), ("/denied", 403)):
        response = client.get(url)
        assert response.status_code == status
        assert response["Content-Type"].startswith("text/html")
