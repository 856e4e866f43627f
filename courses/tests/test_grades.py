"""Scores stored with feedback, and ``manage.py export_grades``."""

from __future__ import annotations

import csv
import io
import os

import pytest
from django.core.management import CommandError, call_command

from courses import grades, services
from tests.harness.uploads import make_upload

FEEDBACK = {"ps1.html": b"<p>ok</p>"}


def _feedback(grader, submission, scores):
    return services.release_feedback(
        actor=grader,
        submission=submission,
        upload=make_upload(FEEDBACK),
        scores=grades.check_scores(scores),
    )


@pytest.fixture
def scored(people, released):
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"ps1.ipynb": b"{}"})
    )
    _feedback(people["gus"], submission, [{"notebook": "ps1", "score": 4, "max_score": 5}])
    return submission


def test_export_grades_command_writes_canvas_to_stdout(scored, course):
    out = io.StringIO()
    call_command("export_grades", "phys101", "ps1", "--format", "canvas", stdout=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "5"
    assert ["sam", "4"] == [rows[2][3], rows[2][5]]


def test_export_grades_command_writes_a_private_file(scored, tmp_path):
    target = tmp_path / "grades.csv"
    err = io.StringIO()
    call_command("export_grades", "phys101", "--format", "csv", "-o", str(target), stderr=err)
    assert "sam,,,,ps1,4,5" in target.read_text()
    assert os.stat(target).st_mode & 0o077 == 0
    assert "Wrote the grades of phys101" in err.getvalue()


def test_export_grades_command_refuses_unknown_course_and_assignment(scored):
    with pytest.raises(CommandError, match="no course 'nope'"):
        call_command("export_grades", "nope")
    with pytest.raises(CommandError, match="no assignment 'ps9'"):
        call_command("export_grades", "phys101", "ps9")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("export_grades", "phys101", "-o", "/nonexistent/dir/g.csv")


def test_former_student_keeps_their_score_in_the_export(scored, course, people):
    services.remove_member(course=course, username="sam")
    text = io.StringIO()
    call_command("export_grades", "phys101", "--format", "csv", stdout=text)
    assert "sam,,,,ps1,4,5" in text.getvalue()


def test_grader_may_not_export_grades(scored, course, people):
    from courses import gradeexport
    from courses.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        gradeexport.export_grades(course=course, actor=people["gus"])


def test_points_possible_is_blank_without_any_score(released, course):
    text = io.StringIO()
    call_command("export_grades", "phys101", stdout=text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[1] == ["Points Possible", "", "", "", "", ""]


def test_newest_scored_feedback_wins_across_submissions(scored, people, released):
    later = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"ps1.ipynb": b"{2}"})
    )
    _feedback(people["gus"], later, [{"notebook": "ps1", "score": 5, "max_score": 5}])
    assert grades.student_scores(released)["sam"].total.score == 5
    assert grades.scores_of([released])[(released.pk, people["sam"].pk)].score == 5


def test_canvas_export_puts_the_user_name_in_the_configured_login_column(scored, settings):
    settings.EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN = "Integration ID"
    text = io.StringIO()
    call_command("export_grades", "phys101", stdout=text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Integration ID",
        "ps1",
    ]
    sam = next(row for row in rows if "sam" in row)
    assert (sam[3], sam[5], sam[6]) == ("", "sam", "4")
