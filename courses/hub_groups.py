"""Course rosters from JupyterHub groups, by nbgrader's multi-course convention:
``nbgrader-<course>`` holds the students, ``formgrade-<course>`` the instructors.

Applied to one user when they sign in (browser or API token) with EXCHANGE_HUB_GROUP_ROSTER
on, and to everyone by ``manage.py sync_hub_groups``. Memberships are added or raised
through ``services.add_member``, never lowered or removed: a role set by hand stays.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser

from . import services
from .models import Course, Membership

Role = Membership.Role
GROUP_ROLES = (("formgrade-", Role.INSTRUCTOR), ("nbgrader-", Role.STUDENT))
RANK = {Role.STUDENT: 0, Role.GRADER: 1, Role.INSTRUCTOR: 2}


def course_role_of_group(group: str) -> tuple[str, str] | None:
    """(course code, role) a group stands for, or None for any other group."""
    for prefix, role in GROUP_ROLES:
        if group.startswith(prefix) and len(group) > len(prefix):
            return group[len(prefix) :], role
    return None


def roles_from_groups(groups: Iterable[str]) -> dict[str, str]:
    """Course code -> role the groups give (instructor wins over student)."""
    roles: dict[str, str] = {}
    for group in groups:
        found = course_role_of_group(group)
        if found is None:
            continue
        code, role = found
        if code not in roles or RANK[role] > RANK[roles[code]]:
            roles[code] = role
    return roles


def apply_roles(
    username: str, wanted: dict[str, str], *, dry_run: bool = False
) -> list[tuple[str, str]]:
    """Give the user the wanted roles in the courses that exist, adding or raising
    memberships only. Returns the (course, role) changes made (or, with ``dry_run``, that
    would be made)."""
    if not wanted:
        return []
    courses = {c.code: c for c in Course.objects.filter(code__in=wanted)}
    current = dict(
        Membership.objects.filter(user__username=username, course__code__in=wanted).values_list(
            "course__code", "role"
        )
    )
    changes = []
    for code, role in sorted(wanted.items()):
        have = current.get(code)
        if code not in courses or (have is not None and RANK[have] >= RANK[role]):
            continue
        changes.append((code, role))
        if not dry_run:
            services.add_member(course=courses[code], username=username, role=role)
    return changes


def apply_hub_groups(user: AbstractBaseUser, groups: Iterable[str]) -> list[tuple[str, str]]:
    """The roles one user's hub groups name, applied."""
    return apply_roles(user.get_username(), roles_from_groups(groups))
