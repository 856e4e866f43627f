"""Who may do what: the one role x action table, and the access helpers that apply it.

Access helpers raise NotFound alike for a course that does not exist and for one the caller
is not a member of, so no interface can tell an outsider what exists.
"""

from __future__ import annotations

import enum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, QuerySet, Subquery

from .exceptions import NotFound, PermissionDenied
from .models import Assignment, Course, Membership, Submission
from .prepared import Prepared

# The role a view's access check read, kept on the course instance it fetched so that the
# service it calls next does not read it again (one membership read per request). Taken
# once: the next check on that course (another service in the same request, after a roster
# change perhaps) reads the database again.
_CHECKED_ROLES = "_exchange_checked_roles"

Role = Membership.Role


class Action(enum.StrEnum):
    VIEW_COURSE = "view course"
    VIEW_ROSTER = "view the roster of"
    MANAGE_ROSTER = "change the roster of"
    RELEASE = "release assignments in"
    VIEW_UNRELEASED = "see unreleased assignments in"
    FETCH = "fetch assignments in"
    SUBMIT = "submit assignments in"
    VIEW_ALL_SUBMISSIONS = "see all submissions in"
    COLLECT = "collect submissions in"
    RELEASE_FEEDBACK = "release feedback in"
    FETCH_FEEDBACK = "fetch feedback in"
    VIEW_AUDIT = "see the audit trail of"
    MANAGE_DEADLINES = "change due dates, cutoffs and extensions in"
    VIEW_EXTENSIONS = "see the extensions granted in"
    REMOVE_SUBMISSIONS = "remove submissions from"
    EXPORT_GRADES = "export the grades of"
    REQUEST_REGRADE = "ask for regrades in"
    VIEW_REGRADES = "see every regrade request in"
    ANSWER_REGRADE = "answer regrade requests in"


ALLOWED: dict[Action, frozenset[str]] = {
    Action.VIEW_COURSE: frozenset({Role.INSTRUCTOR, Role.GRADER, Role.STUDENT}),
    Action.VIEW_ROSTER: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.MANAGE_ROSTER: frozenset({Role.INSTRUCTOR}),
    Action.RELEASE: frozenset({Role.INSTRUCTOR}),
    Action.VIEW_UNRELEASED: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.FETCH: frozenset({Role.INSTRUCTOR, Role.GRADER, Role.STUDENT}),
    Action.SUBMIT: frozenset({Role.STUDENT}),
    Action.VIEW_ALL_SUBMISSIONS: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.COLLECT: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.RELEASE_FEEDBACK: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.FETCH_FEEDBACK: frozenset({Role.STUDENT}),
    Action.VIEW_AUDIT: frozenset({Role.INSTRUCTOR}),
    Action.MANAGE_DEADLINES: frozenset({Role.INSTRUCTOR}),
    Action.VIEW_EXTENSIONS: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.REMOVE_SUBMISSIONS: frozenset({Role.INSTRUCTOR}),
    Action.EXPORT_GRADES: frozenset({Role.INSTRUCTOR}),
    # A student asks (and withdraws) on their own returned submissions only; see
    # courses/regrades.py for the rules beyond the role.
    Action.REQUEST_REGRADE: frozenset({Role.STUDENT}),
    Action.VIEW_REGRADES: frozenset({Role.INSTRUCTOR, Role.GRADER}),
    Action.ANSWER_REGRADE: frozenset({Role.INSTRUCTOR, Role.GRADER}),
}


