"""Health endpoints (issue #2 item 8): /healthz for liveness, /readyz checks database and broker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.test import Client, override_settings

from tests.testapp.support import ROOT, free_port, subprocess_env


@pytest.mark.smoke
def test_healthz_answers_200(client: Client) -> None:
    """/healthz answers 200 while the process lives, touching nothing."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.smoke
@override_settings(CELERY_BROKER_URL="")
def test_readyz_200_when_the_database_answers_and_no_broker_is_configured(db: None, client: Client) -> None:
    """The embedded default (no broker) is ready as soon as the database answers."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.redis
def test_readyz_200_when_database_and_broker_answer(db: None, client: Client, broker_url: str) -> None:
    """With a reachable Redis broker and database, /readyz answers 200."""
    with override_settings(CELERY_BROKER_URL=broker_url):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content


def test_readyz_503_with_the_reason_when_the_broker_is_unreachable(db: None, client: Client) -> None:
    """A broker URL pointing at a closed port makes /readyz answer 503 and say it is the broker."""
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert len(body["problems"]) == 1
    assert body["problems"][0].startswith("broker unreachable")


_READYZ_SCRIPT = """
import json, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
client = Client()
ready = client.get("/readyz")
alive = client.get("/healthz")
print(json.dumps({"ready": [ready.status_code, ready.json()], "alive": alive.status_code}))
"""


def test_readyz_503_with_the_reason_when_the_database_is_unreachable(tmp_path: object) -> None:
    """In a process whose DATABASE_URL points at a closed port, /readyz answers 503 naming the
    database (and /healthz still answers 200)."""
    env = subprocess_env(
        DJANGO_SETTINGS_MODULE="refairn.settings.base",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/refairn_nowhere",
        DB_CONNECT_TIMEOUT="2",
    )
    result = subprocess.run([sys.executable, "-c", _READYZ_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["alive"] == 200
    status, body = answer["ready"]
    assert status == 503
    assert body["problems"] == ["database unreachable (OperationalError)"]
