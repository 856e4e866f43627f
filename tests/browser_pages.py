"""Helpers of the page tests in Chromium: a browser context signed in as someone, in a time
zone of its own, and screenshots under test-artifacts/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.test import Client

from tests.harness import REPO

SCREENSHOTS = REPO / "test-artifacts" / "screenshots" / "manage"


@contextlib.contextmanager
def signed_in(
    chromium: Any,
    live_server: Any,
    user: Any | None,
    *,
    timezone_id: str = "Europe/Madrid",
    locale: str = "en-GB",
) -> Iterator[Any]:
    """A page in a fresh context, signed in as ``user`` (None: nobody), in ``timezone_id``,
    asking for pages in ``locale``."""
    context = chromium.new_context(timezone_id=timezone_id, locale=locale)
    try:
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
            )
        yield context.new_page()
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_in_zone(page: Any, url: str, zone: str) -> None:
    """Open a page with forms and wait until it is rendered in the browser's zone (the first
    visit reloads once, see web/static/web/time.js)."""
    page.goto(url)
    page.wait_for_selector(f"input[name=tz][value='{zone}']", state="attached", timeout=15_000)
