"""Every page costs the same number of queries whatever the number of courses, assignments,
students and submissions it lists: no query per row (a course of 300 students costs the
queries of a course of 3)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses import deadlines, services
from courses.models import Submission
from tests.harness.uploads import make_upload

PAGES = [
    ("ines", "/"),
    ("ada", "/"),
    ("ines", "/courses/phys101/"),
    ("gus", "/courses/phys101/"),
    ("sam", "/courses/phys101/"),
    ("ines", "/courses/phys101/assignments/ps1/"),
    ("ines", "/courses/phys101/assignments/ps1/?status=late"),
    ("ines", "/courses/phys101/assignments/ps1/latest.zip"),
    ("sam", "/courses/phys101/assignments/ps1/"),
    ("ines", "/courses/phys101/audit/"),
    ("ines", "submission"),
    ("sam", "submission"),
]


def _grow(course, people, released, django_user_model, size: int) -> None:
    """``size`` more of everything a page lists: courses of the instructor, released
    assignments, students who submit (some late, some with extensions and feedback), and
    submissions of sam's."""
    start = Submission.objects.filter(assignment=released).count()
    now = timezone.now()
    services.set_due_date(actor=None, assignment=released, due_date=now - dt.timedelta(hours=1))
    for n in range(start, start + size):
        other = services.create_course(code=f"c{n}", instructors=["ines"])
        services.add_member(course=other, username="sam", role="student")
        code = f"extra{n}"
        extra = services.release_assignment(
            actor=people["ines"], course=course, code=code, upload=make_upload({"a.txt": b"a"})
        )
        name = f"student{n}"
        services.add_member(course=course, username=name, role="student")
        student = django_user_model.objects.get(username=name)
        deadlines.grant_extension(
            actor=people["ines"], assignment=released, username=name, due_date=now + dt.timedelta(1)
        )
        for assignment in (released, extra):
            submission = services.submit_assignment(
                student=student, assignment=assignment, upload=make_upload({"a.txt": name.encode()})
            )
            services.fetch_assignment(user=student, assignment=assignment)
        services.release_feedback(
            actor=people["ines"], submission=submission, upload=make_upload({"f.txt": b"ok"})
        )
        mine = services.submit_assignment(
            student=people["sam"], assignment=extra, upload=make_upload({"a.txt": b"sam"})
        )
        services.release_feedback(
            actor=people["ines"], submission=mine, upload=make_upload({"f.txt": b"ok"})
        )
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"sam"})
        )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "page"), PAGES)
def test_a_page_costs_the_same_queries_for_two_rows_as_for_six(
    course, people, released, client_as, django_user_model, who, page
):
    client = client_as(who)
    counts = []
    for size in (2, 4):
        _grow(course, people, released, django_user_model, size)
        url = page
        if page == "submission":
            latest = Submission.objects.filter(student=people["sam"], assignment=released).last()
            url = f"/submissions/{latest.pk}/"
        counts.append(_queries(client, url))
    assert counts[0] == counts[1], f"{who} {page}: {counts[0]} queries, then {counts[1]}"
