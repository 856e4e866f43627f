"""A course or a member vanishing while a request is under way ends in a sentence, never a
500 or an ownerless bundle: a submit to a course deleted (or by a student removed) meanwhile
is 404 and leaves no bundle, other writes likewise, and a course deletion waits for the
submissions in flight. Failures are injected with ``monkeypatch``.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from courses import services, storage_checks
from courses.exceptions import NotFound
from courses.models import Bundle, Course, Submission
from tests.harness.uploads import make_upload

# --- course and member vanishing mid-request ----------------------------------------------


def _during_staging(monkeypatch, action) -> None:
    """Run ``action`` while an upload's bytes are being staged (another request)."""
    stage = services.stage_bundle

    def stage_then_act(**kwargs):
        staged = stage(**kwargs)
        action()
        return staged

    monkeypatch.setattr(services.bundles, "stage_bundle", stage_then_act)


def test_submit_to_a_course_deleted_meanwhile_is_404_and_leaves_no_bundle(
    released, people, monkeypatch
):
    course = released.course
    _during_staging(monkeypatch, lambda: services.delete_course(actor=None, course=course))
    with pytest.raises(NotFound, match="was deleted while your request was being handled"):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
        )
    assert not Bundle.objects.exists()
    assert storage_checks.verify_storage().ownerless_bundles == []


def test_submit_by_a_student_removed_meanwhile_is_404_with_a_sentence(
    released, people, monkeypatch
):
    course = released.course
    _during_staging(
        monkeypatch, lambda: services.remove_member(course=course, username="sam", actor=None)
    )
    with pytest.raises(NotFound, match="You were removed from course 'phys101'"):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
        )
    assert not Submission.objects.exists()


def test_submit_to_an_assignment_deleted_meanwhile_is_404_with_a_sentence(
    released, people, monkeypatch
):
    _during_staging(
        monkeypatch, lambda: services.delete_assignment(actor=None, assignment=released)
    )
    with pytest.raises(NotFound, match="Assignment 'ps1' was deleted while your submission"):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
        )
    assert not Submission.objects.exists()


@pytest.mark.parametrize("what", ["release", "feedback", "member"])
def test_other_writes_to_a_course_deleted_meanwhile_are_404(what, released, people, monkeypatch):
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    course = released.course
    _during_staging(monkeypatch, lambda: services.delete_course(actor=None, course=course))
    with pytest.raises(NotFound, match="was deleted while your request"):
        if what == "release":
            services.release_assignment(
                actor=people["ines"], course=course, code="ps2", upload=make_upload({"b": b"2"})
            )
        elif what == "feedback":
            services.release_feedback(
                actor=people["ines"], submission=submission, upload=make_upload({"f": b"3"})
            )
        else:
            services.delete_course(actor=None, course=course)
            services.add_member(course=course, username="new", role="student")
    assert not Bundle.objects.exists()


def test_deleting_a_deleted_course_is_404(course):
    services.delete_course(actor=None, course=course)
    with pytest.raises(NotFound, match="already deleted"):
        services.delete_course(actor=None, course=course)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_course_deletion_waits_for_submissions_in_flight_and_leaves_no_ownerless_bundle(
    released, people, monkeypatch
):
    course = released.course
    recording, go_on = threading.Event(), threading.Event()
    record = services.record_bundle
    outcome: dict[str, object] = {}

    def slow_record(**kwargs):
        bundle = record(**kwargs)
        recording.set()
        go_on.wait(30)
        return bundle

    monkeypatch.setattr(services.bundles, "record_bundle", slow_record)

    def submit() -> None:
        try:
            outcome["submission"] = services.submit_assignment(
                student=people["sam"], assignment=released, upload=make_upload({"a": b"1"})
            )
        except BaseException as exc:  # asserted below
            outcome["error"] = exc
        finally:
            connection.close()

    def delete() -> None:
        try:
            services.delete_course(actor=None, course=course)
        except BaseException as exc:  # asserted below
            outcome["delete_error"] = exc
        finally:
            connection.close()

    submitter = threading.Thread(target=submit)
    submitter.start()
    assert recording.wait(30)
    deleter = threading.Thread(target=delete)
    deleter.start()
    time.sleep(0.5)
    assert deleter.is_alive(), "the deletion did not wait for the submission in flight"
    go_on.set()
    submitter.join(30)
    deleter.join(30)
    assert "error" not in outcome and "delete_error" not in outcome, outcome
    assert not Course.objects.exists()
    assert storage_checks.verify_storage().ownerless_bundles == []
    assert not Bundle.objects.exists()
