"""The statements of the hot requests, pinned: a submit, a feedback upload and the
assignment detail (which the plugin reads before each submit) run at most these many,
however many submissions the course already holds. A change that adds one shows here."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from courses import services
from tests.harness.personas import RELEASED
from tests.harness.uploads import make_upload, upload_form

# PostgreSQL takes two transaction-scoped advisory locks more in an upload (the course's
# and the storage collection's), each one statement; SQLite's write transaction is its lock.
LOCKS = 2

# The most statements each request runs on SQLite (BEGIN and COMMIT counted), with the
# quota on and the submission rate limit off (as everywhere in the suite; it adds one
# statement to a submit). Before the work that set them: a
# submit of these 4 files 32, a feedback upload of 3 files 22 (23 replacing one), the
# assignment detail 5.
SUBMIT = 15
FEEDBACK = 15
DETAIL = 3


def _limit(statements: int, *, locks: int = 0) -> int:
    return statements + (locks if connection.vendor == "postgresql" else 0)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _submit_form() -> dict:
    """Four files: the release's two (known to the server, not sent) and two new."""
    files = dict(RELEASED)
    files["answer.ipynb"] = b'{"cells": ["mine"]}'
    files["notes.txt"] = b"mine"
    return upload_form(files, omit=list(RELEASED))


def _count(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code in (200, 201), response.content
    return len(captured.captured_queries), response


@pytest.fixture
def crowded(course, people, released, django_user_model):
    """Ten other students with a submission each, and one earlier submission of sam's."""
    for n in range(10):
        name = f"student{n}"
        services.add_member(course=course, username=name, role="student")
        services.submit_assignment(
            student=django_user_model.objects.get(username=name),
            assignment=released,
            upload=make_upload({**RELEASED, "a.txt": name.encode()}),
        )
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"first"})
    )
    return released


def test_a_submit_of_four_files_runs_at_most_its_statements(people, crowded):
    url = "/api/v1/courses/phys101/assignments/ps1/submissions"
    client = _client(people["sam"])
    counts = []
    for _ in range(2):
        count, response = _count(lambda: client.post(url, _submit_form(), format="multipart"))
        assert response.json()["file_count"] == len(RELEASED) + 2
        assert response.json()["has_feedback"] is False
        counts.append(count)
    assert max(counts) <= _limit(SUBMIT, locks=LOCKS), counts


def test_a_feedback_upload_of_three_files_runs_at_most_its_statements(people, crowded):
    submission = crowded.submissions.filter(student=people["sam"]).first()
    url = f"/api/v1/submissions/{submission.pk}/feedback"
    client = _client(people["gus"])
    for round_ in range(2):  # first release, then a replacement
        files = {f"feedback/p{i}.html": f"<p>{round_} {i}</p>".encode() for i in range(3)}
        form = upload_form(files)
        count, response = _count(lambda form=form: client.post(url, form, format="multipart"))
        assert [f["path"] for f in response.json()["files"]] == sorted(files)
        assert count <= _limit(FEEDBACK, locks=LOCKS), (round_, count)


def test_the_assignment_detail_runs_at_most_its_statements(people, crowded):
    count, response = _count(
        lambda: _client(people["sam"]).get("/api/v1/courses/phys101/assignments/ps1")
    )
    assert len(response.json()["files"]) == len(RELEASED)
    assert count <= _limit(DETAIL), count


@pytest.mark.postgres_only
def test_the_row_locks_of_an_upload_lock_no_other_table(people, crowded):
    """A lock that joined the course's row (a model's ordering does) would make every
    submit and feedback upload of the course wait for each other."""
    submission = crowded.submissions.filter(student=people["sam"]).first()
    with CaptureQueriesContext(connection) as captured:
        url = "/api/v1/courses/phys101/assignments/ps1/submissions"
        response = _client(people["sam"]).post(url, _submit_form(), format="multipart")
        assert response.status_code == 201, response.content
        form = upload_form({"feedback/p.html": b"<p>ok</p>"})
        url = f"/api/v1/submissions/{submission.pk}/feedback"
        response = _client(people["gus"]).post(url, form, format="multipart")
        assert response.status_code == 201, response.content
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 2, locks
    assert not [sql for sql in locks if " JOIN " in sql], locks
