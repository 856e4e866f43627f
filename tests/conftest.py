"""Fixtures shared by the end-to-end tests: one Chromium and one nbgrader fork server for
the whole session.

Playwright's sync API runs one event loop per thread, so every browser test (tests/lab and
tests/test_jupyterhub.py) shares this browser instead of starting Playwright twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.forkserver import fork_nbgrader, stop_forking_nbgrader

CHROMIUM = Path("/usr/bin/chromium")
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (never a downloaded browser build).

    Playwright's sync API keeps an event loop in this thread until the session ends, which
    Django takes for an async context: every ORM call after this, in a browser test or in
    any test the same process runs later, is a plain synchronous one, so Django is told so
    while the loop is there."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium (make test does it)")
    from playwright.sync_api import expect, sync_playwright

    # Playwright's assertions wait 5 s by default; JupyterLab and the hub's pages can take
    # longer while the other test process keeps both cores busy. A failing check still fails.
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    saved = os.environ.get(ASYNC_UNSAFE)
    with sync_playwright() as playwright:
        os.environ[ASYNC_UNSAFE] = "true"
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
    if saved is None:
        os.environ.pop(ASYNC_UNSAFE, None)
    else:
        os.environ[ASYNC_UNSAFE] = saved


@pytest.fixture(scope="session", autouse=True)
def nbgrader_forked() -> Iterator[None]:
    """nbgrader's imports once for all the CLI commands the tests run through
    ``run_nbgrader`` (tests/harness/forkserver.py): each command is a child of one process
    that has them. The server starts with the first command."""
    fork_nbgrader()
    yield
    stop_forking_nbgrader()
