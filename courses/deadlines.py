"""The deadline policy: an assignment's due date and hard cutoff ("accept until"), and
per-student extensions of either.

What is enforced where:

- the due date only marks submissions late (``Submission.is_late``), with the student's own
  due date when they have an extension;
- the cutoff refuses a submission (``403 past_cutoff``, nothing recorded) once it has passed,
  again with the student's own cutoff; an extension's due date after the cutoff moves the
  cutoff with it, so nobody is refused before their own due date;
- only instructors change any of it (``Action.MANAGE_DEADLINES``), and every change is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import services
from .exceptions import BadRequest, NotFound, PermissionDenied
from .models import Assignment, AuditEvent, Extension, Membership
from .permissions import Action
from .prepared import Prepared
from .timestamps import format_timestamp

# A keyword left as UNCHANGED keeps the current value (None clears it).
UNCHANGED: Any = object()


class PastCutoff(PermissionDenied):
    """A submission after the student's cutoff."""

    code = "past_cutoff"


@dataclass(frozen=True)
class Dates:
    """One student's effective dates for one assignment."""

    due_date: dt.datetime | None
    accept_until: dt.datetime | None
    extended: bool


def _effective(assignment: Assignment, extension: Extension | None) -> Dates:
    if extension is None:
        return Dates(assignment.due_date, assignment.accept_until, extended=False)
    due = extension.due_date or assignment.due_date
    cutoff = extension.accept_until or assignment.accept_until
    if cutoff is not None and due is not None and due > cutoff:
        cutoff = due
    return Dates(due, cutoff, extended=True)


def dates_for(*, assignment: Assignment, student: AbstractBaseUser) -> Dates:
    """The student's own due date and cutoff."""
    found = _EXTENSION(assignment.pk, student.pk) if assignment.pk and student.pk else []
    return _effective(assignment, found[0] if found else None)


# At most one row (unique together); order_by(): the model's ordering would join the
# assignment, course and user tables to sort it. Compiled once (courses/prepared.py): every
# submit and every read of an assignment by a student runs it.
_EXTENSION = Prepared(
    lambda assignment_id, student_id: Extension.objects.filter(
        assignment_id=assignment_id, student_id=student_id
    ).order_by()[:1],
    int,
    int,
)


def dates_for_many(
    *, assignments: Iterable[Assignment], student: AbstractBaseUser
) -> dict[int, Dates]:
    """``dates_for`` over many assignments, in one query."""
    assignments = list(assignments)
    extensions = {
        e.assignment_id: e
        for e in Extension.objects.filter(assignment__in=assignments, student=student).order_by()
    }
    return {a.pk: _effective(a, extensions.get(a.pk)) for a in assignments}


def check_open(
    *,
    assignment: Assignment,
    student: AbstractBaseUser,
    at: dt.datetime,
    extension: Extension | None = UNCHANGED,
) -> None:
    """Raise PastCutoff if the student's cutoff for the assignment is before ``at``.

    ``extension``: the student's extension (None: none) when the caller has just read it;
    otherwise it is read here."""
    if extension is UNCHANGED:
        cutoff = dates_for(assignment=assignment, student=student).accept_until
    else:
        cutoff = _effective(assignment, extension).accept_until
    if cutoff is not None and at > cutoff:
        raise PastCutoff(
            f"Assignment {assignment.code!r} of course {assignment.course.code!r} stopped "
            f"accepting submissions at {format_timestamp(cutoff)}; only an instructor of the "
            "course can extend the cutoff for you."
        )


def _check_order(due_date: dt.datetime | None, accept_until: dt.datetime | None) -> None:
    if due_date is not None and accept_until is not None and accept_until < due_date:
        raise BadRequest(
            f"The cutoff ({format_timestamp(accept_until)}) cannot be before the due date "
            f"({format_timestamp(due_date)})."
        )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@transaction.atomic
