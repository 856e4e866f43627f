"""Fixtures shared by the domain's tests."""

from __future__ import annotations

import pytest

from courses import services
from tests.harness.uploads import make_upload


@pytest.fixture
def data(released, people):
    """The released assignment with one submission each from sam and tia: something to back
    up, restore and check."""
    for student in ("sam", "tia"):
        services.submit_assignment(
            student=people[student],
            assignment=released,
            upload=make_upload({"a.txt": student.encode()}),
        )
    return released
