"""A student's fetch in one request: ``GET .../release/files?inline=true`` answers the
release's small files with their bytes (base64 ``content``), larger ones with their URLs,
with local storage and S3 alike."""

from __future__ import annotations

import base64
import gc
import hashlib
import weakref

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import downloads
from api.tokens import create_api_token
from courses import services
from courses.models import AuditEvent
from tests.harness.uploads import make_upload

URL = "/api/v1/courses/phys101/assignments/ps1/release/files"
FEEDBACK = "/api/v1/courses/phys101/assignments/ps1/feedback"
NOTEBOOK = b'{"cells": [], "metadata": {}}' * 20
DATA = b"x,y\n" + b"1,2\n" * 1000

# Local files and S3 alike (``make test-s3`` runs these on SeaweedFS too).
pytestmark = pytest.mark.storage


@pytest.fixture
def release(course, people):
    return services.release_assignment(
        actor=people["ines"],
        course=course,
        code="ps1",
        upload=make_upload({"ps1.ipynb": NOTEBOOK, "data/data.csv": DATA}),
    )


def _files(answer) -> dict[str, dict]:
    assert answer.status_code == 200, answer.content
    return {f["path"]: f for f in answer.json()["files"]}


def test_small_files_come_inline_and_large_ones_by_url(people, release, client_for, monkeypatch):
    monkeypatch.setattr(downloads, "INLINE_FILE_BYTES", len(NOTEBOOK))
    answer = client_for(people["sam"]).get(f"{URL}?inline=true")
    files = _files(answer)
    notebook, data = files["ps1.ipynb"], files["data/data.csv"]
    assert base64.b64decode(notebook["content"]) == NOTEBOOK
    assert notebook["sha256"] == hashlib.sha256(NOTEBOOK).hexdigest()
    assert "url" not in notebook and "token" not in notebook
    assert "content" not in data and data["url"].startswith("http")
    assert answer.json()["assignment_id"] == "ps1"
    # Recorded as a fetch, once, as without the parameter.
    assert AuditEvent.objects.filter(action="fetched").count() == 1


def test_without_the_parameter_every_file_has_its_url(people, release, client_for):
    for url in (URL, f"{URL}?inline=false"):
        files = _files(client_for(people["sam"]).get(url))
        assert all("content" not in f and f["url"] for f in files.values())


def test_the_answer_inlines_no_more_than_its_total(people, release, client_for, monkeypatch):
    monkeypatch.setattr(downloads, "INLINE_TOTAL_BYTES", len(DATA) + 10)
    files = _files(client_for(people["sam"]).get(f"{URL}?inline=true"))
    # In path order: data/data.csv fits, the notebook would pass the total.
    assert base64.b64decode(files["data/data.csv"]["content"]) == DATA
    assert "content" not in files["ps1.ipynb"] and files["ps1.ipynb"]["url"]


def test_a_bad_value_is_a_sentence_and_no_fetch(people, release, client_for):
    answer = client_for(people["sam"]).get(f"{URL}?inline=maybe")
    assert answer.status_code == 400
    assert "inline" in answer.content.decode()
    assert not AuditEvent.objects.filter(action="fetched").exists()


def test_the_files_are_read_once(people, release, client_for):
    """Once for the bytes and the manifest alike, with the parameter or without."""
    sam = client_for(people["sam"])
    for url in (URL, f"{URL}?inline=true"):
        with CaptureQueriesContext(connection) as queries:
            _files(sam.get(url))
        reads = [q["sql"] for q in queries.captured_queries if "courses_bundleentry" in q["sql"]]
        assert len(reads) == 1, reads


def test_an_unreleased_assignment_is_still_not_found(people, course, client_for):
    answer = client_for(people["sam"]).get(f"{URL}?inline=true")
    assert answer.status_code == 404


def _served_once(path: str, token: str) -> weakref.ref:
    """``path`` asked through Django's WSGI handler as gunicorn asks it (body read, then
    ``close``); a weak reference to the answer, which the server then lets go."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    environ = RequestFactory().get(path, HTTP_AUTHORIZATION=f"Bearer {token}").environ
    statuses: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    body = b"".join(response)
    response.close()
    assert statuses == ["200 OK"] and b'"content"' in body
    return weakref.ref(response)


@pytest.mark.django_db(transaction=True)
def test_an_answer_with_files_inline_is_freed_once_sent(people, release):
    """Not kept until the garbage collector's next full pass (DRF's reference cycles):
    under a rush, the workers held hundreds of such answers."""
    services.release_feedback(
        actor=people["gus"],
        submission=services.submit_assignment(
            student=people["sam"],
            assignment=release,
            upload=make_upload({"ps1.ipynb": NOTEBOOK + b" "}),
        ),
        upload=make_upload({"fb.html": b"<p>fine</p>"}),
    )
    token = create_api_token(user=people["sam"])
    gc.disable()
    try:
        for path in (f"{URL}?inline=true", FEEDBACK + "?inline=true"):
            assert _served_once(path, token)() is None, path
    finally:
        gc.enable()
