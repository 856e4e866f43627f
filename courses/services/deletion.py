"""Deleting (site admins): courses, assignments, submissions, feedback and users; the
bytes stay in storage until ``gc_blobs`` finds them unreferenced."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..exceptions import NotFound, PermissionDenied
from ..models import Assignment, AuditEvent, Bundle, Course, Feedback, Membership, Submission
from ..permissions import Action
from .audit import record_event
from .guards import _lock_course, _require

logger = logging.getLogger(__name__)


# --- deleting (site admins) and due dates -------------------------------------------------


def _require_site_admin(actor: AbstractBaseUser | None, what: str) -> None:
    """Deletes are for site admins (the admin site) and the operator (``actor=None``)."""
    from ..permissions import is_site_admin

    if actor is not None and not is_site_admin(actor):
        raise PermissionDenied(f"Only site admins may delete {what}.")


def _delete_bundles(bundle_ids: Iterable[int | None]) -> None:
    """Delete bundles whose owner row is gone. Their blobs stay until ``gc_blobs`` finds
    them unreferenced and frees the bytes: storage is never touched here."""
    Bundle.objects.filter(pk__in=[pk for pk in bundle_ids if pk is not None]).delete()


def _actor_name(actor: AbstractBaseUser | None) -> str:
    return actor.get_username() if actor is not None else "system"


@transaction.atomic
def delete_course(*, actor: AbstractBaseUser | None, course: Course) -> None:
    """Delete a course with its memberships, assignments, submissions and feedback.

    Only site admins (or the operator at the command line) may. The audit trail keeps the
    course's events (with its code) and the log records the deletion; the files' bytes stay
    in storage until ``gc_blobs`` removes them.
    """
    _require_site_admin(actor, f"course {course.code!r}")
    # Waits for the uploads and roster changes in flight (they hold the course's lock
    # shared), so the bundles read next are all there are; later ones find the course gone.
    if not _lock_course(course, exclusive=True):
        raise NotFound(f"Course {course.code!r} was already deleted.")
    bundle_ids = [
        *Assignment.objects.filter(course=course).values_list("release_id", flat=True),
        *Submission.objects.filter(assignment__course=course).values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__assignment__course=course).values_list(
            "bundle_id", flat=True
        ),
    ]
    code = course.code
    record_event(
        action=AuditEvent.Action.COURSE_DELETED,
        actor=actor,
        course=course,
        assignments=Assignment.objects.filter(course=course).count(),
        submissions=Submission.objects.filter(assignment__course=course).count(),
    )
    course.delete()
    _delete_bundles(bundle_ids)
    logger.info("course %s deleted by %s", code, _actor_name(actor))


@transaction.atomic
def delete_assignment(*, actor: AbstractBaseUser | None, assignment: Assignment) -> None:
    """Delete an assignment with its release, submissions and feedback (site admins)."""
    _require_site_admin(actor, f"assignment {assignment.code!r}")
    # Wait for the course's uploads in flight and keep new ones out until this commits, so
    # none of them records a row that points at the deleted assignment.
    _lock_course(assignment.course, exclusive=True)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    submissions = Submission.objects.filter(assignment=assignment)
    bundle_ids = [
        assignment.release_id,
        *submissions.values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__assignment=assignment).values_list(
            "bundle_id", flat=True
        ),
    ]
    record_event(
        action=AuditEvent.Action.ASSIGNMENT_DELETED,
        actor=actor,
        assignment=assignment,
        submissions=submissions.count(),
    )
    assignment.delete()
    _delete_bundles(bundle_ids)


@transaction.atomic
def delete_submission(*, actor: AbstractBaseUser | None, submission: Submission) -> None:
    """Delete one submission and its feedback (site admins, and the course's instructors:
    ``nbgrader list --inbound --remove``); the student's others stay."""
    from ..permissions import is_site_admin

    submission = (
        Submission.objects.select_for_update()
        .select_related("assignment__course", "student")
        .get(pk=submission.pk)
    )
    if not is_site_admin(actor):
        _require(actor, submission.assignment.course, Action.REMOVE_SUBMISSIONS)
    bundle_ids = [
        submission.bundle_id,
        *Feedback.objects.filter(submission=submission).values_list("bundle_id", flat=True),
    ]
    record_event(
        action=AuditEvent.Action.SUBMISSION_DELETED,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        timestamp=submission.timestamp.isoformat(),
        files=submission.bundle.file_count,
    )
    submission.delete()
    _delete_bundles(bundle_ids)


@transaction.atomic
def delete_feedback(*, actor: AbstractBaseUser | None, feedback: Feedback) -> None:
    """Withdraw the feedback on one submission (site admins); the submission stays."""
    _require_site_admin(actor, "feedback")
    feedback = (
        Feedback.objects.select_for_update()
        .select_related("submission__assignment__course", "submission__student")
        .get(pk=feedback.pk)
    )
    submission = feedback.submission
    record_event(
        action=AuditEvent.Action.FEEDBACK_DELETED,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        files=feedback.bundle.file_count,
    )
    bundle_id = feedback.bundle_id
    feedback.delete()
    _delete_bundles([bundle_id])


@transaction.atomic
def delete_user(*, actor: AbstractBaseUser | None, user: AbstractBaseUser) -> None:
    """Delete an account with its memberships, submissions and their feedback (site admins)."""
    _require_site_admin(actor, f"user {user.get_username()!r}")
    submissions = Submission.objects.filter(student=user)
    bundle_ids = [
        *submissions.values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__student=user).values_list("bundle_id", flat=True),
    ]
    record_event(
        action=AuditEvent.Action.USER_DELETED,
        actor=actor,
        student=user,
        memberships=Membership.objects.filter(user=user).count(),
        submissions=submissions.count(),
    )
    user.delete()
    _delete_bundles(bundle_ids)
