"""Fixtures of the page tests (the people and their signed-in clients are the personas of
``tests.harness.personas``): ps1 due, sam's two submissions (the second late, with
feedback), tia's one on time; render workers and the script prefix reset after each test."""

from __future__ import annotations

import pytest
from django.urls import set_script_prefix

from courses import services
from courses.models import Assignment
from tests.harness.uploads import make_upload, notebook


@pytest.fixture
def work(course, people, released):
    """Submissions and feedback in phys101/ps1; returns them by name."""
    services.fetch_assignment(user=people["sam"], assignment=released)
    sam_first = services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=make_upload({"ps1.ipynb": notebook("Sam's first try")}),
    )
    tia = services.submit_assignment(
        student=people["tia"],
        assignment=released,
        upload=make_upload({"ps1.ipynb": notebook("Tia's answer"), "notes.txt": b"<b>hi</b>"}),
    )
    sam_late = services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=make_upload({"ps1.ipynb": notebook("Sam's second try")}),
    )
    # Due between tia's submission and sam's second one.
    due = tia.timestamp + (sam_late.timestamp - tia.timestamp) / 2
    Assignment.objects.filter(pk=released.pk).update(due_date=due)
    released.refresh_from_db()
    services.release_feedback(
        actor=people["ines"],
        submission=sam_late,
        upload=make_upload({"ps1.html": b"<html><body><p>Well done, Sam</p></body></html>"}),
    )
    return {"sam_first": sam_first, "sam_late": sam_late, "tia": tia, "assignment": released}


@pytest.fixture(autouse=True)
def _no_script_prefix_left_behind():
    """Requests under the service prefix set the thread's script prefix; later tests that
    reverse URLs outside a request must not see it."""
    yield
    set_script_prefix("/")


@pytest.fixture(autouse=True)
def _render_workers_end_with_the_test():
    """Pages started render workers (web/previews.py) for this test's storage: they end
    with the test, so that no test's CPU goes to an earlier test's notebooks."""
    import os
    import signal

    from web import previews

    yield
    with previews._children_lock:
        children, previews._children[:] = list(previews._children), []
    for child in children:
        if child.poll() is None:
            # Its own session: the group is the supervisor and its converter.
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
