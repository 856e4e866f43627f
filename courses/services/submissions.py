"""Submissions: a student submits, an instructor or grader collects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .. import deadlines
from ..archive import ManifestEntry
from ..exceptions import NotFound
from ..limits import audited_upload, check_submission_quota, check_submission_rate
from ..models import Assignment, AuditEvent, Bundle, Membership, Submission
from ..permissions import Action
from . import bundles
from .audit import record_event
from .bundles import StagedBundle, Upload, _shas_of
from .guards import _require, _require_course

# --- submit -------------------------------------------------------------------------------


@audited_upload("submission")
def submit_assignment(
    *, student: AbstractBaseUser, assignment: Assignment, upload: Upload
) -> Submission:
    """Record a new submission; every submission is kept, with a unique server timestamp.

    Within the per-person limits (``courses/limits.py``): the submission rate, checked
    before the upload is read, and the quota, checked on the manifest and again under the
    lock."""
    course = assignment.course
    _require(student, course, Action.SUBMIT)
    if not assignment.is_released:
        raise NotFound(f"Assignment {assignment.code!r} in course {course.code!r} is not released.")
    # Refused before any byte is stored, and again at the recorded time below.
    deadlines.check_open(assignment=assignment, student=student, at=timezone.now())
    check_submission_rate(student=student)
    readable = _shas_of([assignment.release_id, *_own_submission_bundles(student, assignment)])

    def within_quota(entries: list[ManifestEntry]) -> None:
        check_submission_quota(student=student, course=course, entries=entries)

    staged = bundles.stage_bundle(
        upload=upload, readable_shas=readable, check_manifest=within_quota
    )
    with transaction.atomic():
        _require_course(course)
        # One student's submissions to one course are serialised on their membership row,
        # so concurrent submits get distinct, increasing timestamps.
        try:
            Membership.objects.select_for_update().get(user=student, course=course)
        except Membership.DoesNotExist:
            raise NotFound(
                f"You were removed from course {course.code!r} while your submission was "
                "being sent; nothing was recorded."
            ) from None
        within_quota(staged.entries)
        now = timezone.now()
        # The cutoff may have passed while the bytes arrived; the dates are read afresh.
        fresh = Assignment.objects.filter(pk=assignment.pk).first()
        if fresh is None:
            raise NotFound(
                f"Assignment {assignment.code!r} was deleted while your submission was being "
                "sent; nothing was recorded."
            )
        deadlines.check_open(assignment=fresh, student=student, at=now)
        last = Submission.objects.filter(assignment=assignment, student=student).aggregate(
            last=Max("timestamp")
        )["last"]
        if last is not None and now <= last:
            now = last + dt.timedelta(microseconds=1)
        submission = _record_submission(
            assignment=assignment, student=student, timestamp=now, staged=staged, actor=student
        )
    return submission


def _record_submission(
    *,
    assignment: Assignment,
    student: AbstractBaseUser,
    timestamp: dt.datetime,
    staged: StagedBundle,
    actor: AbstractBaseUser | None,
    **details: Any,
) -> Submission:
    """Inside the caller's transaction: the submission's bundle, its row and its audit event."""
    bundle = bundles.record_bundle(kind=Bundle.Kind.SUBMISSION, staged=staged)
    submission = Submission.objects.create(
        assignment=assignment, student=student, timestamp=timestamp, bundle=bundle
    )
    record_event(
        action=AuditEvent.Action.SUBMITTED,
        actor=actor,
        assignment=assignment,
        student=student,
        submission=submission,
        files=len(staged.entries),
        late=submission.is_late,
        **details,
    )
    return submission


def _own_submission_bundles(student: AbstractBaseUser, assignment: Assignment) -> list[int]:
    return list(
        Submission.objects.filter(assignment=assignment, student=student).values_list(
            "bundle_id", flat=True
        )
    )


# --- collect ------------------------------------------------------------------------------


@transaction.atomic
def collect_submissions(
    *,
    actor: AbstractBaseUser | None,
    assignment: Assignment,
    latest_only: bool = True,
    student: str | None = None,
) -> list[Submission]:
    """The submissions an instructor or grader collects, recorded for the audit trail."""
    from ..selectors import list_submissions

    _require(actor, assignment.course, Action.COLLECT)
    submissions = list(
        list_submissions(assignment=assignment, latest_only=latest_only, student=student)
    )
    record_event(
        action=AuditEvent.Action.COLLECTED,
        actor=actor,
        assignment=assignment,
        submissions=len(submissions),
        latest_only=latest_only,
    )
    return submissions
