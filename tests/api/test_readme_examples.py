"""Docs that run: the README's API section, its curl commands exactly as written, against a live server.

The commands are read from README.md (between ``<!-- api:start -->`` and ``<!-- api:end -->``), so
an edit that breaks an example breaks this test. They run in bash with the environment the README
tells the reader to export, pointed at pytest-django's live server and a workspace whose agent has
the code the examples use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from ingestion.workspaces import CreatedWorkspace

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"```sh\n(.*?)```", re.S)

# Without curl the examples cannot run: skipped on a laptop, a failure in CI (where they must run).
pytestmark = pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"),
                                reason="curl is not installed")


def api_section() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index("<!-- api:start -->"), text.index("<!-- api:end -->")
    return text[start:end]


def curl_examples() -> dict[str, str]:
    """The README's curl commands by the event kind they post to (``customer-created``, …)."""
    found: dict[str, str] = {}
    for block in FENCE.findall(api_section()):
        if block.lstrip().startswith("curl"):
            kind = re.search(r"/api/events/([a-z-]+)", block)
            assert kind, f"a curl example without an event path:\n{block}"
            found[kind.group(1)] = block
    return found


def run(command: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one README command in bash, exactly as written; return its JSON answer."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_readme_shows_a_signup_a_payment_and_a_refund() -> None:
    """The API section has exactly these three curl examples, and the exports they rely on."""
    assert set(curl_examples()) == {"customer-created", "payment-succeeded", "payment-refunded"}
    assert "export REFAIRN_URL=" in api_section()


@pytest.mark.smoke
def test_the_readme_curl_examples_work_against_a_live_server(
        transactional_db: None, live_server: Any, tenant: CreatedWorkspace, api: APIClient,
        project: Callable[[], Any]) -> None:
    """Signup, payment and refund answer 200 with an event id; repeating the payment answers 409 with
    the original's id; the ledger then holds ADA's referral commission and the refund's reversal."""
    ids = {"businessId": tenant.workspace.id}
    program = api.post("/api/programs", {**ids, "productId": tenant.product.id, "name": "Partners",
                                         "referralCommission": {"type": "percent", "value": 20}},
                       format="json").json()
    agent = api.post("/api/agents", {**ids, "email": "ada@partners.example.com", "name": "Ada Lovelace"},
                     format="json").json()
    enrollment = api.post("/api/enrollments", {**ids, "agentId": agent["agentId"], "programId": program["programId"]},
                          format="json").json()
    approved = api.post(f"/api/enrollments/{enrollment['enrollmentId']}/approve", {**ids, "referralCode": "ADA"},
                        format="json")
    assert approved.status_code == 200, approved.content
    env = {"REFAIRN_URL": live_server.url, "REFAIRN_KEY": tenant.api_key.secret,
           "BUSINESS_ID": tenant.workspace.id, "PRODUCT_ID": tenant.product.id}
    examples = curl_examples()

    answers = {kind: run(examples[kind], env)
               for kind in ("customer-created", "payment-succeeded", "payment-refunded")}
    for kind, answer in answers.items():
        assert answer.get("success") is True, (kind, answer)
        assert answer["eventId"].startswith("evt_")
    assert answers["customer-created"]["position"] < answers["payment-succeeded"]["position"] \
        < answers["payment-refunded"]["position"]

    again = run(examples["payment-succeeded"], env)
    assert again["error"]["code"] == "duplicate_event"
    assert again["eventId"] == answers["payment-succeeded"]["eventId"]

    project()
    customer = api.get("/api/customers", {"email": "jane@example.com"}).json()["data"]
    assert [(c["customerRef"], c["agentId"]) for c in customer] == [("user_4812", agent["agentId"])]
    entries = api.get("/api/commissions", {"agentId": agent["agentId"]}).json()["data"]
    assert sorted((e["kind"], e["amount"], e["currency"]) for e in entries) == [
        ("referral", "9.80", "USD"), ("reversal", "-2.00", "USD")]
