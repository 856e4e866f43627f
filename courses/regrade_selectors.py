"""Reads of regrade requests: the access helper (who may see one) and the lists the API and
the pages show. Every list loads the submission, its assignment, course and student, and
who answered, in the same query."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .exceptions import NotFound
from .models import Assignment, Course, Submission
from .permissions import Action, may, require, role_in
from .regrade_models import RegradeRequest

Status = RegradeRequest.Status
# The list filters: one status, or every request.
FILTERS = ("all", *Status.values)


def _requests() -> QuerySet[RegradeRequest]:
    return RegradeRequest.objects.select_related(
        "submission__assignment__course", "submission__student", "answered_by"
    )


def get_regrade_for(
    user: AbstractBaseUser | AnonymousUser | None,
    regrade_id: int,
    action: Action = Action.VIEW_COURSE,
) -> tuple[RegradeRequest, str]:
    """A request and the user's role: its student sees it, the course's instructors and
    graders see every one; anyone else gets NotFound, as for a missing request."""
    request = _requests().filter(pk=regrade_id).first()
    missing = NotFound(f"There is no regrade request {regrade_id} that you may see.")
    if request is None:
        raise missing
    course = request.submission.assignment.course
    role = role_in(user, course)
    own = user is not None and request.submission.student_id == user.pk
    if role is None or not (own or may(role, Action.VIEW_REGRADES)):
        raise missing
    require(role, action, course)
    return request, role


def _filtered(requests: QuerySet[RegradeRequest], status: str) -> list[RegradeRequest]:
    if status != "all":
        requests = requests.filter(status=status)
    return list(requests)


def regrades_in(
    *,
    user: AbstractBaseUser,
    role: str,
    course: Course,
    assignment: Assignment | None = None,
    status: str = "all",
) -> list[RegradeRequest]:
    """A course's (or one assignment's) requests, newest first: every one for instructors
    and graders, a student's own for a student."""
    requests = _requests().filter(submission__assignment__course=course)
    if assignment is not None:
        requests = requests.filter(submission__assignment=assignment)
    if not may(role, Action.VIEW_REGRADES):
        requests = requests.filter(submission__student=user)
    return _filtered(requests, status)


def regrades_of_submission(submission: Submission) -> list[RegradeRequest]:
    """One submission's requests, newest first (the caller has checked who may see it)."""
    return list(_requests().filter(submission=submission))


def open_regrades(*, course: Course, assignment: Assignment | None = None) -> list[RegradeRequest]:
    """The requests waiting for an answer, oldest first (the order to answer them in)."""
    requests = _requests().filter(submission__assignment__course=course, status=Status.OPEN)
    if assignment is not None:
        requests = requests.filter(submission__assignment=assignment)
    return list(requests.order_by("created_at", "id"))
