"""Personas and clients for the API tests: the course phys101 with an instructor (ines), a
grader (gus), two students (sam, tia), an outsider (olga) and a site admin (ada); the
released assignment ps1 with sam's submission and feedback on it; the unreleased ps2."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping

import pytest
from rest_framework.test import APIClient

from courses import services
from courses.models import Assignment
from courses.testing import make_upload, manifest_of, tar_gz
from courses.tests import conftest as personas

# The domain tests' personas, shared.
course = personas.course
people = personas.people
released = personas.released

SUBMITTED = {"ps1.ipynb": b'{"cells": ["sam"]}', "data/big.csv": b"x,y\n" * 1000}
FEEDBACK = {"feedback/ps1.html": b"<p>good work, sam</p>"}


def upload_form(files: Mapping[str, bytes], *, omit: Iterable[str] = ()) -> dict:
    """The multipart form of an upload, as the plugin sends it."""
    skip = set(omit)
    sent = {path: data for path, data in files.items() if path not in skip}
    return {
        "manifest": json.dumps(manifest_of(files)),
        "archive": io.BytesIO(tar_gz(sent)),
    }


@pytest.fixture
def site_admin(django_user_model):
    return django_user_model.objects.create(username="ada", is_staff=True)


@pytest.fixture
def submission(people, released):
    return services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(SUBMITTED)
    )


@pytest.fixture
def feedback(people, submission):
    return services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload(FEEDBACK)
    )


@pytest.fixture
def unreleased(course):
    return Assignment.objects.create(course=course, code="ps2")


@pytest.fixture
def client_for():
    """An API client signed in as the given user (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
