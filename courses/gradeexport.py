"""Grade export: a course's scores as a file for an LMS or a spreadsheet.

Formats:

- canvas: what Canvas's gradebook import reads: ``Student, ID, SIS User ID, SIS Login ID,
  Section``, then one column per assignment (named by its assignment id, so Canvas creates
  it on first import), and a ``Points Possible`` row under the header. Students are matched
  by the roster's login column as ``courses.roster`` reads it
  (``EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN``, default ``SIS Login ID``): the exchange's user name
  goes there, so a roster imported from Canvas exports back onto the same people.
- csv: one row per student and assignment: ``student, first_name, last_name, email,
  assignment, score, max_score``.

Every student of the course is listed (and anyone no longer on the roster who has a score);
a missing score is a blank cell. Cells go through ``courses.csvsafe``: a name cannot become
a spreadsheet formula.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from . import grades, services
from .csvsafe import write_rows
from .exceptions import BadRequest, NotFound
from .models import Assignment, Course, Membership
from .permissions import Action
from .roster import CANVAS_COLUMNS, canvas_login_column

CANVAS = "canvas"
CSV = "csv"
FORMATS = (CANVAS, CSV)
CSV_COLUMNS = ["student", "first_name", "last_name", "email", "assignment", "score", "max_score"]
POINTS_POSSIBLE = "Points Possible"


@dataclass(frozen=True)
class _Student:
    pk: int
    username: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str = ""


def _points(value: float | None) -> str:
    """A number as a gradebook cell: no exponent, no trailing zeros, blank when missing."""
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _assignments(course: Course, codes: Sequence[str]) -> list[Assignment]:
    found = {a.code: a for a in Assignment.objects.filter(course=course).order_by("code")}
    if not codes:
        return list(found.values())
    missing = [code for code in codes if code not in found]
    if missing:
        raise NotFound(f"Course {course.code!r} has no assignment {', '.join(map(repr, missing))}.")
    return [found[code] for code in dict.fromkeys(codes)]


def _students(course: Course, scored: set[int]) -> list[_Student]:
    students = {
        m.user_id: _Student(
            m.user_id, m.user.get_username(), m.first_name, m.last_name, m.email, m.lms_user_id
        )
        for m in Membership.objects.filter(
            course=course, role=Membership.Role.STUDENT
        ).select_related("user")
    }
    # Former students keep their scores in the export, named as their account is.
    for user in get_user_model().objects.filter(pk__in=scored - set(students)):
        students[user.pk] = _Student(
            user.pk, user.get_username(), user.first_name, user.last_name, user.email
        )
    return sorted(students.values(), key=lambda s: s.username)


def export_grades(
    *,
    course: Course,
    assignments: Sequence[str] = (),
    format: str = CANVAS,
    actor: AbstractBaseUser | None = None,
) -> str:
    """The course's scores on the assignments (all of them when none are named) as CSV text.

    ``actor=None`` is the operator at the command line; otherwise instructors only.
    """
    services.require_course_role(actor, course, Action.EXPORT_GRADES)
    if format not in FORMATS:
        raise BadRequest(f"Grade format {format!r} is not one of {', '.join(FORMATS)}.")
    chosen = _assignments(course, assignments)
    totals = grades.scores_of(chosen)
    students = _students(course, {student for _, student in totals})
    out = io.StringIO()
    if format == CSV:
        lines: list[list[str]] = [CSV_COLUMNS]
        for s in students:
            for a in chosen:
                total = totals.get((a.pk, s.pk))
                lines.append(
                    [
                        s.username,
                        s.first_name,
                        s.last_name,
                        s.email,
                        a.code,
                        _points(total.score if total else None),
                        _points(total.max_score if total else None),
                    ]
                )
        write_rows(out, lines)
        return out.getvalue()
    login = canvas_login_column()
    columns = list(CANVAS_COLUMNS)
    if login not in columns:
        columns.append(login)
    possible = {
        a.pk: max((t.max_score for (ap, _), t in totals.items() if ap == a.pk), default=None)
        for a in chosen
    }
    lines = [
        [*columns, *(a.code for a in chosen)],
        [POINTS_POSSIBLE, *([""] * (len(columns) - 1)), *(_points(possible[a.pk]) for a in chosen)],
    ]
    for s in students:
        name = f"{s.last_name}, {s.first_name}" if s.last_name else s.first_name or s.username
        values = {"Student": name, "ID": s.lms_user_id, login: s.username}
        scores = [totals.get((a.pk, s.pk)) for a in chosen]
        lines.append(
            [
                *(values.get(column, "") for column in columns),
                *(_points(t.score if t else None) for t in scores),
            ]
        )
    write_rows(out, lines)
    return out.getvalue()
