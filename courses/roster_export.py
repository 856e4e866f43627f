"""Roster export: a course's members as nbgrader's student CSV or Canvas's CSV, in a form
``courses.roster.import_roster`` reads back unchanged; every cell formula-safe."""

from __future__ import annotations

import io

from .csvsafe import write_rows
from .exceptions import BadRequest
from .models import Course, Membership
from .roster import (
    CANVAS_COLUMNS,
    FORMATS,
    NBGRADER,
    NBGRADER_COLUMNS,
    RosterRow,
    canvas_login_column,
)

Role = Membership.Role


def roster_rows(*, course: Course, role: str | None = None) -> list[RosterRow]:
    """A course's members (of one role, or all), by user name."""
    memberships = Membership.objects.filter(course=course).select_related("user")
    if role is not None:
        memberships = memberships.filter(role=role)
    return [
        RosterRow(
            username=m.user.get_username(),
            first_name=m.first_name,
            last_name=m.last_name,
            email=m.email,
            lms_user_id=m.lms_user_id,
        )
        for m in memberships.order_by("user__username")
    ]


def export_roster(
    *, course: Course, role: str | None = Role.STUDENT, format: str = NBGRADER
) -> str:
    """The roster as CSV text, in a format ``import_roster`` reads back."""
    if format not in FORMATS:
        raise BadRequest(f"Roster format {format!r} is not one of {', '.join(FORMATS)}.")
    if role is not None and role not in Role.values:
        raise BadRequest(f"Role {role!r} is not one of {', '.join(Role.values)}.")
    out = io.StringIO()
    rows = roster_rows(course=course, role=role)
    if format == NBGRADER:
        lines: list[list[str]] = [NBGRADER_COLUMNS]
        lines += [
            [row.username, row.first_name, row.last_name, row.email, row.lms_user_id]
            for row in rows
        ]
    else:
        login = canvas_login_column()
        columns = [*CANVAS_COLUMNS, "email"]
        if login not in columns:
            columns.append(login)
        lines = [columns]
        for row in rows:
            name = f"{row.last_name}, {row.first_name}" if row.last_name else row.first_name
            values = {
                "Student": name,
                "ID": row.lms_user_id,
                "email": row.email,
                login: row.username,
            }
            lines.append([values.get(column, "") for column in columns])
    # Names come from rosters anyone could have written: never let them be formulas.
    write_rows(out, lines)
    return out.getvalue()
