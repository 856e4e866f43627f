"""The audit trail every operation writes: one ``AuditEvent`` per change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from ..models import Assignment, AuditEvent, Course, Submission
from ..prepared import PreparedInsert

# --- audit --------------------------------------------------------------------------------

# Every fetch writes one: compiled once per thread.
_insert_event = PreparedInsert(AuditEvent)


def record_event(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    course: Course | None = None,
    assignment: Assignment | None = None,
    student: AbstractBaseUser | None = None,
    submission: Submission | None = None,
    **detail: Any,
) -> AuditEvent:
    """Record one event."""
    event = audit_event(
        action=action,
        actor=actor,
        course=course,
        assignment=assignment,
        student=student,
        submission=submission,
        **detail,
    )
    _insert_event(event)
    return event


def record_events(events: Sequence[AuditEvent]) -> None:
    """Record events made by ``audit_event``, in one insert."""
    AuditEvent.objects.bulk_create(events)


def audit_event(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    course: Course | None = None,
    assignment: Assignment | None = None,
    student: AbstractBaseUser | None = None,
    submission: Submission | None = None,
    **detail: Any,
) -> AuditEvent:
    """An event, not saved yet."""
    if assignment is not None and course is None:
        course = assignment.course
    return AuditEvent(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "system",
        course=course,
        course_code=course.code if course else "",
        assignment=assignment,
        assignment_code=assignment.code if assignment else "",
        student_name=student.get_username() if student is not None else "",
        submission=submission,
        detail=detail,
    )
