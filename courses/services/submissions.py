"""Submissions: a student submits, an instructor or grader collects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import FilteredRelation, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from .. import deadlines
from ..archive import ManifestEntry
from ..exceptions import NotFound
from ..limits import (
    audited_upload,
    check_submission_quota,
    check_submission_rate,
)
from ..models import Assignment, AuditEvent, Bundle, Course, Extension, Membership, Submission
from ..permissions import Action
from ..prepared import Prepared
from . import bundles
from .audit import record_event
from .bundles import StagedBundle, Upload
from .guards import _hold_course, _require, _require_course

# ``_record_submission``'s "the caller did not read the extension".
_UNREAD: Any = object()

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
    readable = _READABLE_TO_STUDENT([assignment.release_id], assignment.pk, student.pk)

    def within_quota(entries: list[ManifestEntry]) -> None:
        check_submission_quota(student=student, course=course, entries=entries)

    staged = bundles.stage_bundle(
        upload=upload, readable_shas=readable, check_manifest=within_quota
    )
    with transaction.atomic():
        _hold_course(course)
        # One student's submissions to one course are serialised on their membership row,
        # so concurrent submits get distinct, increasing timestamps. The row also proves
        # the course is still there (it goes with the course).
        if not _lock_membership(student, course):
            _require_course(course)
            raise NotFound(
                f"You were removed from course {course.code!r} while your submission was "
                "being sent; nothing was recorded."
            )
        within_quota(staged.entries)
        now = timezone.now()
        # The cutoff may have passed while the bytes arrived; the dates (the assignment's,
        # the student's extension) and the last timestamp are read afresh, in one query.
        fresh = _fresh_dates(assignment, student)
        if fresh is None:
            raise NotFound(
                f"Assignment {assignment.code!r} was deleted while your submission was being "
                "sent; nothing was recorded."
            )
        deadlines.check_open(assignment=fresh, student=student, at=now, extension=fresh.extension)
        if fresh.last is not None and now <= fresh.last:
            now = fresh.last + dt.timedelta(microseconds=1)
        submission = _record_submission(
            assignment=assignment,
            student=student,
            timestamp=now,
            staged=staged,
            actor=student,
            extended_due_date=fresh.extension.due_date if fresh.extension else None,
        )
    return submission


# What a student may send without bytes: the release's files and their own earlier ones,
# as a subquery of the one read of the stored sizes.
_READABLE_TO_STUDENT = bundles.readable_by(
    lambda assignment_id, student_id: Submission.objects.filter(
        assignment_id=assignment_id, student_id=student_id
    ).values("bundle_id"),
    int,
    int,
)


def _lock_membership(student: AbstractBaseUser, course: Course) -> bool:
    # course_id: a course instance deleted in this process has lost its pk (no row, then).
    return course.pk is not None and bool(_LOCKED_MEMBERSHIP(student.pk, course.pk))


# Only the pk: the row is locked, nothing of it is read. No ordering: the model's would join
# (and lock) the course and user rows, serialising every submit to the course. Compiled
# once (courses/prepared.py), as the dates read below: every submit runs both.
_LOCKED_MEMBERSHIP = Prepared(
    lambda user_id, course_id: Membership.objects.select_for_update()
    .filter(user_id=user_id, course_id=course_id)
    .order_by()
    .values_list("pk", flat=True)[:1],
    int,
    int,
)


def _fresh_dates_query(assignment_id: int, student_id: int) -> QuerySet[Any]:
    return (
        Assignment.objects.filter(pk=assignment_id)
        .annotate(
            own=FilteredRelation("extensions", condition=Q(extensions__student_id=student_id)),
            last=Subquery(
                Submission.objects.filter(assignment=OuterRef("pk"), student_id=student_id)
                .order_by("-timestamp")
                .values("timestamp")[:1]
            ),
        )
        .values_list(
            "due_date", "accept_until", "own__pk", "own__due_date", "own__accept_until", "last"
        )
        # One row by pk: the model's ordering would join the course table for nothing.
        .order_by()[:1]
    )


_FRESH_DATES = Prepared(_fresh_dates_query, int, int)


def _fresh_dates(assignment: Assignment, student: AbstractBaseUser) -> Assignment | None:
    """The assignment's dates read again, with ``extension`` (the student's, or None) and
    ``last`` (the student's latest submission's timestamp, or None): one row, the extension
    joined."""
    row = next(iter(_FRESH_DATES(assignment.pk, student.pk)), None)
    if row is None:
        return None
    due_date, accept_until, extension_pk, extension_due, extension_until, last = row
    fresh = Assignment(
        pk=assignment.pk,
        course=assignment.course,
        code=assignment.code,
        due_date=due_date,
        accept_until=accept_until,
    )
    fresh.last = last
    fresh.extension = (
        Extension(
            pk=extension_pk,
            assignment=fresh,
            student_id=student.pk,
            due_date=extension_due,
            accept_until=extension_until,
        )
        if extension_pk is not None
        else None
    )
    return fresh


def _record_submission(
    *,
    assignment: Assignment,
    student: AbstractBaseUser,
    timestamp: dt.datetime,
    staged: StagedBundle,
    actor: AbstractBaseUser | None,
    extended_due_date: Any = _UNREAD,
    **details: Any,
) -> Submission:
    """Inside the caller's transaction: the submission's bundle, its row and its audit event.

    ``extended_due_date``: the student's extension's due date (None: none), when the caller
    has just read it; the submission's lateness then costs no query."""
    bundle = bundles.record_bundle(kind=Bundle.Kind.SUBMISSION, staged=staged)
    submission = Submission.objects.create(
        assignment=assignment, student=student, timestamp=timestamp, bundle=bundle
    )
    if extended_due_date is not _UNREAD:
        submission.extended_due_date = extended_due_date
    # A new submission has no feedback: the answer's has_feedback needs no query.
    Submission.feedback.related.set_cached_value(submission, None)
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
