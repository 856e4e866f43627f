"""Regrade requests: a student asks for a second look at a returned submission, a grader or
an instructor of the course answers (accepted or declined, with a message), and the student
reads the answer. A student may withdraw a request nobody has answered yet.

The rules, each a sentence to the caller and nothing recorded when broken:

- only the submission's own student asks, and only once feedback has been released for it
  (``409 not_returned``);
- one open request per submission (``409 regrade_open``; a database constraint as well);
- a request is answered or withdrawn once (``409 already_answered``);
- messages are plain text, 1 to ``MESSAGE_MAX_LENGTH`` characters (``400``).

Every step is audited (``regrade_requested``, ``regrade_answered``, ``regrade_withdrawn``).
"""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import services
from .exceptions import BadRequest, Conflict, NotFound
from .models import AuditEvent, Feedback, Submission
from .permissions import Action
from .regrade_models import MESSAGE_MAX_LENGTH, RegradeRequest
from .timestamps import format_timestamp

Status = RegradeRequest.Status
ANSWERS = (Status.ACCEPTED, Status.DECLINED)
# Control characters other than tab and line breaks: not plain text, and invisible on a page.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_message(text: object, *, what: str = "message") -> str:
    """The message as it is stored: plain text, trimmed, within the length."""
    if not isinstance(text, str):
        raise BadRequest(f"The {what} must be text.")
    text = text.strip()
    if not text:
        raise BadRequest(f"The {what} is empty: say in a sentence or two what should be looked at.")
    if len(text) > MESSAGE_MAX_LENGTH:
        raise BadRequest(
            f"The {what} has {len(text)} characters; at most {MESSAGE_MAX_LENGTH} are allowed."
        )
    if _CONTROL.search(text):
        raise BadRequest(f"The {what} must be plain text, without control characters.")
    return text


def _audit(action: str, actor: AbstractBaseUser | None, request: RegradeRequest) -> None:
    submission = request.submission
    services.record_event(
        action=action,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        regrade=request.pk,
        status=request.status,
    )


@transaction.atomic
def request_regrade(
    *, student: AbstractBaseUser, submission: Submission, message: str
) -> RegradeRequest:
    """The student asks for a regrade of their own returned submission."""
    course = submission.assignment.course
    services.require_course_role(student, course, Action.REQUEST_REGRADE)
    if submission.student_id != student.pk:
        raise NotFound(f"There is no submission {submission.pk} that you may see.")
    text = clean_message(message)
    # Locked, so that two asks at once queue here and the second sees the first.
    try:
        Submission.objects.select_for_update().get(pk=submission.pk)
    except Submission.DoesNotExist:
        raise NotFound("This submission was deleted while your request was being sent.") from None
    if not Feedback.objects.filter(submission=submission).exists():
        raise Conflict(
            "This submission has not been returned yet: you can ask for a regrade once its "
            "feedback is released.",
            code="not_returned",
        )
    if RegradeRequest.objects.filter(submission=submission, status=Status.OPEN).exists():
        raise Conflict(
            "You already have an open regrade request on this submission; wait for its answer "
            "or withdraw it first.",
            code="regrade_open",
        )
    try:
        with transaction.atomic():
            request = RegradeRequest.objects.create(submission=submission, message=text)
    except IntegrityError:  # pragma: no cover - only when the row lock above is bypassed
        raise Conflict(
            "You already have an open regrade request on this submission.", code="regrade_open"
        ) from None
    _audit(AuditEvent.Action.REGRADE_REQUESTED, student, request)
    return request


def _lock_open(request: RegradeRequest) -> RegradeRequest:
    """The request, locked; Conflict unless it is still open."""
    try:
        locked = (
            RegradeRequest.objects.select_for_update()
            .select_related("submission__assignment__course", "submission__student")
            .get(pk=request.pk)
        )
    except RegradeRequest.DoesNotExist:
        raise NotFound(f"There is no regrade request {request.pk} that you may see.") from None
    if not locked.is_open:
        raise Conflict(
            f"This regrade request was already {locked.status} at "
            f"{format_timestamp(locked.answered_at)}; it cannot be changed again.",
            code="already_answered",
        )
    return locked


@transaction.atomic
def answer_regrade(
    *,
    actor: AbstractBaseUser | None,
    request: RegradeRequest,
    status: str,
    answer: str,
) -> RegradeRequest:
    """A grader or an instructor answers an open request: accepted or declined, and why."""
    services.require_course_role(actor, request.submission.assignment.course, Action.ANSWER_REGRADE)
    if status not in ANSWERS:
        raise BadRequest(f"The answer's status must be 'accepted' or 'declined', not {status!r}.")
    text = clean_message(answer, what="answer")
    request = _lock_open(request)
    request.status = status
    request.answer = text
    request.answered_by = actor if actor is not None and actor.pk else None
    request.answered_at = timezone.now()
    request.save(update_fields=["status", "answer", "answered_by", "answered_at"])
    _audit(AuditEvent.Action.REGRADE_ANSWERED, actor, request)
    return request


@transaction.atomic
def withdraw_regrade(*, student: AbstractBaseUser, request: RegradeRequest) -> RegradeRequest:
    """The student takes back their own request before anyone answered it."""
    services.require_course_role(
        student, request.submission.assignment.course, Action.REQUEST_REGRADE
    )
    if request.submission.student_id != student.pk:
        raise NotFound(f"There is no regrade request {request.pk} that you may see.")
    request = _lock_open(request)
    request.status = Status.WITHDRAWN
    request.answered_at = timezone.now()
    request.save(update_fields=["status", "answered_at"])
    _audit(AuditEvent.Action.REGRADE_WITHDRAWN, student, request)
    return request
