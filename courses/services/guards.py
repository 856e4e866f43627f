"""What every operation checks first: the caller's role in the course, that the course
still exists (and stays while the transaction runs), and that a code is valid."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection

from ..exceptions import BadRequest, NotFound
from ..models import Course, Membership, code_validator
from ..permissions import Action, require, role_in

Role = Membership.Role


def _require(actor: AbstractBaseUser | None, course: Course, action: Action) -> str | None:
    """The actor's role, checked; ``actor=None`` is the operator at the command line."""
    if actor is None:
        return Role.INSTRUCTOR
    role = role_in(actor, course)
    if role is None:
        raise NotFound(f"There is no course {course.code!r} that you are a member of.")
    require(role, action, course)
    return role


def require_course_role(
    actor: AbstractBaseUser | None, course: Course, action: Action
) -> str | None:
    """The role check of every operation, for service modules outside this file."""
    return _require(actor, course, action)


# First key of the two-number PostgreSQL advisory locks that guard a course (the second is
# its id); two-number keys never collide with gc's one-number key.
COURSE_LOCK_SPACE = 7307


def _lock_course(course: Course, *, exclusive: bool = False) -> bool:
    """Inside a transaction: keep the course from being deleted until the transaction ends;
    False if it was deleted meanwhile. ``exclusive`` (``delete_course``) waits for every
    write in flight in the course and keeps new ones out.

    PostgreSQL: a transaction-scoped advisory lock per course, shared by writers (row locks
    on the course row would queue writers behind each other's foreign-key checks). SQLite
    runs write transactions one at a time.
    """
    _hold_course(course, exclusive=exclusive)
    return Course.objects.filter(pk=course.pk).exists()


def _hold_course(course: Course, *, exclusive: bool = False) -> None:
    """``_lock_course`` without the existence check, for a caller that next reads (and
    locks) a row of the course that cannot outlive it: finding that row proves the course
    is there, and the lock keeps it; when the row is missing, ``_require_course`` tells the
    two cases apart."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [COURSE_LOCK_SPACE, course.pk])


def _require_course(course: Course) -> None:
    """``_lock_course`` for an upload or roster change: NotFound once the course is gone."""
    if not _lock_course(course):
        raise NotFound(f"Course {course.code!r} was deleted while your request was being handled.")


def _check_code(value: str, what: str) -> str:
    try:
        code_validator(value)
    except ValidationError as exc:
        raise BadRequest(
            f"{what} {value!r} is not valid: use only letters, digits, '_', '-' and '.'."
        ) from exc
    if value in {".", ".."} or len(value) > 100:
        raise BadRequest(f"{what} {value!r} is not valid.")
    return value
