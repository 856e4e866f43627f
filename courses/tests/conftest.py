"""Personas for the domain tests: a course with an instructor, a grader, two students and
an outsider, and helpers that build uploads the way the plugin does."""

from __future__ import annotations

import pytest

from courses import services
from courses.models import Membership
from courses.testing import make_upload

Role = Membership.Role


@pytest.fixture
def course(db):
    return services.create_course(code="phys101", title="Physics")


@pytest.fixture
def people(course, django_user_model):
    users = {}
    for name, role in [
        ("ines", Role.INSTRUCTOR),
        ("gus", Role.GRADER),
        ("sam", Role.STUDENT),
        ("tia", Role.STUDENT),
    ]:
        users[name] = services.add_member(course=course, username=name, role=role).user
    users["olga"] = django_user_model.objects.create(username="olga")
    return users


@pytest.fixture
def released(course, people):
    files = {"ps1.ipynb": b'{"cells": []}', "data/big.csv": b"x,y\n" * 1000}
    return services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload(files)
    )


__all__ = ["make_upload"]
