"""Personas and clients for the API tests: the course phys101 with an instructor (ines), a
grader (gus), two students (sam, tia), an outsider (olga) and a site admin (ada)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from courses.tests.conftest import course, people, released  # noqa: F401 - shared personas


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create(username="ada", is_staff=True)


@pytest.fixture
def client_for():
    """An API client signed in as the given user (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
