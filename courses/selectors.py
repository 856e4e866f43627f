"""Reads shared by every interface: what a user sees, listed the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .models import (
    Assignment,
    AuditEvent,
    Bundle,
    BundleEntry,
    Course,
    Extension,
    Membership,
    Submission,
)
from .permissions import Action, is_site_admin, may


def courses_for(user: AbstractBaseUser) -> QuerySet[Course]:
    """The courses a user is a member of (every course for a site admin)."""
    if is_site_admin(user):
        return Course.objects.all()
    return Course.objects.filter(memberships__user=user).distinct()


def memberships_for(user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("course")


def assignments_for(course: Course, role: str | None) -> QuerySet[Assignment]:
    """Assignments of a course as a role sees them: students see released ones only."""
    assignments = Assignment.objects.filter(course=course).select_related("release")
    if not may(role, Action.VIEW_UNRELEASED):
        assignments = assignments.filter(release__isnull=False)
    return assignments.order_by("code")


def with_own_due_dates(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """Each submission with its student's extended due date (``Submission.due_date`` reads
    it without a query per row)."""
    extended = Extension.objects.filter(
        assignment=OuterRef("assignment"), student=OuterRef("student")
    ).values("due_date")[:1]
    return submissions.annotate(extended_due_date=Subquery(extended))


def list_submissions(
    *,
    assignment: Assignment,
    latest_only: bool = False,
    student: str | None = None,
) -> QuerySet[Submission]:
    """Submissions of an assignment: all of them, or each student's latest."""
    submissions = Submission.objects.filter(assignment=assignment).select_related(
        "student", "bundle", "feedback__bundle", "assignment__course"
    )
    if student is not None:
        submissions = submissions.filter(student__username=student)
    if latest_only:
        newest = (
            Submission.objects.filter(assignment=assignment, student=OuterRef("student"))
            .order_by("-timestamp")
            .values("pk")[:1]
        )
        submissions = submissions.filter(pk=Subquery(newest))
    return with_own_due_dates(submissions).order_by("student__username", "timestamp")


def submissions_of(student: AbstractBaseUser, assignment: Assignment) -> QuerySet[Submission]:
    return with_own_due_dates(
        Submission.objects.filter(assignment=assignment, student=student)
        .select_related("bundle", "feedback__bundle")
        .order_by("timestamp")
    )


def bundle_entries(bundle: Bundle) -> QuerySet[BundleEntry]:
    return bundle.entries.select_related("blob").order_by("path")


def assignment_counts(assignment: Assignment) -> dict[str, int]:
    """Submission figures for instructor pages and the admin."""
    submissions = with_own_due_dates(Submission.objects.filter(assignment=assignment))
    # Late against each student's own due date: their extension's, else the assignment's.
    figures = submissions.annotate(
        own_due=Coalesce(F("extended_due_date"), F("assignment__due_date"))
    ).aggregate(
        submissions=Count("pk"),
        students=Count("student", distinct=True),
        late=Count("student", distinct=True, filter=Q(timestamp__gt=F("own_due"))),
        with_feedback=Count("feedback", distinct=True),
    )
    return figures


def roster_counts(course: Course) -> dict[str, int]:
    """How many members the course has in each role."""
    counts = dict(
        Membership.objects.filter(course=course)
        .values_list("role")
        .annotate(n=Count("pk"))
        .values_list("role", "n")
    )
    return {role: counts.get(role, 0) for role in Membership.Role.values}


def fetched_count(assignment: Assignment) -> int:
    """How many people fetched the assignment (from the audit trail)."""
    return (
        AuditEvent.objects.filter(assignment=assignment, action=AuditEvent.Action.FETCHED)
        .values("actor")
        .distinct()
        .count()
    )


@dataclass(frozen=True)
class StudentRow:
    """One student's standing on one assignment."""

    username: str
    full_name: str
    latest: Submission | None
    submission_count: int
    any_feedback: bool

    @property
    def is_late(self) -> bool:
        return self.latest is not None and self.latest.is_late

    @property
    def latest_has_feedback(self) -> bool:
        return self.latest is not None and hasattr(self.latest, "feedback")


def student_rows(assignment: Assignment) -> list[StudentRow]:
    """A row per student of the course, and per former student who submitted: their latest
    submission, how many they made, whether any has feedback. Ordered by user name."""
    latest = {s.student_id: s for s in list_submissions(assignment=assignment, latest_only=True)}
    figures = {
        row["student"]: row
        for row in Submission.objects.filter(assignment=assignment)
        .values("student")
        .annotate(n=Count("pk"), feedback=Count("feedback"))
    }
    memberships = Membership.objects.filter(
        course=assignment.course, role=Membership.Role.STUDENT
    ).select_related("user")
    # The course's own name for each student (a former student: their account's name).
    students = {m.user_id: (m.user, m.full_name) for m in memberships}
    for submission in latest.values():
        student = submission.student
        students.setdefault(submission.student_id, (student, student.get_full_name()))
    rows = [
        StudentRow(
            username=user.get_username(),
            full_name=full_name,
            latest=latest.get(pk),
            submission_count=figures.get(pk, {}).get("n", 0),
            any_feedback=bool(figures.get(pk, {}).get("feedback")),
        )
        for pk, (user, full_name) in students.items()
    ]
    return sorted(rows, key=lambda row: row.username)


def audit_events(course: Course) -> QuerySet[AuditEvent]:
    """The course's audit trail, newest first."""
    return AuditEvent.objects.filter(course=course).order_by("-at", "-id")
