"""The regrade pages: sam asks from his returned submission's page, ines and gus see the
open request on the course and assignment pages and answer it on its page, sam reads the
answer. Forms carry CSRF; refusals are the form again with a sentence, nothing recorded."""

from __future__ import annotations

import pytest
from django.test import Client

from courses import regrades
from courses.models import AuditEvent, RegradeRequest

pytestmark = pytest.mark.django_db
Status = RegradeRequest.Status


def _ask(client: Client, submission, message="Question 2 matches the solution.") -> object:
    return client.post(f"/submissions/{submission.pk}/regrade/", {"message": message})


def test_student_asks_from_the_returned_submission_page(work, client_as):
    sam = client_as("sam")
    page = sam.get(f"/submissions/{work['sam_late'].pk}/").content.decode()
    assert 'name="message"' in page and "csrfmiddlewaretoken" in page
    assert '<label for="regrade-message">' in page
    response = _ask(sam, work["sam_late"])
    assert response.status_code == 302
    assert response["Location"] == f"/submissions/{work['sam_late'].pk}/#regrades"
    page = sam.get(f"/submissions/{work['sam_late'].pk}/").content.decode()
    assert "Question 2 matches the solution." in page
    assert "Waiting for an answer." in page
    assert 'name="message"' not in page, "one open request per submission: no second form"
    assert AuditEvent.objects.filter(action="regrade_requested").count() == 1


def test_no_form_before_feedback_and_a_post_is_a_409(work, client_as):
    sam = client_as("sam")
    page = sam.get(f"/submissions/{work['sam_first'].pk}/").content.decode()
    assert 'name="message"' not in page
    assert "once feedback is released" in page
    response = _ask(sam, work["sam_first"])
    assert response.status_code == 409
    assert "has not been returned yet" in response.content.decode()
    assert not RegradeRequest.objects.exists()


def test_a_second_request_and_an_empty_one_are_refused_with_the_text_kept(work, client_as):
    sam = client_as("sam")
    _ask(sam, work["sam_late"])
    again = _ask(sam, work["sam_late"], "Me again")
    assert again.status_code == 409
    assert "already have an open regrade request" in again.content.decode()
    assert "Me again" in again.content.decode()
    RegradeRequest.objects.all().delete()
    empty = _ask(sam, work["sam_late"], "   ")
    assert empty.status_code == 400
    assert "plain text" in empty.content.decode()
    assert not RegradeRequest.objects.exists()


def test_the_forms_need_the_csrf_token(work, people):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(people["sam"])
    assert _ask(browser, work["sam_late"]).status_code == 403
    assert not RegradeRequest.objects.exists()


@pytest.mark.parametrize(("who", "status"), [("tia", 404), ("olga", 404), ("gus", 403)])
def test_only_the_student_may_open_the_ask_page(work, client_as, who, status):
    assert client_as(who).get(f"/submissions/{work['sam_late'].pk}/regrade/").status_code == status
    assert _ask(client_as(who), work["sam_late"]).status_code == status
    assert not RegradeRequest.objects.exists()


def test_the_ask_page_shows_the_form(work, client_as):
    page = client_as("sam").get(f"/submissions/{work['sam_late'].pk}/regrade/")
    assert page.status_code == 200
    assert "<h1>Ask for a regrade</h1>" in page.content.decode()


def _open_request(work, people) -> RegradeRequest:
    return regrades.request_regrade(
        student=people["sam"], submission=work["sam_late"], message="Look at question 2 again"
    )


@pytest.mark.parametrize("who", ["ines", "gus"])
def test_staff_see_open_requests_on_course_and_assignment_pages(work, people, client_as, who):
    request = _open_request(work, people)
    for url in ["/courses/phys101/", "/courses/phys101/assignments/ps1/"]:
        page = client_as(who).get(url).content.decode()
        assert "Regrade requests waiting for an answer" in page
        assert f'href="/regrades/{request.pk}/"' in page
        assert "Look at question 2 again" in page
    regrades.answer_regrade(actor=people["ines"], request=request, status="declined", answer="No")
    page = client_as(who).get("/courses/phys101/").content.decode()
    assert "No regrade requests are waiting." in page


