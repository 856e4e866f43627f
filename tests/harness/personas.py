"""The course's people, as a pytest plugin (registered once, in the root ``conftest.py``).

phys101 with an instructor (ines), a grader (gus), two students (sam, tia), an outsider
(olga) and a site admin (ada); the released assignment ps1, sam's submission and feedback on
it, the unreleased ps2; a DRF client and a browser client signed in as any of them.

Django is imported inside the fixtures: the plugin loads before Django is set up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .uploads import make_upload

RELEASED = {"ps1.ipynb": b'{"cells": []}', "data/big.csv": b"x,y\n" * 1000}
SUBMITTED = {"ps1.ipynb": b'{"cells": ["sam"]}', "data/big.csv": b"x,y\n" * 1000}
FEEDBACK = {"feedback/ps1.html": b"<p>good work, sam</p>"}


@pytest.fixture
def course(db: None) -> Any:
    from courses import services

    return services.create_course(code="phys101", title="Physics")


@pytest.fixture
def people(course: Any, django_user_model: Any) -> dict[str, Any]:
    from courses import services
    from courses.models import Membership

    role = Membership.Role
    users = {}
    for name, member_role in [
        ("ines", role.INSTRUCTOR),
        ("gus", role.GRADER),
        ("sam", role.STUDENT),
        ("tia", role.STUDENT),
    ]:
        users[name] = services.add_member(course=course, username=name, role=member_role).user
    users["olga"] = django_user_model.objects.create(username="olga")
    return users


@pytest.fixture
def site_admin(django_user_model: Any) -> Any:
    return django_user_model.objects.create(username="ada", is_staff=True)


@pytest.fixture
def released(course: Any, people: dict[str, Any]) -> Any:
    from courses import services

    return services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload(RELEASED)
    )


@pytest.fixture
def unreleased(course: Any) -> Any:
    from courses.models import Assignment

    return Assignment.objects.create(course=course, code="ps2")


@pytest.fixture
def submission(people: dict[str, Any], released: Any) -> Any:
    from courses import services

    return services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(SUBMITTED)
    )


@pytest.fixture
def feedback(people: dict[str, Any], submission: Any) -> Any:
    from courses import services

    return services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload(FEEDBACK)
    )


@pytest.fixture
def client_for() -> Callable[[Any], Any]:
    """An API client signed in as the given user (None: anonymous)."""
    from rest_framework.test import APIClient

    def make(user: Any = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def client_as(people: dict[str, Any], site_admin: Any) -> Callable[[str | None], Any]:
    """A browser signed in as the named persona, "ada" the site admin (None: anonymous)."""
    from django.test import Client

    def make(name: str | None) -> Client:
        client = Client()
        if name is not None:
            client.force_login(site_admin if name == "ada" else people[name])
        return client

    return make
