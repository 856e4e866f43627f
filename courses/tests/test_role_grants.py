"""Roles granted from outside the roster (hub groups): added or raised, never lowered."""

from __future__ import annotations

from courses.models import Membership
from courses.role_grants import grant_roles


def roster(course) -> dict[str, str]:
    return dict(Membership.objects.filter(course=course).values_list("user__username", "role"))


def test_roles_are_added_or_raised_never_lowered(course, people):
    changes = grant_roles(username="gus", wanted={"phys101": "student"})
    assert changes == [] and roster(course)["gus"] == "grader"
    assert grant_roles(username="sam", wanted={"phys101": "instructor"}) == [
        ("phys101", "instructor")
    ]
    assert roster(course)["sam"] == "instructor"
    wanted = {"phys101": "student", "nosuch": "student"}
    assert grant_roles(username="newbie", wanted=wanted, dry_run=True) == [("phys101", "student")]
    assert "newbie" not in roster(course)
    assert grant_roles(username="newbie", wanted={}) == []
