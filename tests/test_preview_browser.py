"""A notebook preview in a real browser: the submission page says the preview is being made
and refreshes itself (the sandboxed frame could not), until the frame shows the notebook;
nothing of the notebook's markup runs."""

from __future__ import annotations

import os
import signal

import nbformat
import pytest

from courses import services
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = '<img src="x" onerror="parent.document.title=\'pwned\'"><script>alert(1)</script>'


def test_the_page_refreshes_until_the_preview_is_shown(chromium, live_server, settings):
    from web import previews

    course = services.create_course(code="phys101", title="Physics")
    ines = services.add_member(course=course, username="ines", role="instructor").user
    sam = services.add_member(course=course, username="sam", role="student").user
    assignment = services.release_assignment(
        actor=ines, course=course, code="ps1", upload=make_upload({"ps1.ipynb": b"{}"})
    )
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Answer of sam " + HOSTILE)]
    )
    submission = services.submit_assignment(
        student=sam,
        assignment=assignment,
        upload=make_upload({"ps1.ipynb": nbformat.writes(notebook).encode()}),
    )
    from django.test import Client

    client = Client()
    client.force_login(ines)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    context = chromium.new_context()
    try:
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
        )
        page = context.new_page()
        page.goto(f"{live_server.url}/submissions/{submission.pk}/")
        assert "being made" in page.inner_text("section.rendered")
        page.wait_for_selector("iframe[title='ps1.ipynb']", timeout=180_000)
        frame = page.frame_locator("iframe[title='ps1.ipynb']")
        assert "Answer of sam" in frame.locator("h1").first.inner_text()
        assert page.title() != "pwned"
        assert frame.locator("script").count() == 0
    finally:
        context.close()
        for child in previews._children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        previews._children.clear()
