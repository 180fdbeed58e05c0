"""The Celery app. Tasks are wake-ups for projection batches, never the unit of work."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refairn.settings.base")

app = Celery("refairn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
