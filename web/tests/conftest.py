"""Personas for the page tests: the course phys101 (ines instructor, gus grader, sam and tia
students, olga outsider, ada site admin), ps1 released and due, sam's two submissions (the
second late, with feedback), tia's one on time, and a signed-in client per person."""

from __future__ import annotations

import nbformat
import pytest
from django.test import Client
from django.urls import set_script_prefix

from courses import services
from courses.models import Assignment
from courses.testing import make_upload
from courses.tests import conftest as personas

# The domain tests' personas, shared.
course = personas.course
people = personas.people
released = personas.released


def notebook(text: str) -> bytes:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"# {text}"),
            nbformat.v4.new_code_cell(
                "print(6 * 7)", outputs=[nbformat.v4.new_output("stream", text="42\n")]
            ),
        ]
    )
    return nbformat.writes(nb).encode()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create(username="ada", is_staff=True)


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


@pytest.fixture
def client_as(people, admin_user):
    """A browser signed in as the named persona (None: anonymous)."""

    def make(name: str | None) -> Client:
        client = Client()
        if name is not None:
            client.force_login(admin_user if name == "ada" else people[name])
        return client

    return make


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


def wait_for_preview(client: Client, url: str, timeout: float = 90) -> str:
    """Ask for a preview as a browser would (the pending page refreshes) until it is made;
    the page it ends on."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        page = body.decode()
        if "is being made" not in page:
            return page
        assert time.monotonic() < deadline, f"no preview of {url} after {timeout} s"
        time.sleep(0.2)
