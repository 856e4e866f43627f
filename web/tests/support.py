"""Helpers of the page tests: waiting for a preview as a browser does."""

from __future__ import annotations

import time

from django.test import Client


def wait_for_preview(client: Client, url: str, timeout: float = 90) -> str:
    """Ask for a preview as a browser would (the pending page refreshes) until it is made;
    the page it ends on."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        page = body.decode()
        if "is being made" not in page:
            return page
        assert time.monotonic() < deadline, f"no preview of {url} after {timeout} s"
        time.sleep(0.2)
