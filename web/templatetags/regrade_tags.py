"""The regrade parts of shared pages: a submission's requests with the ask form, and the
requests waiting on a course or an assignment page. Tags, so that those pages' views stay
as they are; each reads through ``courses.regrade_selectors`` only."""

from __future__ import annotations

from typing import Any

from django import template

from courses import regrade_selectors
from courses.models import Assignment, Course, Submission
from courses.permissions import Action, may
from courses.regrade_models import MESSAGE_MAX_LENGTH

register = template.Library()


@register.inclusion_tag("web/regrades/_submission.html", takes_context=True)
def regrade_section(context: template.Context, submission: Submission) -> dict[str, Any]:
    """On the submission page: its requests and answers; the ask form for its student once
    the feedback is out and no request is open."""
    requests = regrade_selectors.regrades_of_submission(submission)
    user = context["request"].user
    role = context.get("role")
    is_student = submission.student_id == user.pk and may(role, Action.REQUEST_REGRADE)
    returned = context.get("feedback") is not None
    return {
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
        "submission": submission,
        "requests": requests,
        "is_student": is_student,
        "returned": returned,
        "may_ask": is_student and returned and not any(r.is_open for r in requests),
        "may_answer": may(role, Action.ANSWER_REGRADE),
        "max_length": MESSAGE_MAX_LENGTH,
        "message": "",
    }


@register.inclusion_tag("web/regrades/_open.html", takes_context=True)
def open_regrades(
    context: template.Context, course: Course, assignment: Assignment | None = None
) -> dict[str, Any]:
    """On the course or assignment page of instructors and graders: the open requests."""
    if not may(context.get("role"), Action.VIEW_REGRADES):
        return {"hidden": True}
    return {
        "course": course,
        "assignment": assignment,
        "requests": regrade_selectors.open_regrades(course=course, assignment=assignment),
    }
