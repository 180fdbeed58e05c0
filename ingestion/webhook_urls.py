"""``POST /webhooks/<provider>/<businessId>`` (a trailing slash is accepted too)."""

from django.urls import re_path

from .webhooks import webhook_view

urlpatterns = [
    re_path(r"^webhooks/(?P<provider>[^/]+)/(?P<business_id>[^/]+)/?$", webhook_view, name="webhook"),
]