def set_deadlines(
    *,
    actor: AbstractBaseUser | None,
    assignment: Assignment,
    due_date: dt.datetime | None = UNCHANGED,
    accept_until: dt.datetime | None = UNCHANGED,
) -> Assignment:
    """Change an assignment's due date and/or cutoff (``None`` clears one) without a
    re-release; late flags and refusals follow at once."""
    services.require_course_role(actor, assignment.course, Action.MANAGE_DEADLINES)
    try:
        assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    except Assignment.DoesNotExist:
        # Deleted (with its course) between the caller's lookup and this lock.
        raise NotFound(
            f"Assignment {assignment.code!r} was deleted while your change was being made."
        ) from None
    new_due = assignment.due_date if due_date is UNCHANGED else due_date
    new_cutoff = assignment.accept_until if accept_until is UNCHANGED else accept_until
    _check_order(new_due, new_cutoff)
    changes = [
        (AuditEvent.Action.DUE_DATE_CHANGED, "due_date", new_due),
        (AuditEvent.Action.CUTOFF_CHANGED, "accept_until", new_cutoff),
    ]
    for action, field, new in changes:
        old = getattr(assignment, field)
        if old == new:
            continue
        setattr(assignment, field, new)
        assignment.save(update_fields=[field])
        services.record_event(
            action=action,
            actor=actor,
            assignment=assignment,
            **{f"old_{field}": _iso(old), field: _iso(new)},
        )
    return assignment


def _student_of(assignment: Assignment, username: str) -> AbstractBaseUser:
    membership = (
        Membership.objects.select_related("user")
        .filter(course=assignment.course, user__username=username, role=Membership.Role.STUDENT)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username!r} is not a student of course {assignment.course.code!r}.")
    return membership.user


@transaction.atomic
def grant_extension(
    *,
    actor: AbstractBaseUser | None,
    assignment: Assignment,
    username: str,
    due_date: dt.datetime | None = None,
    accept_until: dt.datetime | None = None,
) -> tuple[Extension, bool]:
    """Give one student their own due date and/or cutoff (replacing an earlier extension).

    Returns the extension and whether it is new.
    """
    services.require_course_role(actor, assignment.course, Action.MANAGE_DEADLINES)
    if due_date is None and accept_until is None:
        raise BadRequest(
            "An extension needs a due date, a cutoff or both; to withdraw one, revoke it."
        )
    _check_order(due_date, accept_until)
    student = _student_of(assignment, username)
    extension = (
        Extension.objects.select_for_update().filter(assignment=assignment, student=student).first()
    )
    created = extension is None
    old = (None, None) if extension is None else (extension.due_date, extension.accept_until)
    if extension is None:
        extension = Extension(assignment=assignment, student=student)
    elif old == (due_date, accept_until):
        return extension, False
    extension.due_date = due_date
    extension.accept_until = accept_until
    extension.granted_by = actor if actor is not None and actor.pk else None
    extension.granted_at = timezone.now()
    extension.save()
    services.record_event(
        action=AuditEvent.Action.EXTENSION_GRANTED,
        actor=actor,
        assignment=assignment,
        student=student,
        old_due_date=_iso(old[0]),
        old_accept_until=_iso(old[1]),
        due_date=_iso(due_date),
        accept_until=_iso(accept_until),
    )
    return extension, created


@transaction.atomic
def revoke_extension(
    *, actor: AbstractBaseUser | None, assignment: Assignment, username: str
) -> None:
    """Withdraw a student's extension: the assignment's dates apply to them again."""
    services.require_course_role(actor, assignment.course, Action.MANAGE_DEADLINES)
    extension = (
        Extension.objects.select_for_update()
        .select_related("student")
        .filter(assignment=assignment, student__username=username)
        .first()
    )
    if extension is None:
        raise NotFound(f"{username!r} has no extension on assignment {assignment.code!r}.")
    services.record_event(
        action=AuditEvent.Action.EXTENSION_REVOKED,
        actor=actor,
        assignment=assignment,
        student=extension.student,
        due_date=_iso(extension.due_date),
        accept_until=_iso(extension.accept_until),
    )
    extension.delete()


def extensions_of(assignment: Assignment) -> list[Extension]:
    """The assignment's extensions, by student name."""
    return list(
        Extension.objects.filter(assignment=assignment)
        .select_related("student", "granted_by")
        .order_by("student__username")
    )
