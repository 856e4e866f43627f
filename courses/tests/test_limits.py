"""Per-person limits (courses/limits.py): the submission rate, the quota per student and
course, and the audit event every failed upload leaves behind."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from courses import blobstore, services
from courses.exceptions import BadArchive, NotFound, TooLarge, TooManyRequests
from courses.limits import submission_usage
from courses.models import AuditEvent, Blob, Bundle, Submission
from courses.services import Upload
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.storage

NOTEBOOK = b'{"cells": [1]}'


def submit(people, released, name: str = "sam", files: dict[str, bytes] | None = None):
    return services.submit_assignment(
        student=people[name],
        assignment=released,
        upload=make_upload(files or {"ps1.ipynb": NOTEBOOK}),
    )


def failures(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="upload_failed", **filters).order_by("at"))


# --- rate ----------------------------------------------------------------------------------


def test_more_submissions_a_minute_than_allowed_are_refused_with_the_wait(
    settings, people, released
):
    settings.EXCHANGE_UPLOADS_PER_MINUTE = 3
    for number in range(3):
        submit(people, released, files={"ps1.ipynb": b'{"n": %d}' % number})
    with pytest.raises(TooManyRequests) as refused:
        submit(people, released)
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limited"
    assert 1 <= refused.value.retry_after <= 60
    assert refused.value.detail == (
        "You have sent 3 submissions in the last minute, the most allowed; "
        f"try again in {refused.value.retry_after} seconds."
    )
    assert Submission.objects.count() == 3
    # Another student is not slowed down by sam.
    submit(people, released, name="tia")
    # A client that insists leaves one audit event per window, not one per request.
    with pytest.raises(TooManyRequests):
        submit(people, released)
    (event,) = failures()
    assert event.actor == people["sam"]
    assert event.detail["error"] == "rate_limited" and event.detail["kind"] == "submission"
    # A minute later the oldest submissions have left the window.
    AuditEvent.objects.update(at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61))
    submit(people, released)


def test_failed_attempts_count_towards_the_rate(settings, people, released):
    settings.EXCHANGE_UPLOADS_PER_MINUTE = 2
    for _ in range(2):
        with pytest.raises(BadArchive):
            services.submit_assignment(
                student=people["sam"],
                assignment=released,
                upload=Upload(manifest=json.dumps([{"path": "../x", "size": 1, "sha256": "0"}])),
            )
    with pytest.raises(TooManyRequests):
        submit(people, released)


def test_no_rate_when_the_setting_is_zero(settings, people, released):
    settings.EXCHANGE_UPLOADS_PER_MINUTE = 0
    for number in range(12):
        submit(people, released, files={"ps1.ipynb": b'{"n": %d}' % number})


# --- quota ---------------------------------------------------------------------------------


def test_quota_counts_distinct_files_of_own_submissions_not_released_ones(
    settings, people, released
):
    settings.EXCHANGE_SUBMISSION_QUOTA = 10_000
    release_data = b"x,y\n" * 1000  # 4000 bytes, released: never counted
    first = {"ps1.ipynb": b"a" * 3000, "data/big.csv": release_data}
    submit(people, released, files=first)
    assert submission_usage(student=people["sam"], course=released.course) == 3000
    # The same files again cost nothing; a new 5000-byte file brings sam to 8000.
    submit(people, released, files=first)
    submit(people, released, files={**first, "extra.bin": b"b" * 5000})
    assert submission_usage(student=people["sam"], course=released.course) == 8000
    blobs_before = set(blobstore.iter_stored_shas())
    with pytest.raises(TooLarge) as refused:
        submit(people, released, files={"ps1.ipynb": b"c" * 2500})
    assert refused.value.status_code == 413
    assert refused.value.code == "quota_exceeded"
    assert "over the quota of 9.8 KiB per student and course (you use 7.8 KiB)" in (
        refused.value.detail
    )
    # Refused on the manifest: not a byte of it was stored.
    assert set(blobstore.iter_stored_shas()) == blobs_before
    assert Submission.objects.filter(student=people["sam"]).count() == 3
    # Another student has a quota of their own.
    submit(people, released, name="tia", files={"ps1.ipynb": b"c" * 2500})


def test_quota_is_checked_again_under_the_submission_lock(settings, people, released, monkeypatch):
    """Two submissions that each fit but together do not: the one that takes the lock
    second is refused (a concurrent submission is injected while the bytes are staged)."""
    settings.EXCHANGE_SUBMISSION_QUOTA = 5_000
    real_stage = services.stage_bundle

    def stage_while_another_lands(**kwargs):
        staged = real_stage(**kwargs)
        monkeypatch.setattr(services.bundles, "stage_bundle", real_stage)
        submit(people, released, files={"other.bin": b"o" * 3000})
        return staged

    monkeypatch.setattr(services.bundles, "stage_bundle", stage_while_another_lands)
    with pytest.raises(TooLarge, match="quota"):
        submit(people, released, files={"mine.bin": b"m" * 3000})
    assert Submission.objects.filter(student=people["sam"]).count() == 1


def test_no_quota_when_the_setting_is_zero(settings, people, released):
    settings.EXCHANGE_SUBMISSION_QUOTA = 0
    submit(people, released, files={"big.bin": b"z" * 50_000})


# --- failed uploads are audited ---------------------------------------------------------------


def test_a_refused_submission_leaves_who_what_why_and_bytes(settings, people, released):
    settings.EXCHANGE_SUBMISSION_QUOTA = 1_000
    upload = make_upload({"ps1.ipynb": b"q" * 5000})
    sent = len(upload.archive.getvalue())
    with pytest.raises(TooLarge):
        services.submit_assignment(student=people["sam"], assignment=released, upload=upload)
    (event,) = failures()
    assert event.actor_name == "sam" and event.student_name == "sam"
    assert (event.course_code, event.assignment_code) == ("phys101", "ps1")
    assert event.detail["kind"] == "submission"
    assert event.detail["error"] == "quota_exceeded" and event.detail["status"] == 413
    assert "over the quota" in event.detail["reason"]
    assert event.detail["bytes"] == sent > 0


def test_outsiders_and_wrong_roles_leave_nothing_in_the_courses_trail(people, released):
    with pytest.raises(NotFound):
        submit(people, released, name="olga")
    with pytest.raises(Exception, match="may not"):
        services.release_assignment(
            actor=people["sam"], course=released.course, code="ps2", upload=make_upload({})
        )
    assert failures() == []


def test_failed_release_and_feedback_are_audited_too(people, released):
    submission = submit(people, released)
    bad = Upload(manifest="not json")
    with pytest.raises(BadArchive):
        services.release_assignment(
            actor=people["ines"], course=released.course, code="ps2", upload=bad
        )
    with pytest.raises(BadArchive):
        services.release_feedback(actor=people["gus"], submission=submission, upload=bad)
    release, feedback = failures()
    assert release.detail["kind"] == "release" and release.detail["assignment_id"] == "ps2"
    assert release.actor_name == "ines" and release.detail["bytes"] == 0
    assert feedback.detail["kind"] == "feedback" and feedback.submission == submission
    assert feedback.student_name == "sam" and feedback.actor_name == "gus"


@pytest.mark.django_db(transaction=True)
def test_the_audit_survives_the_rollback_of_the_upload_it_describes(monkeypatch):
    """A failure inside the submission's transaction, after its bytes were stored and its
    rows written: the rows roll back, the audit event is committed."""
    course = services.create_course(code="phys101", title="Physics")
    ines = services.add_member(course=course, username="ines", role="instructor").user
    sam = services.add_member(course=course, username="sam", role="student").user
    assignment = services.release_assignment(
        actor=ines, course=course, code="ps1", upload=make_upload({"ps1.ipynb": b"{}"})
    )
    real_record_bundle = services.record_bundle

    def record_then_fail(**kwargs):
        real_record_bundle(**kwargs)
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(services.bundles, "record_bundle", record_then_fail)
    upload = make_upload({"ps1.ipynb": b'{"answer": 42}'})
    with pytest.raises(RuntimeError):
        services.submit_assignment(student=sam, assignment=assignment, upload=upload)
    assert not Submission.objects.exists()
    assert not Bundle.objects.filter(kind="submission").exists()
    (event,) = failures()
    assert event.detail == {
        "kind": "submission",
        "error": "server_error",
        "reason": "RuntimeError",
        "status": 500,
        "bytes": len(upload.archive.getvalue()),
    }
    # The bytes it stored are orphans now, for gc_blobs.
    assert Blob.objects.count() == 1


def test_an_audit_that_cannot_be_written_does_not_hide_the_uploads_error(
    people, released, monkeypatch, caplog
):
    def database_gone(**kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(services, "record_event", database_gone)
    with pytest.raises(BadArchive, match="not valid JSON"):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=Upload(manifest="{")
        )
    assert "Could not record the failed submission upload of sam" in caplog.text


def test_bytes_received_of_an_archive_that_cannot_be_measured_are_zero():
    from io import BytesIO

    from courses.limits import _received_bytes

    closed = BytesIO(b"abc")
    closed.close()
    assert _received_bytes(Upload(manifest="[]", archive=closed)) == 0
    assert _received_bytes(Upload(manifest="[]", archive=BytesIO(b"abc"))) == 3
