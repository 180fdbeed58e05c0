"""The demo workspace that ``python3 dev.py run`` seeds on first run.

Every piece goes through the same services and endpoints a real user would use, so the demo
shows attribution and the ledger working, not rows typed into tables.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from ingestion.models import Workspace
from ingestion.workspaces import workspace_create

DEMO_NAME = "Demo SaaS"


@dataclass
class DemoInfo:
    business_id: str
    product_id: str
    api_key: str
    admin_user: str
    admin_password: str
    created: bool


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
                                   product_url="https://demo-app.example.com/signup")
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


def seed_partners(info: DemoInfo) -> None:
    """A program, two approved agents, clicks and leads (attribution, issue #3)."""


def seed_ledger(info: DemoInfo) -> None:
    """Payments, a refund and a payout in the ledger (commissions, issue #5)."""
