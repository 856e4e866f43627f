"""Regrade requests: who may ask, answer and withdraw, the one-open rule, bad messages
(a sentence, nothing recorded), and the audit trail of every step."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from courses import regrade_selectors, regrades, services
from courses.exceptions import BadRequest, Conflict, NotFound, PermissionDenied
from courses.models import AuditEvent, RegradeRequest
from courses.regrade_models import MESSAGE_MAX_LENGTH
from tests.harness.uploads import make_upload

Status = RegradeRequest.Status


@pytest.fixture
def submission(people, released):
    return services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"ps1.ipynb": b"{}"})
    )


@pytest.fixture
def returned(people, submission):
    services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload({"f.html": b"<p>2/5</p>"})
    )
    return submission


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def test_student_asks_and_the_request_is_open_and_audited(people, returned):
    request = regrades.request_regrade(
        student=people["sam"], submission=returned, message="  Question 2 was right.  "
    )
    assert request.status == Status.OPEN
    assert request.message == "Question 2 was right."
    [event] = _events(AuditEvent.Action.REGRADE_REQUESTED)
    assert (event.actor_name, event.student_name, event.submission_id) == (
        "sam",
        "sam",
        returned.pk,
    )
    assert event.detail == {"regrade": request.pk, "status": "open"}


def test_a_submission_without_feedback_cannot_be_regraded(people, submission):
    with pytest.raises(Conflict, match="not been returned yet") as caught:
        regrades.request_regrade(student=people["sam"], submission=submission, message="please")
    assert caught.value.code == "not_returned"
    assert not RegradeRequest.objects.exists()
    assert not _events(AuditEvent.Action.REGRADE_REQUESTED)


def test_one_open_request_per_submission(people, returned):
    regrades.request_regrade(student=people["sam"], submission=returned, message="first")
    with pytest.raises(Conflict, match="already have an open regrade request") as caught:
        regrades.request_regrade(student=people["sam"], submission=returned, message="second")
    assert caught.value.code == "regrade_open"
    assert RegradeRequest.objects.count() == 1


def test_the_database_refuses_a_second_open_request(people, returned):
    RegradeRequest.objects.create(submission=returned, message="one")
    with pytest.raises(IntegrityError), transaction.atomic():
        RegradeRequest.objects.create(submission=returned, message="two")


def test_after_an_answer_the_student_may_ask_again(people, returned):
    first = regrades.request_regrade(student=people["sam"], submission=returned, message="a")
    regrades.answer_regrade(
        actor=people["gus"], request=first, status="declined", answer="It was wrong."
    )
    again = regrades.request_regrade(student=people["sam"], submission=returned, message="b")
    assert again.is_open


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        ("", "is empty"),
        ("   \n ", "is empty"),
        ("x" * (MESSAGE_MAX_LENGTH + 1), f"at most {MESSAGE_MAX_LENGTH}"),
        ("bell\x07", "plain text"),
        (42, "must be text"),
    ],
)
def test_bad_messages_are_refused_with_a_sentence(people, returned, message, sentence):
    with pytest.raises(BadRequest, match=sentence):
        regrades.request_regrade(student=people["sam"], submission=returned, message=message)
    assert not RegradeRequest.objects.exists()
    assert not _events(AuditEvent.Action.REGRADE_REQUESTED)


def test_a_message_of_the_full_length_with_line_breaks_is_kept(people, returned):
    text = ("line\n\ttab " * MESSAGE_MAX_LENGTH)[: MESSAGE_MAX_LENGTH - 1] + "."
    request = regrades.request_regrade(student=people["sam"], submission=returned, message=text)
    assert request.message == text


def test_only_the_submissions_student_may_ask(people, returned):
    with pytest.raises(NotFound):
        regrades.request_regrade(student=people["tia"], submission=returned, message="mine?")
    with pytest.raises(PermissionDenied, match="ask for regrades"):
        regrades.request_regrade(student=people["gus"], submission=returned, message="hm")
    with pytest.raises(NotFound):
        regrades.request_regrade(student=people["olga"], submission=returned, message="hm")
    assert not RegradeRequest.objects.exists()


@pytest.mark.parametrize("answerer", ["gus", "ines"])
def test_graders_and_instructors_answer(people, returned, answerer):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    answered = regrades.answer_regrade(
        actor=people[answerer], request=request, status="accepted", answer="Now 5/5."
    )
    assert (answered.status, answered.answer, answered.answered_by) == (
        Status.ACCEPTED,
        "Now 5/5.",
        people[answerer],
    )
    assert answered.answered_at is not None
    [event] = _events(AuditEvent.Action.REGRADE_ANSWERED)
    assert (event.actor_name, event.detail["status"]) == (answerer, "accepted")


def test_students_and_outsiders_cannot_answer(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    with pytest.raises(PermissionDenied):
        regrades.answer_regrade(
            actor=people["sam"], request=request, status="accepted", answer="ok"
        )
    with pytest.raises(NotFound):
        regrades.answer_regrade(
            actor=people["olga"], request=request, status="accepted", answer="x"
        )
    request.refresh_from_db()
    assert request.is_open


def test_an_answer_needs_a_status_and_a_message(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    with pytest.raises(BadRequest, match="'accepted' or 'declined'"):
        regrades.answer_regrade(actor=people["gus"], request=request, status="open", answer="x")
    with pytest.raises(BadRequest, match="answer is empty"):
        regrades.answer_regrade(actor=people["gus"], request=request, status="declined", answer="")
    request.refresh_from_db()
    assert request.is_open
    assert not _events(AuditEvent.Action.REGRADE_ANSWERED)


def test_a_request_is_answered_once(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    regrades.answer_regrade(actor=people["gus"], request=request, status="declined", answer="No.")
    with pytest.raises(Conflict, match="already declined") as caught:
        regrades.answer_regrade(
            actor=people["ines"], request=request, status="accepted", answer="Y"
        )
    assert caught.value.code == "already_answered"
    request.refresh_from_db()
    assert (request.status, request.answer) == (Status.DECLINED, "No.")


def test_the_student_withdraws_an_open_request_only(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    with pytest.raises(NotFound):
        regrades.withdraw_regrade(student=people["tia"], request=request)
    with pytest.raises(PermissionDenied):
        regrades.withdraw_regrade(student=people["gus"], request=request)
    withdrawn = regrades.withdraw_regrade(student=people["sam"], request=request)
    assert withdrawn.status == Status.WITHDRAWN
    assert len(_events(AuditEvent.Action.REGRADE_WITHDRAWN)) == 1
    with pytest.raises(Conflict, match="already withdrawn"):
        regrades.withdraw_regrade(student=people["sam"], request=request)
    with pytest.raises(Conflict, match="already withdrawn"):
        regrades.answer_regrade(actor=people["gus"], request=request, status="accepted", answer="x")


def test_a_deleted_request_is_not_found_when_answered(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    RegradeRequest.objects.filter(pk=request.pk).delete()
    with pytest.raises(NotFound):
        regrades.answer_regrade(actor=people["gus"], request=request, status="accepted", answer="x")


def test_who_sees_which_requests(people, released, returned):
    tia_sub = services.submit_assignment(
        student=people["tia"], assignment=released, upload=make_upload({"ps1.ipynb": b"[]"})
    )
    services.release_feedback(
        actor=people["gus"], submission=tia_sub, upload=make_upload({"f.html": b"<p>1</p>"})
    )
    sam_req = regrades.request_regrade(student=people["sam"], submission=returned, message="s")
    tia_req = regrades.request_regrade(student=people["tia"], submission=tia_sub, message="t")
    regrades.answer_regrade(actor=people["gus"], request=tia_req, status="accepted", answer="ok")
    course = released.course
    assert regrade_selectors.regrades_in(user=people["sam"], role="student", course=course) == [
        sam_req
    ]
    everyone = regrade_selectors.regrades_in(user=people["gus"], role="grader", course=course)
    assert {r.pk for r in everyone} == {sam_req.pk, tia_req.pk}
    assert regrade_selectors.regrades_in(
        user=people["ines"], role="instructor", course=course, assignment=released, status="open"
    ) == [sam_req]
    assert regrade_selectors.open_regrades(course=course) == [sam_req]
    assert regrade_selectors.regrades_of_submission(returned) == [sam_req]
    assert regrade_selectors.get_regrade_for(people["sam"], sam_req.pk)[1] == "student"
    assert regrade_selectors.get_regrade_for(people["gus"], tia_req.pk)[1] == "grader"
    for who, pk in [("tia", sam_req.pk), ("olga", sam_req.pk), ("ines", 10**6)]:
        with pytest.raises(NotFound):
            regrade_selectors.get_regrade_for(people[who], pk)


def test_deleting_the_submission_deletes_its_requests(people, returned):
    regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    services.delete_submission(actor=people["ines"], submission=returned)
    assert not RegradeRequest.objects.exists()


def test_a_submission_deleted_meanwhile_is_not_found(people, returned):
    from courses.models import Submission

    Submission.objects.filter(pk=returned.pk).delete()
    with pytest.raises(NotFound, match="deleted while your request"):
        regrades.request_regrade(student=people["sam"], submission=returned, message="q2")
    assert not RegradeRequest.objects.exists()


def test_a_request_names_itself(people, returned):
    request = regrades.request_regrade(student=people["sam"], submission=returned, message="q")
    assert str(request) == f"regrade request {request.pk} on {returned.pk} (open)"


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_asks_on_one_submission_give_one_open_request(people, released):
    import threading

    from django.db import connection

    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"ps1.ipynb": b"{}"})
    )
    services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload({"f.html": b"<p>1</p>"})
    )
    count = 8
    barrier = threading.Barrier(count)
    outcomes: list[object] = []

    def ask(index: int) -> None:
        try:
            barrier.wait()
            regrades.request_regrade(
                student=people["sam"], submission=submission, message=f"ask {index}"
            )
            outcomes.append("asked")
        except BaseException as exc:  # collected and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("asked") == 1
    refused = [o for o in outcomes if o != "asked"]
    assert all(isinstance(o, Conflict) and o.code == "regrade_open" for o in refused), refused
    assert RegradeRequest.objects.filter(submission=submission).count() == 1
    assert AuditEvent.objects.filter(action="regrade_requested").count() == 1