def test_students_pages_do_not_list_others_requests(work, people, client_as):
    _open_request(work, people)
    assert "Look at question 2" not in client_as("tia").get("/courses/phys101/").content.decode()
    listing = client_as("tia").get("/courses/phys101/regrades/?status=all").content.decode()
    assert "No regrade requests match." in listing
    mine = client_as("sam").get("/courses/phys101/regrades/?status=all").content.decode()
    assert "Look at question 2" in mine


def test_instructor_answers_and_the_student_sees_the_answer(work, people, client_as):
    request = _open_request(work, people)
    ines = client_as("ines")
    page = ines.get(f"/regrades/{request.pk}/").content.decode()
    assert "<legend>Decision</legend>" in page and 'name="answer"' in page
    response = ines.post(
        f"/regrades/{request.pk}/", {"status": "accepted", "answer": "Right: 5 of 5 now."}
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.answered_by) == (Status.ACCEPTED, people["ines"])
    for url in [f"/submissions/{work['sam_late'].pk}/", f"/regrades/{request.pk}/"]:
        page = client_as("sam").get(url).content.decode()
        assert "Right: 5 of 5 now." in page
        assert "Answer from ines" in page or "From ines" in page
    again = ines.post(f"/regrades/{request.pk}/", {"status": "declined", "answer": "No"})
    assert again.status_code == 409
    assert "already closed" in again.content.decode()


def test_an_answer_without_a_decision_is_a_400_with_the_text_kept(work, people, client_as):
    request = _open_request(work, people)
    response = client_as("gus").post(f"/regrades/{request.pk}/", {"answer": "Draft answer"})
    assert response.status_code == 400
    assert "Draft answer" in response.content.decode()
    request.refresh_from_db()
    assert request.is_open


@pytest.mark.parametrize(("who", "status"), [("sam", 403), ("tia", 404), ("olga", 404)])
def test_others_cannot_answer(work, people, client_as, who, status):
    request = _open_request(work, people)
    response = client_as(who).post(
        f"/regrades/{request.pk}/", {"status": "accepted", "answer": "x"}
    )
    assert response.status_code == status
    request.refresh_from_db()
    assert request.is_open


def test_the_student_withdraws_from_the_page(work, people, client_as):
    request = _open_request(work, people)
    sam = client_as("sam")
    assert "Withdraw this request" in sam.get(f"/regrades/{request.pk}/").content.decode()
    response = sam.post(f"/regrades/{request.pk}/withdraw/")
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == Status.WITHDRAWN
    assert "Withdrawn by the student." in sam.get(f"/regrades/{request.pk}/").content.decode()
    again = sam.post(f"/regrades/{request.pk}/withdraw/")
    assert again.status_code == 409
    assert client_as("gus").post(f"/regrades/{request.pk}/withdraw/").status_code == 403


def test_the_course_list_filters_by_status(work, people, client_as):
    request = _open_request(work, people)
    ines = client_as("ines")
    assert f"/regrades/{request.pk}/" in ines.get("/courses/phys101/regrades/").content.decode()
    declined = ines.get("/courses/phys101/regrades/?status=declined").content.decode()
    assert "No regrade requests match." in declined
    unknown = ines.get("/courses/phys101/regrades/?status=bogus").content.decode()
    assert f"/regrades/{request.pk}/" in unknown
    assert client_as("olga").get("/courses/phys101/regrades/").status_code == 404


def test_the_regrade_pages_in_spanish(work, people, client_as):
    request = _open_request(work, people)
    spanish = {"HTTP_ACCEPT_LANGUAGE": "es-ES,es;q=0.9"}
    sam_page = client_as("sam").get(f"/submissions/{work['sam_late'].pk}/", **spanish)
    assert "Solicitudes de revisión" in sam_page.content.decode()
    answer_page = client_as("ines").get(f"/regrades/{request.pk}/", **spanish).content.decode()
    assert "Decisión" in answer_page and "Enviar la respuesta" in answer_page
    RegradeRequest.objects.all().delete()
    form = client_as("sam").get(f"/submissions/{work['sam_late'].pk}/regrade/", **spanish)
    assert "Solicitar una revisión" in form.content.decode()


def test_the_open_requests_part_shows_nothing_to_a_student(work, people):
    from django.template import Context, Template

    _open_request(work, people)
    template = Template("{% load regrade_tags %}{% open_regrades course %}")
    shown = template.render(Context({"course": work["assignment"].course, "role": "student"}))
    assert shown.strip() == ""
    shown = template.render(Context({"course": work["assignment"].course, "role": "grader"}))
    assert "Look at question 2 again" in shown
