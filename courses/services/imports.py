"""Importing from another exchange: the importers in ``courses/importers/`` store the bytes
first (``blobstore``), then call these inside the one transaction of a course."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..models import Assignment, AuditEvent, Bundle, Course, Feedback, Membership, Submission
from .audit import record_event
from .bundles import StagedBundle, record_bundle
from .guards import _check_code, _require_course
from .members import add_member, create_course, get_or_create_user
from .submissions import _record_submission

# --- importing from another exchange ------------------------------------------------------
# The importers in ``courses/importers/`` store the bytes first (``blobstore``), then call
# these inside the one transaction of a course. The operator runs them (no actor), and the
# original times are kept: a submission's timestamp is the one the old exchange gave it.


def _same_files(bundle: Bundle | None, staged: StagedBundle) -> bool:
    if bundle is None:
        return False
    have = set(bundle.entries.values_list("path", "blob_id"))
    return have == {(entry.path, entry.sha256) for entry in staged.entries}


@transaction.atomic
def import_release(
    *, course: Course, code: str, staged: StagedBundle, released_at: dt.datetime
) -> tuple[Assignment, str]:
    """Record an imported release; returns the assignment and "added", "replaced" or
    "unchanged" (the same files are already released)."""
    _check_code(code, "Assignment id")
    _require_course(course)
    assignment, _ = Assignment.objects.select_for_update().get_or_create(course=course, code=code)
    if _same_files(assignment.release, staged):
        return assignment, "unchanged"
    old_release = assignment.release
    assignment.release = record_bundle(kind=Bundle.Kind.RELEASE, staged=staged)
    assignment.released_by = None
    assignment.released_at = released_at
    assignment.save()
    if old_release is not None:
        old_release.delete()
    record_event(
        action=AuditEvent.Action.RELEASED,
        actor=None,
        assignment=assignment,
        files=len(staged.entries),
        replaced=old_release is not None,
        imported=True,
    )
    return assignment, "replaced" if old_release is not None else "added"


@transaction.atomic
def import_submission(
    *,
    course: Course,
    assignment_code: str,
    student: AbstractBaseUser,
    timestamp: dt.datetime,
    staged: StagedBundle,
) -> tuple[Submission, bool]:
    """Record an imported submission with its original timestamp; returns it and whether it
    is new (a submission of this student at this timestamp is kept as it is). The
    assignment is created unreleased if the old exchange no longer released it."""
    _check_code(assignment_code, "Assignment id")
    _require_course(course)
    assignment, _ = Assignment.objects.get_or_create(course=course, code=assignment_code)
    existing = Submission.objects.filter(
        assignment=assignment, student=student, timestamp=timestamp
    ).first()
    if existing is not None:
        return existing, False
    submission = _record_submission(
        assignment=assignment,
        student=student,
        timestamp=timestamp,
        staged=staged,
        actor=None,
        imported=True,
    )
    return submission, True


@transaction.atomic
def import_feedback(
    *, submission: Submission, staged: StagedBundle, released_at: dt.datetime
) -> tuple[Feedback, str]:
    """Record imported feedback for one submission; "added", "replaced" or "unchanged"."""
    _require_course(submission.assignment.course)
    old = Feedback.objects.filter(submission=submission).select_related("bundle").first()
    if old is not None and _same_files(old.bundle, staged):
        return old, "unchanged"
    bundle = record_bundle(kind=Bundle.Kind.FEEDBACK, staged=staged)
    if old is None:
        feedback = Feedback.objects.create(
            submission=submission, bundle=bundle, released_by=None, released_at=released_at
        )
    else:
        old_bundle = old.bundle
        old.bundle = bundle
        old.released_by = None
        old.released_at = released_at
        old.save()
        old_bundle.delete()
        feedback = old
    record_event(
        action=AuditEvent.Action.FEEDBACK_RELEASED,
        actor=None,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        files=len(staged.entries),
        imported=True,
    )
    return feedback, "added" if old is None else "replaced"


@transaction.atomic
def import_member(
    *,
    course: Course,
    username: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> bool:
    """Add an imported member, named as the old exchange named them in this course, unless
    they already belong to the course (whose role and names are then kept: an import never
    demotes an instructor to student); returns whether one was added."""
    names = {"first_name": first_name, "last_name": last_name, "email": email}
    user = get_or_create_user(username, **names)
    if Membership.objects.filter(user=user, course=course).exists():
        return False
    add_member(course=course, username=username, role=role, **names)
    return True


def import_course_record(*, code: str, title: str = "") -> tuple[Course, bool]:
    """The imported course, created if new; returns it and whether it was created."""
    course = Course.objects.filter(code=code).first()
    if course is not None:
        return course, False
    return create_course(code=code, title=title), True
