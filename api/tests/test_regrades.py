"""The regrade API end to end: sam asks on his returned submission, gus answers, sam reads the
answer; refusals are sentences in the one error form, with nothing recorded."""

from __future__ import annotations

import pytest

from courses.models import AuditEvent, RegradeRequest

C = "/api/v1/courses/phys101"
A = f"{C}/assignments/ps1"


@pytest.fixture
def clients(people, client_for):
    return {name: client_for(user) for name, user in people.items()}


def _ask(clients, sid, message="Question 2 was marked wrong but matches the solution."):
    return clients["sam"].post(
        f"/api/v1/submissions/{sid}/regrades", {"message": message}, format="json"
    )


def test_student_asks_grader_answers_student_reads(clients, submission, feedback):
    asked = _ask(clients, submission.pk)
    assert asked.status_code == 201, asked.content
    body = asked.json()
    assert body["status"] == "open"
    assert body["answer"] == "" and body["answered_by"] is None and body["answered_at"] is None
    assert (body["course_id"], body["assignment_id"], body["student"]) == ("phys101", "ps1", "sam")

    waiting = clients["gus"].get(f"{A}/regrades?status=open").json()
    assert [r["id"] for r in waiting] == [body["id"]]
    assert [r["id"] for r in clients["ines"].get(f"{C}/regrades?status=open").json()] == [
        body["id"]
    ]

    answered = clients["gus"].post(
        f"/api/v1/regrades/{body['id']}/answer",
        {"status": "accepted", "answer": "You are right: 5 of 5 now."},
        format="json",
    )
    assert answered.status_code == 200, answered.content
    assert answered.json()["answered_by"] == "gus"

    seen = clients["sam"].get(f"/api/v1/regrades/{body['id']}").json()
    assert (seen["status"], seen["answer"]) == ("accepted", "You are right: 5 of 5 now.")
    assert seen["answered_at"].endswith(" UTC")
    assert clients["sam"].get(f"{C}/regrades").json()[0]["answer"] == seen["answer"]
    assert clients["gus"].get(f"{A}/regrades?status=open").json() == []
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"regrade_requested", "regrade_answered"} <= actions


def test_a_student_lists_only_their_own(clients, people, submission, feedback):
    _ask(clients, submission.pk)
    assert clients["tia"].get(f"{C}/regrades").json() == []
    assert clients["tia"].get(f"{A}/regrades").json() == []
    assert len(clients["sam"].get(f"{C}/regrades").json()) == 1
    assert len(clients["sam"].get(f"/api/v1/submissions/{submission.pk}/regrades").json()) == 1


def _refused(response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == code
    assert words in response.json()["detail"]


def test_not_returned_yet_is_a_409(clients, submission):
    _refused(_ask(clients, submission.pk), 409, "not_returned", "not been returned yet")
    assert not RegradeRequest.objects.exists()


def test_a_second_open_request_is_a_409(clients, submission, feedback):
    _ask(clients, submission.pk)
    _refused(_ask(clients, submission.pk), 409, "regrade_open", "already have an open")
    assert RegradeRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"message": "   "}, "is empty"),
        ({"message": "x" * 2001}, "no more than 2000"),
        ({}, "required"),
        ({"message": "a\x00b"}, "Null characters"),
    ],
)
def test_bad_messages_are_400_sentences(clients, submission, feedback, body, words):
    response = clients["sam"].post(
        f"/api/v1/submissions/{submission.pk}/regrades", body, format="json"
    )
    _refused(response, 400, "bad_request", words)
    assert not RegradeRequest.objects.exists()


def test_answering_twice_is_a_409_and_bad_answers_400(clients, submission, feedback):
    rid = _ask(clients, submission.pk).json()["id"]
    url = f"/api/v1/regrades/{rid}/answer"
    bad = clients["ines"].post(url, {"status": "maybe", "answer": "hm"}, format="json")
    _refused(bad, 400, "bad_request", "status")
    empty = clients["ines"].post(url, {"status": "declined", "answer": ""}, format="json")
    _refused(empty, 400, "bad_request", "answer is empty")
    assert RegradeRequest.objects.get().status == "open"
    ok = clients["ines"].post(url, {"status": "declined", "answer": "No change."}, format="json")
    assert ok.status_code == 200
    again = clients["gus"].post(url, {"status": "accepted", "answer": "Yes."}, format="json")
    _refused(again, 409, "already_answered", "already declined")
    withdrawn = clients["sam"].post(f"/api/v1/regrades/{rid}/withdraw")
    _refused(withdrawn, 409, "already_answered", "already declined")


def test_withdrawn_then_asked_again(clients, submission, feedback):
    rid = _ask(clients, submission.pk).json()["id"]
    response = clients["sam"].post(f"/api/v1/regrades/{rid}/withdraw")
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    assert _ask(clients, submission.pk).status_code == 201
    statuses = [r["status"] for r in clients["sam"].get(f"{C}/regrades").json()]
    assert statuses == ["open", "withdrawn"]


def test_an_unknown_status_filter_is_a_400(clients, course):
    _refused(clients["ines"].get(f"{C}/regrades?status=pending"), 400, "bad_request", "status")


def test_missing_requests_are_404(clients, course):
    _refused(clients["ines"].get("/api/v1/regrades/999999"), 404, "not_found", "999999")


def test_listing_costs_the_same_queries_for_one_request_or_many(
    clients, people, released, submission, feedback
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from courses import regrades, services
    from tests.harness.uploads import make_upload

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert clients["ines"].get(f"{C}/regrades").status_code == 200
        return len(captured)

    _ask(clients, submission.pk)
    one = queries()
    for name in ("sam", "tia"):
        other = services.submit_assignment(
            student=people[name], assignment=released, upload=make_upload({"a.txt": b"1"})
        )
        services.release_feedback(
            actor=people["gus"], submission=other, upload=make_upload({"f.txt": b"2"})
        )
        regrades.request_regrade(student=people[name], submission=other, message="again")
    assert len(clients["ines"].get(f"{C}/regrades").json()) == 3
    assert queries() == one
