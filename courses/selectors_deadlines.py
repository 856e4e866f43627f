"""Reads for the pages that manage an assignment's deadlines and release: typed rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .models import Assignment, Course, Extension, Membership


@dataclass(frozen=True)
class ExtensionRow:
    """One student's extension on one assignment (a date left empty: the assignment's)."""

    username: str
    full_name: str
    due_date: dt.datetime | None
    accept_until: dt.datetime | None
    granted_by: str
    granted_at: dt.datetime


@dataclass(frozen=True)
class StudentChoice:
    username: str
    full_name: str


def extension_rows(assignment: Assignment) -> list[ExtensionRow]:
    """The assignment's extensions, by user name, with the course's name for each student."""
    names = {m.user_id: m.full_name for m in Membership.objects.filter(course=assignment.course)}
    extensions = (
        Extension.objects.filter(assignment=assignment)
        .select_related("student", "granted_by")
        .order_by("student__username")
    )
    return [
        ExtensionRow(
            username=e.student.get_username(),
            full_name=names.get(e.student_id, "") or e.student.get_full_name(),
            due_date=e.due_date,
            accept_until=e.accept_until,
            granted_by=e.granted_by.get_username() if e.granted_by else "",
            granted_at=e.granted_at,
        )
        for e in extensions
    ]


def student_choices(course: Course) -> list[StudentChoice]:
    """The course's students, by user name: whom an extension can be granted to."""
    memberships = (
        Membership.objects.filter(course=course, role=Membership.Role.STUDENT)
        .select_related("user")
        .order_by("user__username")
    )
    return [
        StudentChoice(username=m.user.get_username(), full_name=m.full_name) for m in memberships
    ]


def assignment_named(course: Course, code: str) -> Assignment | None:
    """The course's assignment with that code, if there is one."""
    return Assignment.objects.filter(course=course, code=code).first()