def is_site_admin(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    return bool(user is not None and user.is_active and getattr(user, "is_staff", False))


def role_in(user: AbstractBaseUser | AnonymousUser | None, course: Course) -> str | None:
    """The user's role in the course; site admins act as instructors where not members."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    checked = course.__dict__.get(_CHECKED_ROLES)
    if checked is not None and user.pk in checked:
        return checked.pop(user.pk)
    role = (
        Membership.objects.filter(user=user, course=course)
        .order_by()
        .values_list("role", flat=True)
        .first()
    )
    return _with_site_admin(user, role)


def _with_site_admin(user: AbstractBaseUser | AnonymousUser, role: str | None) -> str | None:
    if role is None and is_site_admin(user):
        return Role.INSTRUCTOR
    return role


def _remember_role(course: Course, user: AbstractBaseUser | AnonymousUser, role: str) -> None:
    """Hand the role just checked to the next ``role_in`` of this course and user."""
    course.__dict__.setdefault(_CHECKED_ROLES, {})[user.pk] = role


def may(role: str | None, action: Action) -> bool:
    return role is not None and role in ALLOWED[action]


def get_course_for(
    user: AbstractBaseUser | AnonymousUser | None,
    code: str,
    action: Action = Action.VIEW_COURSE,
) -> tuple[Course, str]:
    """The course and the user's role in it; NotFound unless a member, PermissionDenied
    for a member whose role does not allow the action."""
    course = Course.objects.filter(code=code).first()
    role = role_in(user, course) if course is not None else None
    if course is None or role is None:
        raise NotFound(f"There is no course {code!r} that you are a member of.")
    require(role, action, course)
    _remember_role(course, user, role)
    return course, role


def require(role: str | None, action: Action, course: Course) -> None:
    if not may(role, action):
        raise PermissionDenied(f"As {role or 'a non-member'} you may not {action} {course.code}.")


def get_assignment_for(
    user: AbstractBaseUser | AnonymousUser | None,
    course_code: str,
    assignment_code: str,
    action: Action = Action.VIEW_COURSE,
) -> tuple[Assignment, str]:
    """The assignment and the user's role; students see released assignments only."""
    # The hot path: the assignment, its course, its release and the caller's role in one
    # query (the assignment and its release together: a re-release committing between two
    # reads would otherwise pair this row with a release that is no longer its own).
    # Anything else (no such assignment, not a member) goes the long way below, which
    # gives the same answers in the same order as always.
    assignment = _assignment_with_role(user, course_code, assignment_code)
    role = None
    if assignment is not None:
        course = assignment.course
        role = _with_site_admin(user, assignment.checked_role)
    if role is None:
        course, role = get_course_for(user, course_code, action)
        assignment = (
            Assignment.objects.select_related("release")
            .filter(course=course, code=assignment_code)
            .first()
        )
        if assignment is not None:
            # The course read above, kept: services read ``assignment.course`` again, and a
            # course deleted meanwhile must be their NotFound, not a lazy load's DoesNotExist.
            assignment.course = course
    else:
        require(role, action, course)
        _remember_role(course, user, role)
    visible = assignment is not None and (
        assignment.is_released
        or may(role, Action.VIEW_UNRELEASED)
        # A student keeps seeing an unreleased assignment they submitted to, for feedback.
        or assignment.submissions.filter(student=user).exists()
    )
    if not visible:
        raise NotFound(f"There is no assignment {assignment_code!r} in course {course.code!r}.")
    return assignment, role


def _assignment_with_role_query(
    user_id: int, course_code: str, assignment_code: str
) -> QuerySet[Assignment]:
    # order_by(): the model's ordering would join the course and user tables for nothing.
    own_role = (
        Membership.objects.filter(course=OuterRef("course_id"), user_id=user_id)
        .order_by()
        .values("role")
    )
    return (
        Assignment.objects.select_related("course", "release")
        .filter(course__code=course_code, code=assignment_code)
        .annotate(checked_role=Subquery(own_role[:1]))
        .order_by()[:1]  # at most one row; sorting it by the model's ordering costs for nothing
    )


# Every request about an assignment starts here: compiled once (see courses/prepared.py).
_ASSIGNMENT_WITH_ROLE = Prepared(_assignment_with_role_query, int, str, str)


def _assignment_with_role(
    user: AbstractBaseUser | AnonymousUser | None, course_code: str, assignment_code: str
) -> Assignment | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    found = _ASSIGNMENT_WITH_ROLE(user.pk, course_code, assignment_code)
    return found[0] if found else None


def get_submission_for(
    user: AbstractBaseUser | AnonymousUser | None,
    submission_id: int,
    action: Action = Action.VIEW_COURSE,
) -> tuple[Submission, str]:
    """A submission and the user's role: its own student sees it, instructors and graders
    of the course see every one; anyone else gets NotFound, as for a missing submission."""
    submission = (
        Submission.objects.select_related("assignment__course", "student", "bundle")
        .filter(pk=submission_id)
        .first()
    )
    missing = NotFound(f"There is no submission {submission_id} that you may see.")
    if submission is None:
        raise missing
    course = submission.assignment.course
    role = role_in(user, course)
    own = user is not None and submission.student_id == user.pk
    if role is None or not (own or may(role, Action.VIEW_ALL_SUBMISSIONS)):
        raise missing
    require(role, action, course)
    _remember_role(course, user, role)
    return submission, role
