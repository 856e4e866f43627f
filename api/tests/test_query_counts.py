"""Listing and collecting many submissions costs a bounded number of queries per submission
(the deadline rush collects hundreds at once)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from courses import deadlines, services
from tests.harness.uploads import make_upload


def _queries(client: APIClient, method: str, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, {"latest": True}, format="json")
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    ("method", "path", "per_submission"), [("post", "collect", 0), ("get", "submissions", 0)]
)
def test_queries_per_submission_stay_bounded(
    people, course, released, django_user_model, method, path, per_submission
):
    client = APIClient()
    client.force_authenticate(people["ines"])
    url = f"/api/v1/courses/phys101/assignments/ps1/{path}"
    counts = []
    for total in (3, 13):
        while released.submissions.count() < total:
            index = released.submissions.count()
            name = f"student{index}"
            services.add_member(course=course, username=name, role="student")
            services.submit_assignment(
                student=django_user_model.objects.get(username=name),
                assignment=released,
                upload=make_upload({"a.txt": name.encode(), "data.csv": b"shared"}),
            )
        counts.append(_queries(client, method, url))
    assert counts[1] - counts[0] <= 10 * per_submission


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("ines", "courses"),
        ("ines", "me"),
        ("ines", "courses/phys101/assignments"),
        ("sam", "courses/phys101/assignments"),
        ("ines", "courses/phys101/members"),
    ],
)
def test_lists_cost_the_same_queries_however_long(people, course, released, who, path):
    """A list answers in a fixed number of queries: more courses, assignments (with
    fetches, submissions and extensions) and members add none."""
    client = APIClient()
    client.force_authenticate(people[who])
    counts = []
    for total in (2, 6):
        while course.assignments.count() < total:
            n = course.assignments.count()
            services.create_course(code=f"other{n}", instructors=["ines"])
            services.add_member(course=course, username=f"student{n}", role="student")
            extra = services.release_assignment(
                actor=people["ines"], course=course, code=f"ps{n + 1}", upload=make_upload({})
            )
            services.fetch_assignment(user=people["sam"], assignment=extra)
            services.submit_assignment(
                student=people["sam"], assignment=extra, upload=make_upload({"a.txt": b"a"})
            )
            deadlines.grant_extension(
                actor=people["ines"], assignment=extra, username="sam", due_date=timezone.now()
            )
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/v1/{path}")
        assert response.status_code == 200, response.content
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], f"{who} {path}: {counts[0]} queries, then {counts[1]}"
