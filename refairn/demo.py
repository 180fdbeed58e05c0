"""The demo workspace that ``python3 dev.py run`` seeds on first run.

Every piece goes through the same services and endpoints a real user would use, so the demo
shows attribution and the ledger working, not rows typed into tables.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from ingestion.models import Workspace
from ingestion.workspaces import workspace_create

if TYPE_CHECKING:
    from agents.models import Agent

DEMO_NAME = "Demo SaaS"


@dataclass
class DemoInfo:
    business_id: str
    product_id: str
    api_key: str
    admin_user: str
    admin_password: str
    created: bool
    agent_logins: list[list[str]] = field(default_factory=list)  # [username, password] per demo agent


def _info_path() -> Path:
    return Path(settings.DATA_DIR) / "demo.json"


def seed_demo() -> DemoInfo:
    """Create the demo workspace once; later runs print the same details again."""
    path = _info_path()
    existing = Workspace.objects.filter(name=DEMO_NAME).first()
    if existing and path.exists():
        return DemoInfo(**{**json.loads(path.read_text()), "created": False})
    with transaction.atomic():
        created = workspace_create(name=DEMO_NAME, base_currency="USD", product_name="Demo App",
                                   product_url="https://demo-app.example.com/signup", live=False)
        password = os.environ.get("REFAIRN_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model = get_user_model()
        admin = user_model.objects.filter(username="admin").first()
        if admin is None:
            admin = user_model.objects.create_superuser("admin", "admin@example.com", password)
        else:
            admin.set_password(password)
            admin.save()
        created.workspace.operators.add(admin)
    info = DemoInfo(created.workspace.id, created.product.id, created.api_key.secret, "admin", password, True)
    seed_partners(info)
    seed_ledger(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in info.__dict__.items() if k != "created"}))
    return info


DEMO_AGENTS = (("Ada Lovelace", "ada@partners.example.com", "ADA"),
               ("Grace Hopper", "grace@partners.example.com", "GRACE"))
# (email, customer_ref, how the signup was referred): the leads a new user sees in the console.
DEMO_LEADS = (
    ("maria@customer.example.com", "demo-user-1", "click:ADA"),
    ("li.wei@customer.example.com", "demo-user-2", "click:GRACE"),
    ("sam+trial@customer.example.com", "demo-user-3", "code:grace"),
    ("noor@customer.example.com", "demo-user-4", "code:ADA"),
    ("jo@customer.example.com", "demo-user-5", "code:NOSUCH"),
    ("pat@customer.example.com", "demo-user-6", ""),
    ("grace@partners.example.com", "demo-user-7", "code:GRACE"),
)


def _agent_login(agent: Agent) -> str:
    """Give a demo agent a dashboard login (its email as username) and return the password.

    A login left linked to an agent of an earlier demo workspace moves to this one.
    """
    from agents.models import Agent

    password = os.environ.get("REFAIRN_AGENT_PASSWORD") or secrets.token_urlsafe(12)
    user_model = get_user_model()
    user = user_model.objects.filter(username=agent.email).first()
    if user is None:
        user = user_model.objects.create_user(agent.email, agent.email, password)
    else:
        user.set_password(password)
        user.save()
        Agent.objects.filter(user=user).exclude(pk=agent.pk).update(user=None)
    agent.user = user
    agent.save(update_fields=["user"])
    return password


def seed_partners(info: DemoInfo) -> None:
    """A program, two approved agents, clicks and leads (attribution, issue #3).

    Clicks go through the same service as ``/r/<code>``; leads are ``customer.created`` events in
    the store, as the API would append them: two through a click, two with a typed code, one with
    an unknown code, one unreferred, and one self-referral that the projector refuses.
    """
    from django.utils import timezone

    from agents.models import Enrollment
    from agents.services import agent_create, enrollment_apply, enrollment_approve, program_create
    from attribution.services import click_record
    from ingestion.models import Product
    from ingestion.store import NewEvent, event_append

    workspace = Workspace.objects.get(id=info.business_id)
    product = Product.objects.get(id=info.product_id)
    program = program_create(
        workspace=workspace, product=product, name="Demo partner program", referral_value=20,
        recurring_percent=10, recurring_duration_months=12, support_percent=5, attribution_window_days=90,
        hold_days=14, payout_threshold={"USD": 5000})
    enrollments: dict[str, Enrollment] = {}
    for name, email, code in DEMO_AGENTS:
        agent = agent_create(workspace=workspace, email=email, name=name)
        info.agent_logins.append([email, _agent_login(agent)])
        enrollment = enrollment_apply(agent=agent, program=program, actor=f"user:{info.admin_user}")
        # A code already used by another workspace would make /r/<code> ambiguous: generate one then.
        chosen = None if Enrollment.objects.filter(referral_code=code).exists() else code
        enrollments[code] = enrollment_approve(enrollment=enrollment, referral_code=chosen,
                                               actor=f"user:{info.admin_user}", reason="demo partner")
    clicks = {}
    for code, enrollment in enrollments.items():
        first = None
        for visit in range(3):
            recorded = click_record(enrollment=enrollment, ip=f"203.0.113.{visit + 10}",
                                    user_agent="Mozilla/5.0 (demo)", referrer="https://blog.example.com/review",
                                    first_click_id=first.click_id if first and visit == 2 else "")
            first = first or recorded
        clicks[code] = first
    now = timezone.now()
    for index, (email, ref, how) in enumerate(DEMO_LEADS, start=1):
        data = {"customer_ref": ref, "email": email, "name": email.split("@")[0].title(),
                "product_id": product.id}
        kind, _, value = how.partition(":")
        if kind == "click" and clicks.get(value):
            data["click_id"] = clicks[value].click_id
            data["referral_code"] = enrollments[value].referral_code
        elif kind == "code":
            known = enrollments.get(value.upper())
            # Typed as given (codes match case-insensitively), unless the code had to be generated.
            data["referral_code"] = value if known is None or known.referral_code == value.upper() \
                else known.referral_code
        event_append(NewEvent(workspace_id=workspace.id, source="api", source_event_id=f"demo-signup-{index}",
                              type="customer.created", occurred_at=now, data=data))


def seed_ledger(info: DemoInfo) -> None:
    """Payments, a refund and a payout in the ledger (commissions, issue #5).

    Everything is an event, appended as the API would: two earlier customers of Ada who signed up
    with her code 46 days ago and paid (past the 14-day hold, so payable), a renewal of one of
    them, today's payments of the leads ``seed_partners`` created (in hold), and a half refund of
    one of those. Then a payout of Ada's payable entries is created and confirmed through the
    same services as the API and the console, so the ledger shows pending, reversed and paid.
    """
    import logging
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import Enrollment
    from commissions.services import payout_confirm, payout_create
    from ingestion.errors import ApplicationError
    from ingestion.store import NewEvent, event_append_many

    workspace = Workspace.objects.get(id=info.business_id)
    ada = (Enrollment.objects.select_related("agent")
           .filter(workspace=workspace, agent__email="ada@partners.example.com", status=Enrollment.Status.APPROVED)
           .first())
    if ada is None:  # seed_partners made no program: nothing to pay
        return
    now = timezone.now()
    events: list[NewEvent] = []

    def add(key: str, type_: str, days_ago: float, data: dict) -> None:
        events.append(NewEvent(workspace_id=workspace.id, source="api", source_event_id=f"demo-ledger-{key}",
                               type=type_, occurred_at=now - timedelta(days=days_ago), data=data))

    for index, (email, amount) in enumerate((("kim@customer.example.com", 19900),
                                             ("alex@customer.example.com", 14900)), start=1):
        ref = f"demo-early-{index}"
        add(f"signup-{index}", "customer.created", 46, {
            "customer_ref": ref, "email": email, "name": email.split("@")[0].title(),
            "product_id": info.product_id, "referral_code": ada.referral_code})
        add(f"payment-{index}", "payment.succeeded", 45, {
            "payment_ref": f"ch_demo_early_{index}", "customer_ref": ref, "email": email, "amount": amount,
            "currency": "USD", "plan": "pro-monthly", "product_id": info.product_id})
    add("renewal-1", "payment.succeeded", 15, {
        "payment_ref": "ch_demo_early_1_m2", "customer_ref": "demo-early-1", "email": "kim@customer.example.com",
        "amount": 19900, "currency": "USD", "plan": "pro-monthly", "product_id": info.product_id})
    for index, (email, ref, amount) in enumerate((
            ("maria@customer.example.com", "demo-user-1", 9900),
            ("li.wei@customer.example.com", "demo-user-2", 4900),
            ("noor@customer.example.com", "demo-user-4", 9900),
            ("pat@customer.example.com", "demo-user-6", 2900)), start=1):
        add(f"today-{index}", "payment.succeeded", 0, {
            "payment_ref": f"ch_demo_today_{index}", "customer_ref": ref, "email": email, "amount": amount,
            "currency": "USD", "plan": "starter-monthly", "product_id": info.product_id})
    add("refund-1", "payment.refunded", 0, {"payment_ref": "ch_demo_today_3", "refund_ref": "re_demo_today_3",
                                            "amount": 4950, "currency": "USD"})
    event_append_many(events)
    actor = f"user:{info.admin_user}"
    try:
        created = payout_create(workspace=workspace, agent_id=ada.agent_id, currency="USD", actor=actor)
        payout_confirm(workspace=workspace, payout_id=created.payout_id, reference="DEMO-TRANSFER-0001", actor=actor)
    except ApplicationError as exc:
        logging.getLogger(__name__).warning("demo payout not created: %s", exc.message)
