"""Removing submissions at the end of a term: ``purge`` deletes a course's submissions (and
their feedback), of one assignment or all, optionally only those made before a date.

Rows go in one transaction with one audit event that names the criteria and the counts;
the files' bytes stay in storage until ``gc_blobs`` finds them unreferenced, as for every
other delete (``services.delete_submission`` removes one submission the same way).
Assignments, their releases and the roster stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Sum

from . import services
from .exceptions import NotFound
from .models import Assignment, AuditEvent, Course, Feedback, Submission
from .permissions import Action
from .timestamps import format_timestamp


@dataclass(frozen=True)
class PurgeSummary:
    """What a purge removed (or, in a dry run, would remove)."""

    submissions: int
    feedback: int
    students: int
    assignments: int
    bytes: int
    dry_run: bool


@transaction.atomic
def purge_submissions(
    *,
    actor: AbstractBaseUser | None,
    course: Course,
    assignment_code: str | None = None,
    before: dt.datetime | None = None,
    dry_run: bool = False,
) -> PurgeSummary:
    """Delete the course's submissions (of one assignment, made before a time) and their
    feedback; a dry run only counts them. Audited unless a dry run or nothing matched."""
    services.require_course_role(actor, course, Action.REMOVE_SUBMISSIONS)
    submissions = Submission.objects.filter(assignment__course=course)
    assignment = None
    if assignment_code is not None:
        assignment = Assignment.objects.filter(course=course, code=assignment_code).first()
        if assignment is None:
            raise NotFound(f"There is no assignment {assignment_code!r} in course {course.code!r}.")
        submissions = submissions.filter(assignment=assignment)
    if before is not None:
        submissions = submissions.filter(timestamp__lt=before)
    # Locked first: PostgreSQL allows no FOR UPDATE in the aggregates below.
    ids = list(submissions.select_for_update().values_list("pk", flat=True))
    submissions = Submission.objects.filter(pk__in=ids)
    feedback = Feedback.objects.filter(submission__in=submissions)
    figures = submissions.aggregate(
        n=Count("pk"),
        students=Count("student", distinct=True),
        assignments=Count("assignment", distinct=True),
        bytes=Sum("bundle__total_size"),
    )
    feedback_bytes = feedback.aggregate(bytes=Sum("bundle__total_size"))["bytes"] or 0
    summary = PurgeSummary(
        submissions=figures["n"],
        feedback=feedback.count(),
        students=figures["students"],
        assignments=figures["assignments"],
        bytes=(figures["bytes"] or 0) + feedback_bytes,
        dry_run=dry_run,
    )
    if dry_run or not summary.submissions:
        return summary
    bundle_ids = [
        *submissions.values_list("bundle_id", flat=True),
        *feedback.values_list("bundle_id", flat=True),
    ]
    services.record_event(
        action=AuditEvent.Action.PURGED,
        actor=actor,
        course=course,
        assignment=assignment,
        before=format_timestamp(before),
        submissions=summary.submissions,
        feedback=summary.feedback,
        students=summary.students,
        bytes=summary.bytes,
    )
    submissions.delete()
    services._delete_bundles(bundle_ids)
    return summary
