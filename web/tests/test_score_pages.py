"""Scores on the pages: the instructor's assignment page has a column per student, the
student sees theirs with the feedback on their submission page."""

from __future__ import annotations

import pytest

from courses import grades, services
from tests.harness.uploads import make_upload

from .test_pages import text

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(work, people):
    services.release_feedback(
        actor=people["gus"],
        submission=work["sam_late"],
        upload=make_upload({"ps1.html": b"<p>again</p>"}),
        scores=grades.check_scores(
            [
                {"notebook": "ps1", "score": 7.5, "max_score": 10},
                {"notebook": "bonus", "score": 2, "max_score": 2},
            ]
        ),
    )
    return work


def test_assignment_page_shows_each_students_score(scored, client_as):
    for who in ("ines", "gus"):
        page = text(client_as(who).get("/courses/phys101/assignments/ps1/"))
        assert "Score" in page
        assert "released 9.5 / 12" in page
        # tia has no feedback, so no score: the cell is empty, not 0.
        assert "tia" in page and "0 / " not in page


def test_student_sees_own_score_with_feedback(scored, client_as):
    url = f"/submissions/{scored['sam_late'].pk}/"
    page = text(client_as("sam").get(url))
    assert "Score: 9.5 / 12" in page
    assert "bonus 2 2" in page and "ps1 7.5 10" in page
    assert client_as("tia").get(url).status_code == 404


def test_feedback_without_scores_shows_no_score(work, client_as):
    page = text(client_as("sam").get(f"/submissions/{work['sam_late'].pk}/"))
    assert "Score:" not in page
