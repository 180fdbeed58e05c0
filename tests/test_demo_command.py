"""``manage.py demo``, the seeding step of ``python3 dev.py run``, prints what the README promises.

README.md ("Run it"): on first run it prints the demo workspace's businessId, productId, an API key
and an admin login (and the demo agents' dashboard logins); a later run prints the same details.
A new user copies these lines into curl and a browser, so the test reads them as that user would.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

LINE = re.compile(r"^\s*(?P<label>[A-Za-z ]+?)\s*:\s*(?P<value>.+)$")
LOGIN = re.compile(r"user (?P<user>\S+)\s+password (?P<password>\S+)")


def _run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def _lines(output: str) -> list[tuple[str, str]]:
    """The ``label : value`` lines of the output, in order."""
    return [(m["label"], m["value"].strip()) for m in map(LINE.match, output.splitlines()) if m]


def _value(output: str, label: str) -> str:
    values = [value for name, value in _lines(output) if name == label]
    assert len(values) == 1, (label, output)
    return values[0]


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """A fresh data folder, so the demo's details file (var/demo.json) of a developer run is not read."""
    settings.DATA_DIR = tmp_path
    return tmp_path


def test_the_demo_prints_the_workspace_ids_a_test_key_and_the_logins(data_dir: Path) -> None:
    """The first run prints businessId biz_…, productId prod_…, an rf_test_ key, the admin and agent logins."""
    output = _run_demo()
    assert _value(output, "businessId").startswith("biz_")
    assert _value(output, "productId").startswith("prod_")
    assert re.fullmatch(r"rf_test_\S+", _value(output, "API key"))
    admin = LOGIN.search(_value(output, "admin"))
    assert admin is not None
    assert admin["user"] == "admin"
    agents = [LOGIN.search(value) for name, value in _lines(output) if name == "agent"]
    assert [m["user"] for m in agents if m] == ["ada@partners.example.com", "grace@partners.example.com"]


def test_the_printed_logins_sign_in(data_dir: Path) -> None:
    """The admin and agent passwords printed are the ones set: a user can sign in with what is shown."""
    output = _run_demo()
    logins = [LOGIN.search(value) for name, value in _lines(output) if name in ("admin", "agent")]
    assert len(logins) == 3
    for login in logins:
        assert login is not None
        assert authenticate(username=login["user"], password=login["password"]) is not None, login["user"]


def test_running_the_demo_again_prints_the_same_workspace(data_dir: Path) -> None:
    """``dev.py run`` seeds on every start: a second run creates nothing and prints the same details."""
    first, second = _run_demo(), _run_demo()
    for label in ("businessId", "productId", "API key", "admin"):
        assert _value(second, label) == _value(first, label)
    assert "created" in first.splitlines()[0]
    assert "created" not in second.splitlines()[0]
