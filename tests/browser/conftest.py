"""Playwright driving Debian's Chromium against pytest-django's live server.

Each test gets its own Playwright and browser, stopped when the test ends: Playwright's sync API
keeps an event loop in the test's thread while it runs, and Django refuses ORM calls under a
running loop. ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only for the browser tests' lifetime; the ORM
calls they make are plain synchronous setup and checks in the test's own thread.
Screenshots go to ``test-output/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            # Under Playwright's loop the test's ORM calls can open a second connection that the
            # test database teardown does not know about; close it so PostgreSQL can drop the db.
            from django.db import connections

            connections.close_all()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A desktop-sized page; failing actions time out after 15 s instead of 30."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-width page (390 × 844, touch)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot() -> Any:
    """Save a full-page screenshot under test-output/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


# The canvas is drawn when at least one pixel is not transparent.
CANVAS_PAINTED_JS = """(id) => {
  const canvas = document.getElementById(id);
  if (!canvas || canvas.getAttribute('data-rendered') !== 'true') { return 0; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { painted++; } }
  return painted;
}"""
