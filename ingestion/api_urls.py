"""``/api/events/*``: the event endpoints (hot path) and the event reads."""

from django.urls import path

from . import api
from .event_inputs import KINDS

urlpatterns = [
    path("api/events/batch", api.EventBatchView.as_view(), name="api-events-batch"),
    *[path(f"api/events/{kind}", api.event_view(kind), name=f"api-events-{kind}") for kind in KINDS],
    path("api/events", api.EventListView.as_view(), name="api-events"),
    path("api/events/<str:event_id>", api.EventDetailView.as_view(), name="api-event"),
]
