"""Feedback released to many submissions in one request (``POST .../assignments/{a}/feedback``):
what is recorded, and every bad batch refused whole with a sentence naming what is wrong."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courses import services
from courses.models import AuditEvent, Bundle, Feedback, NotebookScore
from nbgrader_exchange.feedback_batch import FeedbackRelease, distinct_files, manifest_of
from nbgrader_exchange.files import entry_from_bytes
from nbgrader_exchange.transfer import write_archive
from tests.harness.personas import SUBMITTED
from tests.harness.uploads import make_upload

C = "/api/v1/courses/phys101"
A = f"{C}/assignments/ps1"
SCORES = [{"notebook": "ps1", "score": 3, "max_score": 4}]


@pytest.fixture
def two(people, released) -> list[Any]:
    """Sam's and Tia's submissions of ps1."""
    return [
        services.submit_assignment(
            student=people[name], assignment=released, upload=make_upload(SUBMITTED)
        )
        for name in ("sam", "tia")
    ]


def release_of(submission: Any, html: bytes, scores: Any = None) -> FeedbackRelease:
    return FeedbackRelease(
        submission.student.username,
        submission.pk,
        [entry_from_bytes("ps1.html", html), entry_from_bytes("style.css", b"p {}")],
        scores,
    )


def form(batch: list[FeedbackRelease], *, manifest: Any = None, archive: bytes | None = None):
    """The multipart form the plugin sends for ``batch`` (parts replaceable to attack it)."""
    if archive is None:
        buffer = io.BytesIO()
        write_archive(distinct_files(batch), buffer)
        archive = buffer.getvalue()
    manifest = manifest_of(batch) if manifest is None else manifest
    return {
        "manifest": manifest if isinstance(manifest, str) else json.dumps(manifest),
        "archive": io.BytesIO(archive),
    }


def post(client: Any, data: dict[str, Any]) -> Any:
    return client.post(f"{A}/feedback", data, format="multipart")


def nothing_recorded() -> None:
    assert not Feedback.objects.exists()
    assert not Bundle.objects.filter(kind=Bundle.Kind.FEEDBACK).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.FEEDBACK_RELEASED).exists()


@pytest.mark.django_db
def test_one_request_releases_feedback_to_each_submission(people, two, client_for):
    sam, tia = two
    batch = [release_of(sam, b"<p>sam</p>", SCORES), release_of(tia, b"<p>tia</p>")]
    response = post(client_for(people["gus"]), form(batch))
    assert response.status_code == 201, response.content
    assert [(f["submission_id"], f["file_count"]) for f in response.json()] == [
        (sam.pk, 2),
        (tia.pk, 2),
    ]
    assert client_for(people["sam"]).get(f"{A}/feedback").json()[0]["score"] == 3
    own = client_for(people["tia"]).get(f"/api/v1/submissions/{tia.pk}/feedback").json()
    assert sorted(f["path"] for f in own["files"]) == ["ps1.html", "style.css"]
    [html] = [f for f in own["files"] if f["path"] == "ps1.html"]
    assert client_for(people["tia"]).get(html["url"]).getvalue() == b"<p>tia</p>"
    assert NotebookScore.objects.get().feedback.submission == sam
    events = AuditEvent.objects.filter(action=AuditEvent.Action.FEEDBACK_RELEASED)
    assert sorted(e.student_name for e in events) == ["sam", "tia"]
    # Releasing again replaces: the scores go, the files are the new ones.
    again = [release_of(sam, b"<p>sam, again</p>")]
    assert post(client_for(people["ines"]), form(again)).status_code == 201
    assert Feedback.objects.count() == 2
    assert not NotebookScore.objects.exists()


@pytest.mark.django_db
def test_the_shared_file_is_sent_once(people, two, client_for):
    batch = [release_of(s, b"<p>same</p>") for s in two]
    assert len(distinct_files(batch)) == 2
    assert post(client_for(people["gus"]), form(batch)).status_code == 201


@pytest.mark.django_db
def test_the_listing_names_each_submissions_secret(people, released, client_for):
    secret = b"4f0c1d-secret\n"
    services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=make_upload({**SUBMITTED, "submission_secret.txt": secret}),
    )
    services.submit_assignment(
        student=people["tia"], assignment=released, upload=make_upload(SUBMITTED)
    )
    rows = client_for(people["gus"]).get(f"{A}/submissions").json()
    by_student = {row["student"]: row["submission_secret_sha256"] for row in rows}
    assert by_student == {"sam": entry_from_bytes("s", secret).sha256, "tia": None}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "status"),
    [("sam", 403), ("olga", 404), (None, 401)],
    ids=["student", "outsider", "anon"],
)
def test_only_course_staff_may_release(people, two, client_for, who, status):
    client = client_for(people[who] if who else None)
    response = post(client, form([release_of(two[0], b"<p>mine</p>")]))
    assert response.status_code == status, response.content
    nothing_recorded()


@pytest.mark.django_db
def test_a_submission_of_another_course_is_refused_and_nothing_recorded(
    people, two, client_for, django_user_model
):
    other = services.create_course(code="chem201", title="Chemistry")
    services.add_member(course=other, username="ines", role="instructor")
    services.add_member(course=other, username="sam", role="student")
    elsewhere_release = services.release_assignment(
        actor=people["ines"], course=other, code="ps1", upload=make_upload({"a.txt": b"a"})
    )
    foreign = services.submit_assignment(
        student=people["sam"], assignment=elsewhere_release, upload=make_upload(SUBMITTED)
    )
    batch = [release_of(two[0], b"<p>ok</p>"), release_of(foreign, b"<p>stolen</p>")]
    response = post(client_for(people["ines"]), form(batch))
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "unknown_submission"
    assert (
        f"no submission {foreign.pk} of assignment 'ps1' in course 'phys101'"
        in (response.json()["detail"])
    )
    nothing_recorded()


@pytest.mark.django_db
def test_a_file_whose_bytes_do_not_match_is_named(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>"), release_of(two[1], b"<p>tia</p>")]
    manifest = manifest_of(batch)
    manifest["submissions"][1]["files"][0]["sha256"] = "0" * 64
    # The archive's member is named by the claimed hash, but its bytes are another file's.
    files = [
        replace(e, path="0" * 64) if e.data == b"<p>tia</p>" else e for e in distinct_files(batch)
    ]
    buffer = io.BytesIO()
    write_archive(files, buffer)
    response = post(
        client_for(people["gus"]), form(batch, manifest=manifest, archive=buffer.getvalue())
    )
    assert response.status_code == 400
    assert f"'ps1.html' of submission {two[1].pk}" in response.json()["detail"]
    nothing_recorded()
    # The refusal is in the course's trail, as a single upload's is.
    failed = AuditEvent.objects.get(action=AuditEvent.Action.UPLOAD_FAILED)
    assert (failed.actor_name, failed.detail["kind"], failed.assignment_code) == (
        "gus",
        "feedback",
        "ps1",
    )


@pytest.mark.django_db
def test_a_claimed_size_that_is_not_the_bytes_is_refused(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>")]
    manifest = manifest_of(batch)
    manifest["submissions"][0]["files"][0]["size"] += 1
    response = post(client_for(people["gus"]), form(batch, manifest=manifest))
    assert response.status_code == 400
    assert "'ps1.html' of submission" in response.json()["detail"]
    nothing_recorded()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (lambda m: m["submissions"].append(m["submissions"][0]), "named more than once"),
        (lambda m: m["submissions"][0].update(id="7"), "needs a submission id"),
        (lambda m: m["submissions"][0].update(id=True), "needs a submission id"),
        (lambda m: m["submissions"][0].update(id=2**64), "needs a submission id"),
        (lambda m: m["submissions"][0].update(extra=1), "must be an object with id, files"),
        (lambda m: m["submissions"].clear(), "at least one submission"),
        (lambda m: m["submissions"][0]["files"].append({"path": "../x"}), "Submission"),
        (
            lambda m: m["submissions"][0].update(scores=[{"notebook": "ps1", "score": 5}]),
            "exactly notebook, score and max_score",
        ),
    ],
    ids=[
        "duplicate",
        "string-id",
        "bool-id",
        "huge-id",
        "extra-key",
        "empty",
        "bad-path",
        "bad-scores",
    ],
)
def test_a_bad_manifest_is_refused_whole(people, two, client_for, change, sentence):
    batch = [release_of(two[0], b"<p>ok</p>"), release_of(two[1], b"<p>tia</p>")]
    manifest = manifest_of(batch)
    change(manifest)
    response = post(client_for(people["gus"]), form(batch, manifest=manifest))
    assert response.status_code == 400, response.content
    assert sentence in response.json()["detail"]
    nothing_recorded()


@pytest.mark.django_db
def test_a_manifest_that_is_not_an_object_is_refused(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>")]
    for manifest in ("[]", "{", '{"submissions": 3}'):
        response = post(client_for(people["gus"]), form(batch, manifest=manifest))
        assert response.status_code == 400
        assert response.json()["error"] == "bad_manifest"
    nothing_recorded()


@pytest.mark.django_db
def test_too_many_submissions_in_one_request_are_refused(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>")]
    manifest = manifest_of(batch)
    manifest["submissions"] = [
        {**manifest["submissions"][0], "id": pk} for pk in range(1, services.MAX_FEEDBACK_BATCH + 2)
    ]
    response = post(client_for(people["gus"]), form(batch, manifest=manifest))
    assert response.status_code == 413
    assert f"at most {services.MAX_FEEDBACK_BATCH}" in response.json()["detail"]
    nothing_recorded()


@pytest.mark.django_db
def test_bytes_left_out_of_the_archive_are_named(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>")]
    buffer = io.BytesIO()
    write_archive(distinct_files(batch)[1:], buffer)
    response = post(client_for(people["gus"]), form(batch, archive=buffer.getvalue()))
    assert response.status_code == 400
    assert response.json()["error"] == "missing_file"
    assert f"'ps1.html' of submission {two[0].pk}" in response.json()["detail"]
    nothing_recorded()


@pytest.mark.django_db
def test_an_archive_that_is_not_a_tar_gz_is_refused(people, two, client_for):
    batch = [release_of(two[0], b"<p>ok</p>")]
    response = post(client_for(people["gus"]), form(batch, archive=b"not a tar.gz at all"))
    assert response.status_code == 400
    assert response.json()["error"] == "bad_archive"
    nothing_recorded()


@pytest.mark.django_db
def test_a_submission_removed_while_the_bytes_arrive_releases_nothing(
    people, two, client_for, monkeypatch
):
    from courses.services import feedback_many

    real_stage = feedback_many.bundles.stage_bundle

    def stage_then_remove(**kwargs):
        staged = real_stage(**kwargs)
        services.delete_submission(actor=None, submission=two[1])
        return staged

    monkeypatch.setattr(feedback_many.bundles, "stage_bundle", stage_then_remove)
    batch = [release_of(two[0], b"<p>ok</p>"), release_of(two[1], b"<p>tia</p>")]
    response = post(client_for(people["gus"]), form(batch))
    assert response.status_code == 404
    assert f"Submission {two[1].pk} was deleted" in response.json()["detail"]
    nothing_recorded()


@pytest.mark.django_db
def test_a_batch_runs_as_many_statements_for_six_students_as_for_two(
    people, course, released, client_for
):
    """Files, bundles, feedback, scores and audit events are each written once per batch:
    first releases and releases again alike; each student ends with their own."""
    subs = [
        services.submit_assignment(
            student=services.add_member(course=course, username=f"s{n}", role="student").user,
            assignment=released,
            upload=make_upload(SUBMITTED),
        )
        for n in range(8)
    ]

    def statements(batch: list[FeedbackRelease]) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert post(client_for(people["gus"]), form(batch)).status_code == 201
        return len(queries)

    def batch(subs: list[Any], text: bytes) -> list[FeedbackRelease]:
        return [release_of(s, text + s.student.username.encode(), SCORES) for s in subs]

    assert statements(batch(subs[:2], b"first ")) == statements(batch(subs[2:8], b"first "))
    assert statements(batch(subs[:2], b"again ")) == statements(batch(subs[2:8], b"again "))
    for sub in subs:
        own = client_for(sub.student).get(f"/api/v1/submissions/{sub.pk}/feedback").json()
        [html] = [f for f in own["files"] if f["path"] == "ps1.html"]
        got = client_for(sub.student).get(html["url"]).getvalue()
        assert got == b"again " + sub.student.username.encode()
        assert [s["score"] for s in own["scores"]] == [3.0]
    events = AuditEvent.objects.filter(action=AuditEvent.Action.FEEDBACK_RELEASED)
    assert events.count() == 16
    assert sorted({e.student_name for e in events}) == sorted(s.student.username for s in subs)


@pytest.mark.django_db
def test_a_database_that_cannot_return_ids_from_one_insert_gets_rows_one_by_one(
    people, two, client_for, monkeypatch
):
    """SQLite before 3.35 gives no ids back from a many-row insert: the bundles and the
    feedback are then inserted one by one, and each student still gets their own."""
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    sam, tia = two
    batch = [release_of(sam, b"<p>sam</p>", SCORES), release_of(tia, b"<p>tia</p>")]
    assert post(client_for(people["gus"]), form(batch)).status_code == 201
    for sub, text in [(sam, b"<p>sam</p>"), (tia, b"<p>tia</p>")]:
        own = client_for(sub.student).get(f"/api/v1/submissions/{sub.pk}/feedback").json()
        [html] = [f for f in own["files"] if f["path"] == "ps1.html"]
        assert client_for(sub.student).get(html["url"]).getvalue() == text
