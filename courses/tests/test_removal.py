"""Removal: an instructor removes one submission (``nbgrader list --inbound --remove``), and
``purge`` deletes a course's submissions at the end of a term; both audited, both leave the
bytes to ``gc_blobs``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from courses import blobstore, removal, services, storage_checks
from courses.exceptions import NotFound, PermissionDenied
from courses.models import AuditEvent, Bundle, Feedback, Submission
from tests.harness.uploads import make_upload


def _submit(people, assignment, name: str, text: bytes) -> Submission:
    return services.submit_assignment(
        student=people[name],
        assignment=assignment,
        upload=make_upload({"ps1.ipynb": b'{"cells": ["%s"]}' % text}),
    )


@pytest.fixture
def term(people, released, course):
    hw2 = services.release_assignment(
        actor=people["ines"],
        course=course,
        code="hw2",
        upload=make_upload({"hw2.ipynb": b'{"cells": []}'}),
    )
    made = {
        "sam1": _submit(people, released, "sam", b"sam one"),
        "sam2": _submit(people, released, "sam", b"sam two"),
        "tia1": _submit(people, released, "tia", b"tia one"),
        "tia-hw2": _submit(people, hw2, "tia", b"tia hw2"),
    }
    services.release_feedback(
        actor=people["gus"],
        submission=made["sam2"],
        upload=make_upload({"feedback/ps1.html": b"<p>ok</p>"}),
    )
    return made


def test_an_instructor_removes_a_submission_audited_and_gc_frees_its_bytes(people, term):
    gone = term["sam1"]
    sha = gone.bundle.entries.get().blob_id
    services.delete_submission(actor=people["ines"], submission=gone)
    assert not Submission.objects.filter(pk=gone.pk).exists()
    assert not Bundle.objects.filter(pk=gone.bundle_id).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.SUBMISSION_DELETED)
    assert (event.actor_name, event.student_name) == ("ines", "sam")
    assert blobstore.exists(sha)  # until gc_blobs
    storage_checks.gc_blobs(grace=dt.timedelta(0))
    assert not blobstore.exists(sha)
    assert Submission.objects.filter(student=people["sam"]).count() == 1


def test_purge_of_one_assignment_before_a_date(people, term):
    cut = term["sam2"].timestamp
    summary = removal.purge_submissions(
        actor=people["ines"],
        course=term["sam1"].assignment.course,
        assignment_code="ps1",
        before=cut,
    )
    assert (summary.submissions, summary.students, summary.assignments, summary.feedback) == (
        1,
        1,
        1,
        0,
    )
    assert set(Submission.objects.values_list("pk", flat=True)) == {
        term["sam2"].pk,
        term["tia1"].pk,
        term["tia-hw2"].pk,
    }
    event = AuditEvent.objects.get(action=AuditEvent.Action.PURGED)
    assert event.assignment_code == "ps1"
    assert event.detail["submissions"] == 1
    assert event.detail["before"] == cut.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def test_purge_dry_run_counts_and_changes_nothing(people, term, course):
    summary = removal.purge_submissions(actor=None, course=course, dry_run=True)
    assert (summary.submissions, summary.students, summary.assignments, summary.feedback) == (
        4,
        2,
        2,
        1,
    )
    assert summary.bytes > 0
    assert Submission.objects.count() == 4
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PURGED).exists()


def test_purge_refusals(people, term, course):
    for who in ("gus", "sam"):
        with pytest.raises(PermissionDenied):
            removal.purge_submissions(actor=people[who], course=course)
    with pytest.raises(NotFound, match="no assignment 'nope'"):
        removal.purge_submissions(actor=people["ines"], course=course, assignment_code="nope")
    assert Submission.objects.count() == 4


def test_purge_command_summary_and_errors(term, course, capsys):
    call_command("purge", "phys101", "--dry-run")
    assert capsys.readouterr().out.startswith(
        "Dry run: would delete 4 submission(s) of 2 student(s) to 2 assignment(s) in phys101"
    )
    assert Submission.objects.count() == 4
    later = (timezone.now() + dt.timedelta(days=1)).isoformat()
    call_command("purge", "phys101", "--assignment", "hw2", "--before", later)
    out = capsys.readouterr().out
    assert out.startswith("Deleted 1 submission(s) of 1 student(s) to 1 assignment(s) in ")
    assert "assignment hw2 of phys101 made before" in out
    assert "run gc_blobs" in out
    call_command("purge", "phys101")
    assert not Submission.objects.exists() and not Feedback.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PURGED).count() == 2
    with pytest.raises(CommandError, match="is not a time"):
        call_command("purge", "phys101", "--before", "end of term")
    with pytest.raises(CommandError, match="There is no course 'nope'"):
        call_command("purge", "nope")
    with pytest.raises(CommandError, match="no assignment 'x'"):
        call_command("purge", "phys101", "--assignment", "x")
    # Nothing matched: nothing recorded.
    call_command("purge", "phys101")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PURGED).count() == 2
