"""Roles granted from outside the course's own roster (JupyterHub groups): added or raised,
never lowered or removed, so a role an instructor set by hand stays."""

from __future__ import annotations

from collections.abc import Mapping

from . import services
from .models import Course, Membership

Role = Membership.Role
RANK = {Role.STUDENT: 0, Role.GRADER: 1, Role.INSTRUCTOR: 2}


def grant_roles(
    *, username: str, wanted: Mapping[str, str], dry_run: bool = False
) -> list[tuple[str, str]]:
    """Give the user the wanted roles (course code -> role) in the courses that exist,
    adding or raising memberships only, each through ``services.add_member`` (audited).
    Returns the (course, role) changes made (or, with ``dry_run``, that would be made)."""
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
