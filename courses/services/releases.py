"""Releasing assignments: release, unrelease, fetch, the due date."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .. import deadlines, selectors
from ..exceptions import Conflict, NotFound
from ..limits import audited_upload
from ..models import Assignment, AuditEvent, Bundle, Course
from ..permissions import Action
from . import bundles
from .audit import record_event
from .bundles import Upload
from .guards import _check_code, _require, _require_course

# --- release ------------------------------------------------------------------------------


# What an instructor may send without bytes: the files of the course's releases, as a
# subquery of the one read of the stored sizes.
_READABLE_TO_INSTRUCTOR = bundles.readable_by(
    lambda course_id: Assignment.objects.filter(course_id=course_id).values("release_id"), int
)


@audited_upload("release")
def release_assignment(
    *,
    actor: AbstractBaseUser | None,
    course: Course,
    code: str,
    upload: Upload,
    due_date: dt.datetime | None = None,
    force: bool = False,
) -> Assignment:
    """Release (or re-release) an assignment's files to the course's students.

    A re-release over an assignment that students already fetched or submitted is refused
    unless ``force``, and the refusal says how many fetched and submitted.
    """
    _require(actor, course, Action.RELEASE)
    _check_code(code, "Assignment id")
    existing = Assignment.objects.filter(course=course, code=code).first()
    if existing is not None and existing.is_released and not force:
        _refuse_if_in_use(existing, "release it again")
    readable = _READABLE_TO_INSTRUCTOR([], course.pk)
    # Students fetch a release's small files inline (``?inline=true``): with S3 they are
    # read back through the service, from its copies.
    staged = bundles.stage_bundle(upload=upload, readable_shas=readable, keep_copies=True)
    with transaction.atomic():
        _require_course(course)
        assignment, _ = Assignment.objects.select_for_update().get_or_create(
            course=course, code=code
        )
        if assignment.is_released and not force:
            _refuse_if_in_use(assignment, "release it again")
        replaced = assignment.release_id is not None
        assignment.release = bundles.record_bundle(kind=Bundle.Kind.RELEASE, staged=staged)
        assignment.released_by = actor
        assignment.released_at = timezone.now()
        if due_date is not None:
            assignment.due_date = due_date
        # The replaced bundle stays (ownerless) until gc_blobs: a read that saw the old
        # release an instant ago still lists its files instead of failing.
        assignment.save()
        record_event(
            action=AuditEvent.Action.RELEASED,
            actor=actor,
            assignment=assignment,
            files=len(staged.entries),
            replaced=replaced,
        )
    return assignment


def _refuse_if_in_use(assignment: Assignment, what: str) -> None:
    figures = selectors.figures_of(assignment)
    if figures.fetched or figures.submitted:
        raise Conflict(
            f"Assignment {assignment.code!r} in {assignment.course.code!r} has been fetched by "
            f"{figures.fetched} and submitted by {figures.submitted} students; use force to "
            f"{what} anyway.",
            code="in_use",
        )


@transaction.atomic
def unrelease_assignment(
    *, actor: AbstractBaseUser | None, assignment: Assignment, force: bool = False
) -> Assignment:
    """Withdraw an assignment's release; submissions and feedback stay."""
    _require(actor, assignment.course, Action.RELEASE)
    _require_course(assignment.course)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if not assignment.is_released:
        raise Conflict(f"Assignment {assignment.code!r} is not released.", code="not_released")
    if not force:
        _refuse_if_in_use(assignment, "unrelease it")
    # The withdrawn bundle stays (ownerless) until gc_blobs, as after a re-release.
    assignment.release = None
    assignment.save(update_fields=["release"])
    record_event(action=AuditEvent.Action.UNRELEASED, actor=actor, assignment=assignment)
    return assignment


@transaction.atomic
def fetch_assignment(*, user: AbstractBaseUser, assignment: Assignment) -> Bundle:
    """The release a user fetches, recorded for the audit trail and the re-release check."""
    _require(user, assignment.course, Action.FETCH)
    if not assignment.is_released:
        raise NotFound(
            f"Assignment {assignment.code!r} in course {assignment.course.code!r} is not released."
        )
    record_event(action=AuditEvent.Action.FETCHED, actor=user, assignment=assignment)
    assert assignment.release is not None
    return assignment.release


def set_due_date(
    *, actor: AbstractBaseUser | None, assignment: Assignment, due_date: dt.datetime | None
) -> Assignment:
    """Change (or, with None, clear) an assignment's due date; late flags follow it."""
    return deadlines.set_deadlines(actor=actor, assignment=assignment, due_date=due_date)
