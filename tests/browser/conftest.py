"""Browser-suite fixtures: Debian's chromium under Playwright for Python, and the
steps every page test takes (log in as an operator, save a screenshot).

Screenshots go to ``test-artifacts/dashboard/`` (git-ignored); look at them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import staff_user

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "dashboard"


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium is installed (Debian package chromium; ./dev test installs it "
                    "when it runs as root), so the browser tests cannot run")
    return found


@pytest.fixture
def page(chromium: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    # Playwright's sync API keeps an event loop on this thread, which makes Django
    # refuse ORM calls from the test (it would from a coroutine); the test is not one.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def operator(*perms: str, app_label: str = "queues") -> str:
    """A staff user with ``perms`` of ``app_label``; returns its username (password pw)."""
    return str(staff_user(app_label, *perms).username)


def log_in(page: Page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}/admin/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
