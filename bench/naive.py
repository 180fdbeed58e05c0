"""The naive reference: a DRF ModelSerializer and an ORM insert, the way a first draft looks.

It does the textbook thing and nothing else: DRF parses the JSON body, a ``ModelSerializer``
validates it field by field, ``save()`` inserts one row through the ORM (one transaction, in
autocommit), and a DRF ``Response`` renders the answer. No authentication and no rate limit, so
it stands for "DRF serializer + ORM insert" alone, as in the reference figures of issue #9.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.ids import new_id

from .models import NaiveEvent


class NaiveEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = NaiveEvent
        fields = ["workspace", "source_event_id", "type", "occurred_at", "data"]


class NaiveEventView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request: Request) -> Response:
        serializer = NaiveEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = serializer.save(source="api", event_id=new_id("evt", 24), recorded_at=timezone.now(),
                                raw=request.data)
        return Response({"success": True, "eventId": event.event_id, "position": event.position})
