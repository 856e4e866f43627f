"""The regrade pages: a student asks from their submission page (and may withdraw), graders
and instructors answer on the request's own page, and a course's requests are listed.

Thin, as every page: access through the helpers (a non-member gets 404), reads through
``courses.regrade_selectors``, writes through ``courses.regrades``. A refused form is shown
again with its sentence and the status the API would answer (400 or 409)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from courses import regrade_selectors, regrades
from courses.exceptions import BadRequest, Conflict
from courses.permissions import Action, get_course_for, get_submission_for, may

from .views import page_view

Status = regrades.Status


def _refusal(exc: BadRequest | Conflict) -> str:
    """The page's sentence for a refused form (the service's English sentence names the rule;
    the pages speak the viewer's language)."""
    sentences = {
        "not_returned": _(
            "This submission has not been returned yet: you can ask for a regrade once its "
            "feedback is released."
        ),
        "regrade_open": _(
            "You already have an open regrade request on this submission; wait for its answer "
            "or withdraw it first."
        ),
        "already_answered": _("This regrade request was already closed; it cannot change again."),
    }
    return sentences.get(exc.code, _message_rule())


def _message_rule() -> str:
    return _(
        "Write between 1 and %(max)d characters of plain text, and choose an answer where asked."
    ) % {"max": regrades.MESSAGE_MAX_LENGTH}


def _submission_url(submission_id: int) -> str:
    return reverse("web:submission", args=[submission_id]) + "#regrades"


@require_http_methods(["GET", "POST"])
@page_view
def ask_regrade(request: HttpRequest, submission_id: int) -> HttpResponseBase:
    """The ask form on its own page (the submission page holds the same form)."""
    submission, _role = get_submission_for(request.user, submission_id, Action.REQUEST_REGRADE)
    context = {
        "submission": submission,
        "assignment": submission.assignment,
        "course": submission.assignment.course,
        "message": "",
        "max_length": regrades.MESSAGE_MAX_LENGTH,
    }
    if request.method == "POST":
        message = request.POST.get("message", "")
        try:
            regrades.request_regrade(student=request.user, submission=submission, message=message)
        except (BadRequest, Conflict) as exc:
            context.update(message=message, error=_refusal(exc))
            return render(request, "web/regrades/ask.html", context, status=exc.status_code)
        return redirect(_submission_url(submission.pk))
    return render(request, "web/regrades/ask.html", context)


@require_http_methods(["GET", "POST"])
@page_view
def regrade_page(request: HttpRequest, regrade_id: int) -> HttpResponse:
    """One request with its answer; instructors and graders answer an open one here."""
    found, role = regrade_selectors.get_regrade_for(request.user, regrade_id)
    may_answer = may(role, Action.ANSWER_REGRADE)
    context = {
        "regrade": found,
        "submission": found.submission,
        "assignment": found.submission.assignment,
        "course": found.submission.assignment.course,
        "role": role,
        "may_answer": may_answer and found.is_open,
        "may_withdraw": found.is_open and found.submission.student_id == request.user.pk,
        "answer": "",
        "chosen": "",
        "max_length": regrades.MESSAGE_MAX_LENGTH,
    }
    if request.method == "POST":
        found, role = regrade_selectors.get_regrade_for(
            request.user, regrade_id, Action.ANSWER_REGRADE
        )
        answer, chosen = request.POST.get("answer", ""), request.POST.get("status", "")
        try:
            regrades.answer_regrade(actor=request.user, request=found, status=chosen, answer=answer)
        except (BadRequest, Conflict) as exc:
            context.update(answer=answer, chosen=chosen, error=_refusal(exc))
            return render(request, "web/regrades/regrade.html", context, status=exc.status_code)
        return redirect("web:regrade", regrade_id=found.pk)
    return render(request, "web/regrades/regrade.html", context)


@require_POST
@page_view
def withdraw_regrade(request: HttpRequest, regrade_id: int) -> HttpResponseBase:
    found, _role = regrade_selectors.get_regrade_for(
        request.user, regrade_id, Action.REQUEST_REGRADE
    )
    try:
        regrades.withdraw_regrade(student=request.user, request=found)
    except Conflict as exc:
        context = {
            "regrade": found,
            "submission": found.submission,
            "assignment": found.submission.assignment,
            "course": found.submission.assignment.course,
            "error": _refusal(exc),
        }
        return render(request, "web/regrades/regrade.html", context, status=exc.status_code)
    return redirect(_submission_url(found.submission_id))


@require_http_methods(["GET"])
@page_view
def course_regrades(request: HttpRequest, course_code: str) -> HttpResponse:
    """A course's requests, newest first (a student's own for a student), by status."""
    course, role = get_course_for(request.user, course_code)
    status = request.GET.get("status", "open")
    if status not in regrade_selectors.FILTERS:
        status = "open"
    rows = regrade_selectors.regrades_in(user=request.user, role=role, course=course, status=status)
    filters = [("all", _("all")), *((value, label) for value, label in Status.choices)]
    context = {"course": course, "role": role, "rows": rows, "status": status, "filters": filters}
    return render(request, "web/regrades/list.html", context)
