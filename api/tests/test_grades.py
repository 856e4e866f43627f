"""Scores sent with feedback (validated, stored, shown) and the grade export, through the API."""

from __future__ import annotations

import csv
import io
import json

import pytest

from courses import services
from courses.models import AuditEvent, Feedback, NotebookScore
from tests.harness.personas import FEEDBACK
from tests.harness.uploads import upload_form

C = "/api/v1/courses/phys101"
A = f"{C}/assignments/ps1"
GOOD = [
    {"notebook": "ps1", "score": 7.5, "max_score": 10},
    {"notebook": "ps1-extra", "score": 0, "max_score": 2},
]


def _release(client, sid, scores):
    form = upload_form(FEEDBACK)
    if scores is not None:
        form["scores"] = scores if isinstance(scores, str) else json.dumps(scores)
    return client.post(f"/api/v1/submissions/{sid}/feedback", form, format="multipart")


@pytest.mark.django_db
def test_feedback_with_scores_is_stored_and_shown_to_the_student(people, submission, client_for):
    response = _release(client_for(people["gus"]), submission.pk, GOOD)
    assert response.status_code == 201, response.content
    assert response.json()["score"] == 7.5
    assert response.json()["max_score"] == 12
    own = client_for(people["sam"]).get(f"/api/v1/submissions/{submission.pk}/feedback").json()
    assert own["scores"] == [
        {"notebook": "ps1", "score": 7.5, "max_score": 10.0},
        {"notebook": "ps1-extra", "score": 0.0, "max_score": 2.0},
    ]
    fetched = client_for(people["sam"]).get(f"{A}/feedback").json()
    assert [(f["score"], f["max_score"]) for f in fetched] == [(7.5, 12.0)]
    event = AuditEvent.objects.filter(action=AuditEvent.Action.FEEDBACK_RELEASED).latest("at")
    assert event.detail["scores"] == 2


@pytest.mark.django_db
def test_feedback_without_scores_is_accepted_and_replaces_old_scores(
    people, submission, client_for
):
    grader = client_for(people["gus"])
    assert _release(grader, submission.pk, GOOD).status_code == 201
    response = _release(grader, submission.pk, None)
    assert response.status_code == 201
    assert response.json()["score"] is None
    assert response.json()["scores"] == []
    assert not NotebookScore.objects.exists()


@pytest.mark.parametrize(
    ("scores", "sentence"),
    [
        ("not json", "not JSON"),
        ('{"notebook": "ps1"}', "JSON list"),
        ([{"notebook": "ps1", "score": 11, "max_score": 10}], "more than its max score"),
        ([{"notebook": "ps1", "score": -1, "max_score": 10}], "from 0 to"),
        ([{"notebook": "ps1", "score": "7", "max_score": 10}], "must be a number"),
        ([{"notebook": "ps1", "score": True, "max_score": 10}], "must be a number"),
        ([{"notebook": "ps1", "score": 1, "max_score": 1e300}], "from 0 to"),
        ('[{"notebook": "ps1", "score": NaN, "max_score": 1}]', "from 0 to"),
        ([{"notebook": "", "score": 1, "max_score": 1}], "notebook name"),
        ([{"notebook": "ps1", "score": 1}], "exactly notebook, score and max_score"),
        ([{"notebook": "ps1", "score": 1, "max_score": 1}] * 2, "more than one score"),
        (
            [{"notebook": f"n{i}", "score": 1, "max_score": 1} for i in range(501)],
            "At most 500",
        ),
    ],
)
@pytest.mark.django_db
def test_bad_scores_get_400_and_record_nothing(people, submission, client_for, scores, sentence):
    response = _release(client_for(people["gus"]), submission.pk, scores)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "bad_scores"
    assert sentence in response.json()["detail"]
    assert not Feedback.objects.exists()
    assert not NotebookScore.objects.exists()


@pytest.mark.django_db
def test_instructor_and_grader_see_each_students_newest_score(people, submission, client_for):
    grader = client_for(people["gus"])
    _release(grader, submission.pk, [{"notebook": "ps1", "score": 2, "max_score": 10}])
    _release(grader, submission.pk, [{"notebook": "ps1", "score": 9, "max_score": 10}])
    for who in ("gus", "ines"):
        rows = client_for(people[who]).get(f"{A}/scores").json()
        assert [(r["student"], r["score"], r["max_score"]) for r in rows] == [("sam", 9, 10)]
        assert rows[0]["submission_id"] == submission.pk
    assert client_for(people["sam"]).get(f"{A}/scores").status_code == 403


def _export(client, query=""):
    response = client.get(f"{C}/grades{query}")
    return response, list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
def test_canvas_export_lists_scores_with_points_possible(people, course, submission, client_for):
    services.add_member(course=course, username="=evil", role="student", first_name="=HYPERLINK(1)")
    _release(client_for(people["gus"]), submission.pk, GOOD)
    response, rows = _export(client_for(people["ines"]), "?format=canvas")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "phys101-grades-canvas.csv" in response["Content-Disposition"]
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ps1"]
    assert rows[1] == ["Points Possible", "", "", "", "", "12"]
    by_login = {row[3]: row for row in rows[2:]}
    assert by_login["sam"][5] == "7.5"
    assert by_login["tia"][5] == ""  # no score: blank, not zero
    assert by_login["'=evil"][0] == "'=HYPERLINK(1)"


@pytest.mark.django_db
def test_csv_export_and_bad_requests(people, submission, client_for):
    _release(client_for(people["gus"]), submission.pk, GOOD)
    ines = client_for(people["ines"])
    response, rows = _export(ines, "?format=csv&assignment=ps1")
    assert rows[0] == [
        "student",
        "first_name",
        "last_name",
        "email",
        "assignment",
        "score",
        "max_score",
    ]
    assert ["sam", "", "", "", "ps1", "7.5", "12"] in rows
    assert ["tia", "", "", "", "ps1", "", ""] in rows
    response, _ = _export(ines, "?format=xlsx")
    assert response.status_code == 400
    assert "format" in response.json()["detail"]
    response, _ = _export(ines, "?assignment=nope")
    assert response.status_code == 404
    assert "no assignment 'nope'" in response.json()["detail"]


@pytest.mark.django_db
def test_collected_submissions_carry_each_students_own_due_date(
    people, released, client_for, submission
):
    from tests.harness.uploads import make_upload

    services.submit_assignment(
        student=people["tia"], assignment=released, upload=make_upload({"ps1.ipynb": b"{}"})
    )
    ines = client_for(people["ines"])
    ines.patch(A, {"due_date": "2030-01-01 12:00:00 UTC"}, format="json")
    ines.put(f"{A}/extensions/sam", {"due_date": "2030-01-08 12:00:00 UTC"}, format="json")
    collected = ines.post(f"{A}/collect", {"latest": False}, format="json").json()
    assert {(s["student"], s["due_date"]) for s in collected} == {
        ("sam", "2030-01-08 12:00:00.000000 UTC"),
        ("tia", "2030-01-01 12:00:00.000000 UTC"),
    }


@pytest.mark.django_db
def test_members_api_gives_and_takes_the_lms_user_id(people, client_for):
    ines = client_for(people["ines"])
    put = ines.put(f"{C}/members/sam", {"role": "student", "lms_user_id": "c-42"}, format="json")
    assert put.status_code == 200, put.content
    members = {m["username"]: m for m in ines.get(f"{C}/members").json()}
    assert members["sam"]["lms_user_id"] == "c-42"
    assert members["tia"]["lms_user_id"] == ""
