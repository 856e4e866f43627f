"""Courses and their rosters: create a course, create users, add and remove members."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..exceptions import BadRequest, Conflict, NotFound
from ..models import AuditEvent, Course, Membership
from ..permissions import Action
from .audit import record_event
from .guards import _check_code, _require, _require_course

User = get_user_model()
Role = Membership.Role
USERNAME_MAX = 150


# --- courses and rosters ------------------------------------------------------------------


@transaction.atomic
def create_course(
    *,
    code: str,
    title: str = "",
    actor: AbstractBaseUser | None = None,
    instructors: Iterable[str] = (),
) -> Course:
    _check_code(code, "Course id")
    if Course.objects.filter(code=code).exists():
        raise Conflict(f"Course {code!r} already exists.")
    course = Course.objects.create(code=code, title=title)
    record_event(action=AuditEvent.Action.COURSE_CREATED, actor=actor, course=course)
    for username in instructors:
        add_member(course=course, username=username, role=Role.INSTRUCTOR, actor=actor)
    return course


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot name a new user, or None.

    A user name becomes a folder on the graders' machines (nbgrader collects into
    ``submitted/<name>/``), so it must be one folder name there: not ``.`` or ``..``, no
    slash or backslash, no control character, nothing Windows reads as a drive (``C:``).
    """
    if not username:
        return "the user name is empty"
    if len(username) > USERNAME_MAX:
        return f"the user name is longer than {USERNAME_MAX} characters"
    if (
        username in (".", "..")
        or any(ch in username for ch in "/\\")
        or username[1:2] == ":"
        or any(unicodedata.category(ch) == "Cc" for ch in username)
    ):
        return (
            f"the user name {username!r} cannot be a folder name: no '.' or '..', no '/' or "
            "'\\', no control characters, no drive such as 'C:'"
        )
    return None


def get_or_create_user(username: str, **fields: str) -> AbstractBaseUser:
    """The user with this name, created (with ``fields``) if new.

    An existing user is returned unchanged: the site-wide account belongs to its owner and
    to the site admins (the admin's user pages), never to a course. What a course calls a
    person lives on the membership (see ``add_member``). A new user's name must pass
    ``username_problem``; one made before that rule keeps working.
    """
    username = username.strip()
    problem = username_problem(username)
    if problem is not None:
        existing = User.objects.filter(username=username).first() if username else None
        if existing is None:
            raise BadRequest(f"{problem[:1].upper()}{problem[1:]}.")
        return existing
    user, _ = User.objects.get_or_create(
        username=username, defaults={key: value for key, value in fields.items() if value}
    )
    return user


PROFILE_FIELDS = ("first_name", "last_name", "email", "lms_user_id")


@transaction.atomic
def add_member(
    *,
    course: Course,
    username: str,
    role: str,
    actor: AbstractBaseUser | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    lms_user_id: str = "",
) -> Membership:
    """Add a user to the course, or change their role or how the course names them.

    Names and email are the course's own (kept on the membership; an empty value leaves the
    current one): they never change the site-wide user, which another course and the admin
    site show. A user created here starts with them.
    """
    _require(actor, course, Action.MANAGE_ROSTER)
    _require_course(course)
    if role not in Role.values:
        raise BadRequest(f"Role {role!r} is not one of {', '.join(Role.values)}.")
    names = {"first_name": first_name, "last_name": last_name, "email": email}
    user = get_or_create_user(username, **names)
    given = {**names, "lms_user_id": lms_user_id}
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, course=course, defaults={"role": role, **given}
    )
    if created:
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="added",
            role=role,
        )
        return membership
    if membership.role != role:
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="role",
            old_role=old,
            role=role,
        )
    changed = [
        key for key in PROFILE_FIELDS if given[key] and getattr(membership, key) != given[key]
    ]
    if changed:
        for key in changed:
            setattr(membership, key, given[key])
        membership.save(update_fields=[*changed, "updated_at"])
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="details",
            fields=changed,
        )
    return membership


@transaction.atomic
def remove_member(*, course: Course, username: str, actor: AbstractBaseUser | None = None) -> None:
    """Remove a user's membership; their submissions stay."""
    _require(actor, course, Action.MANAGE_ROSTER)
    _require_course(course)
    membership = (
        Membership.objects.select_related("user")
        .filter(course=course, user__username=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username!r} is not a member of course {course.code!r}.")
    if actor is not None and membership.user_id == actor.pk and membership.role == Role.INSTRUCTOR:
        others = Membership.objects.filter(course=course, role=Role.INSTRUCTOR).exclude(
            pk=membership.pk
        )
        if not others.exists():
            raise Conflict(
                f"You are the last instructor of {course.code!r}; add another one first."
            )
    membership.delete()
    record_event(
        action=AuditEvent.Action.ROSTER_CHANGED,
        actor=actor,
        course=course,
        student=membership.user,
        change="removed",
        role=membership.role,
    )
