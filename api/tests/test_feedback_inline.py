"""A student's feedback in one request: ``GET .../feedback?inline=true`` answers small files'
bytes in the listing itself (base64 ``content``), larger ones keep their URLs, with local
storage and S3 alike."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import downloads
from api.spliced_json import Spliced
from courses import services
from courses.models import AuditEvent
from tests.harness.uploads import make_upload

URL = "/api/v1/courses/phys101/assignments/ps1/feedback"
SMALL = b"<p>good work, sam</p>" * 10
LARGE = b"<p>" + b"x" * 3000 + b"</p>"


# Local files and S3 alike (``make test-s3`` runs these on SeaweedFS too).
pytestmark = pytest.mark.storage


@pytest.fixture
def released_feedback(people, submission):
    return services.release_feedback(
        actor=people["gus"],
        submission=submission,
        upload=make_upload({"feedback/ps1.html": SMALL, "feedback/plots.html": LARGE}),
    )


def _files(answer) -> dict[str, dict]:
    [feedback] = answer.json()
    return {f["path"]: f for f in feedback["files"]}


def test_small_files_come_inline_and_large_ones_by_url(
    people, released_feedback, client_for, monkeypatch
):
    monkeypatch.setattr(downloads, "INLINE_FILE_BYTES", 1000)
    answer = client_for(people["sam"]).get(f"{URL}?inline=true")
    assert answer.status_code == 200
    files = _files(answer)
    small, large = files["feedback/ps1.html"], files["feedback/plots.html"]
    assert base64.b64decode(small["content"]) == SMALL
    assert small["sha256"] == hashlib.sha256(SMALL).hexdigest()
    assert "url" not in small and "token" not in small
    assert "content" not in large and large["url"].startswith("http")
    # The fetch is recorded as without the parameter.
    assert AuditEvent.objects.filter(action="feedback_fetched").count() == 1


def test_without_the_parameter_every_file_has_its_url(people, released_feedback, client_for):
    files = _files(client_for(people["sam"]).get(URL))
    assert all("content" not in f and f["url"] for f in files.values())
    files = _files(client_for(people["sam"]).get(f"{URL}?inline=false"))
    assert all("content" not in f for f in files.values())


def test_the_answer_inlines_no_more_than_its_total(
    people, released_feedback, client_for, monkeypatch
):
    monkeypatch.setattr(downloads, "INLINE_TOTAL_BYTES", len(SMALL) + 10)
    files = _files(client_for(people["sam"]).get(f"{URL}?inline=true"))
    assert sorted(p for p, f in files.items() if "content" in f) == ["feedback/ps1.html"]
    assert "url" in files["feedback/plots.html"]


def test_a_blob_missing_from_storage_is_offered_by_url(people, released_feedback, client_for):
    from courses import blobstore

    blobstore.delete(hashlib.sha256(SMALL).hexdigest())
    files = _files(client_for(people["sam"]).get(f"{URL}?inline=true"))
    assert "content" not in files["feedback/ps1.html"] and files["feedback/ps1.html"]["url"]
    assert "content" in files["feedback/plots.html"]


def test_a_bad_value_is_a_sentence(people, released_feedback, client_for):
    answer = client_for(people["sam"]).get(f"{URL}?inline=maybe")
    assert answer.status_code == 400
    assert "inline" in answer.content.decode()
    assert not AuditEvent.objects.filter(action="feedback_fetched").exists()


def test_feedback_on_several_submissions_costs_no_query_per_submission(
    people, released, released_feedback, client_for
):
    sam = client_for(people["sam"])
    with CaptureQueriesContext(connection) as one:
        assert len(sam.get(f"{URL}?inline=true").json()) == 1
    for text in (b"second", b"third"):
        again = services.submit_assignment(
            student=people["sam"],
            assignment=released,
            upload=make_upload({"ps1.ipynb": b'{"cells": ["%s"]}' % text}),
        )
        services.release_feedback(
            actor=people["gus"], submission=again, upload=make_upload({"fb.html": text})
        )
    with CaptureQueriesContext(connection) as three:
        answer = sam.get(f"{URL}?inline=true").json()
    assert [base64.b64decode(f["files"][0]["content"]) for f in answer[1:]] == [b"second", b"third"]
    assert len(three) == len(one)


def test_s3_answers_small_files_inline_and_large_ones_by_presigned_url(
    people, submission, client_for, s3_storage, monkeypatch
):
    monkeypatch.setattr(downloads, "INLINE_FILE_BYTES", 1000)
    services.release_feedback(
        actor=people["gus"],
        submission=submission,
        upload=make_upload({"fb.html": SMALL, "plots.html": LARGE}),
    )
    files = _files(client_for(people["sam"]).get(f"{URL}?inline=true"))
    assert base64.b64decode(files["fb.html"]["content"]) == SMALL and "url" not in files["fb.html"]
    url = files["plots.html"]["url"]
    assert "content" not in files["plots.html"] and url.startswith(s3_storage.endpoint + "/")
    assert "X-Amz-Signature=" in url


def test_many_inline_files_each_come_with_their_own_bytes(people, submission, client_for):
    files = {f"feedback/{n:03d}.html": f"<p>file {n}</p>".encode() * (n + 1) for n in range(120)}
    services.release_feedback(actor=people["gus"], submission=submission, upload=make_upload(files))
    answer = client_for(people["sam"]).get(f"{URL}?inline=true")
    got = {path: base64.b64decode(f["content"]) for path, f in _files(answer).items()}
    assert got == files


def test_only_this_answers_placeholders_are_filled_in():
    """The bytes go into the encoded answer in place of placeholders that carry a nonce of
    this answer: a string that looks like one (another answer's, or made up) stays as it is."""
    from rest_framework.renderers import JSONRenderer

    spliced = Spliced()
    real = spliced.placeholder(base64.b64encode(b"real bytes"))
    other = Spliced().placeholder(base64.b64encode(b"other"))
    forged = real.replace(spliced.nonce, "0" * 16)
    second = spliced.placeholder(base64.b64encode(b"second"))
    data = {"a": [real, second], "b": other, "c": forged, "d": "\x00spliced:", "e": "é"}
    body = spliced.splice(JSONRenderer().render(data))
    assert json.loads(body) == {
        "a": [base64.b64encode(b"real bytes").decode(), base64.b64encode(b"second").decode()],
        "b": other,
        "c": forged,
        "d": "\x00spliced:",
        "e": "é",
    }
    assert Spliced().splice(b'{"x": 1}') == b'{"x": 1}'


@pytest.mark.postgres_only
def test_on_postgresql_the_reads_of_a_fetch_are_planned_once_per_connection(
    people, released_feedback, client_for
):
    """Asked again and again (every student at once after a release), the fetch's reads are
    prepared statements whose generic plan PostgreSQL keeps, not planned on every call."""
    sam = client_for(people["sam"])
    for _ in range(12):
        assert sam.get(f"{URL}?inline=true").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()
    planned = {
        table: max((plans for sql, plans in prepared if f'FROM "{table}"' in sql), default=-1)
        for table in ("courses_assignment", "courses_feedback", "courses_bundleentry")
    }
    assert all(plans > 0 for plans in planned.values()), planned
