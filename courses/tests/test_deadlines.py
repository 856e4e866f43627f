"""The deadline policy: due dates and cutoffs changed without a re-release, per-student
extensions, refusals after the cutoff (nothing recorded), late flags by the student's own
dates, and the audit trail of every change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from courses import deadlines, selectors, services
from courses.exceptions import BadRequest, NotFound, PermissionDenied
from courses.models import AuditEvent, Blob, Extension, Submission
from tests.harness.uploads import make_upload

FILES = {"ps1.ipynb": b'{"cells": ["answer"]}'}
HOUR = dt.timedelta(hours=1)


def _actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).values_list("action", flat=True))


def test_submission_after_the_cutoff_is_refused_with_a_sentence_and_nothing_recorded(
    people, released
):
    now = timezone.now()
    released = deadlines.set_deadlines(
        actor=people["ines"], assignment=released, due_date=now - 2 * HOUR, accept_until=now - HOUR
    )
    blobs, events = Blob.objects.count(), AuditEvent.objects.count()
    with pytest.raises(deadlines.PastCutoff) as refused:
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload(FILES)
        )
    assert refused.value.status_code == 403
    assert refused.value.code == "past_cutoff"
    assert "stopped accepting submissions at" in refused.value.detail
    assert "only an instructor of the course can extend" in refused.value.detail
    assert not Submission.objects.exists()
    assert Blob.objects.count() == blobs
    assert AuditEvent.objects.count() == events  # not even an upload_failed event


def test_cutoff_passing_while_the_bytes_arrive_records_nothing(people, released, monkeypatch):
    """The second check, at the recorded time: the cutoff passed during the upload."""
    deadlines.set_deadlines(
        actor=people["ines"], assignment=released, accept_until=timezone.now() + HOUR
    )
    real_stage = services.stage_bundle

    def slow_stage(**kwargs):
        staged = real_stage(**kwargs)
        released.__class__.objects.filter(pk=released.pk).update(
            accept_until=timezone.now() - dt.timedelta(seconds=1)
        )
        return staged

    monkeypatch.setattr(services.bundles, "stage_bundle", slow_stage)
    with pytest.raises(deadlines.PastCutoff):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload(FILES)
        )
    assert not Submission.objects.exists()


def test_an_extension_lets_the_student_submit_on_time_by_their_own_dates(people, released):
    now = timezone.now()
    released = deadlines.set_deadlines(
        actor=people["ines"], assignment=released, due_date=now - 2 * HOUR, accept_until=now - HOUR
    )
    _, created = deadlines.grant_extension(
        actor=people["ines"], assignment=released, username="sam", due_date=now + HOUR
    )
    assert created
    # The extension's due date is after the course's cutoff: the cutoff moves with it.
    dates = deadlines.dates_for(assignment=released, student=people["sam"])
    assert dates == deadlines.Dates(now + HOUR, now + HOUR, extended=True)
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(FILES)
    )
    assert not submission.is_late
    listed = selectors.list_submissions(assignment=released).get()
    assert listed.extended_due_date == now + HOUR
    assert not listed.is_late
    with pytest.raises(deadlines.PastCutoff):
        services.submit_assignment(
            student=people["tia"], assignment=released, upload=make_upload(FILES)
        )


def test_late_follows_each_students_own_due_date(people, released):
    for name in ("sam", "tia"):
        services.submit_assignment(
            student=people[name], assignment=released, upload=make_upload(FILES)
        )
    released = deadlines.set_deadlines(
        actor=people["ines"], assignment=released, due_date=timezone.now() - HOUR
    )
    deadlines.grant_extension(
        actor=people["ines"],
        assignment=released,
        username="tia",
        due_date=timezone.now() + HOUR,
    )
    late = {s.student.username: s.is_late for s in Submission.objects.all()}
    assert late == {"sam": True, "tia": False}
    assert selectors.figures_of(released).late == 1
    assert {r.username: r.is_late for r in selectors.student_rows(released)} == {
        "sam": True,
        "tia": False,
    }


def test_deadline_changes_are_audited_and_a_repeat_changes_nothing(people, released):
    due = timezone.now() + HOUR
    deadlines.set_deadlines(actor=people["ines"], assignment=released, due_date=due)
    deadlines.set_deadlines(actor=people["ines"], assignment=released, due_date=due)
    deadlines.set_deadlines(actor=people["ines"], assignment=released, accept_until=due + HOUR)
    deadlines.set_deadlines(actor=people["ines"], assignment=released, accept_until=None)
    events = AuditEvent.objects.filter(
        action__in=[AuditEvent.Action.DUE_DATE_CHANGED, AuditEvent.Action.CUTOFF_CHANGED]
    ).order_by("at", "id")
    assert [e.action for e in events] == ["due_date_changed", "cutoff_changed", "cutoff_changed"]
    assert events[2].detail == {
        "old_accept_until": (due + HOUR).isoformat(),
        "accept_until": None,
    }
    released.refresh_from_db()
    assert released.due_date == due and released.accept_until is None


def test_a_cutoff_before_the_due_date_is_refused(people, released):
    now = timezone.now()
    with pytest.raises(BadRequest, match="cannot be before the due date"):
        deadlines.set_deadlines(
            actor=people["ines"], assignment=released, due_date=now, accept_until=now - HOUR
        )
    with pytest.raises(BadRequest, match="cannot be before the due date"):
        deadlines.grant_extension(
            actor=people["ines"],
            assignment=released,
            username="sam",
            due_date=now,
            accept_until=now - HOUR,
        )
    released.refresh_from_db()
    assert released.due_date is None and not Extension.objects.exists()


@pytest.mark.parametrize("who", ["gus", "sam"])
def test_only_instructors_change_deadlines(people, released, who):
    with pytest.raises(PermissionDenied):
        deadlines.set_deadlines(actor=people[who], assignment=released, due_date=timezone.now())
    with pytest.raises(PermissionDenied):
        deadlines.grant_extension(
            actor=people[who], assignment=released, username="tia", due_date=timezone.now()
        )


def test_extensions_are_for_students_and_need_a_date(people, released):
    with pytest.raises(NotFound, match="is not a student"):
        deadlines.grant_extension(
            actor=people["ines"], assignment=released, username="gus", due_date=timezone.now()
        )
    with pytest.raises(BadRequest, match="needs a due date, a cutoff or both"):
        deadlines.grant_extension(actor=people["ines"], assignment=released, username="sam")
    with pytest.raises(NotFound, match="has no extension"):
        deadlines.revoke_extension(actor=people["ines"], assignment=released, username="sam")


def test_extension_changed_then_revoked_is_audited(people, released):
    first = timezone.now() + HOUR
    deadlines.grant_extension(
        actor=people["ines"], assignment=released, username="sam", due_date=first
    )
    _, created = deadlines.grant_extension(
        actor=people["ines"], assignment=released, username="sam", due_date=first
    )
    assert not created
    deadlines.grant_extension(
        actor=people["ines"], assignment=released, username="sam", accept_until=first + HOUR
    )
    deadlines.revoke_extension(actor=people["ines"], assignment=released, username="sam")
    assert _actions(student_name="sam") == [
        "extension_revoked",
        "extension_granted",
        "extension_granted",
        "roster_changed",
    ]
    assert not Extension.objects.exists()
    assert deadlines.dates_for(assignment=released, student=people["sam"]).extended is False


def test_an_assignment_deleted_meanwhile_is_not_found_not_a_crash(people, released):
    """The course's deletion may commit between the caller's lookup and the row lock."""
    from courses.models import Assignment

    Assignment.objects.filter(pk=released.pk).delete()
    with pytest.raises(NotFound, match="was deleted while your change"):
        deadlines.set_deadlines(
            actor=people["ines"], assignment=released, accept_until=released.released_at
        )


def test_a_course_deleted_after_the_callers_lookup_is_not_found_not_a_crash(people, released):
    """As a site admin's course delete racing a PATCH of one of its assignments."""
    from courses.models import Course
    from courses.permissions import get_assignment_for

    assignment, _ = get_assignment_for(people["ines"], "phys101", "ps1")
    Course.objects.filter(pk=released.course_id).delete()
    with pytest.raises(NotFound):
        deadlines.set_deadlines(
            actor=people["ines"], assignment=assignment, accept_until=released.released_at
        )
