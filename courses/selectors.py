"""Reads shared by every interface: what a user sees, listed the same way everywhere."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from .models import Assignment, Bundle, BundleEntry, Course, Membership, Submission
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


def list_submissions(
    *,
    assignment: Assignment,
    latest_only: bool = False,
    student: str | None = None,
) -> QuerySet[Submission]:
    """Submissions of an assignment: all of them, or each student's latest."""
    submissions = Submission.objects.filter(assignment=assignment).select_related(
        "student", "bundle", "feedback"
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
    return submissions.order_by("student__username", "timestamp")


def submissions_of(student: AbstractBaseUser, assignment: Assignment) -> QuerySet[Submission]:
    return (
        Submission.objects.filter(assignment=assignment, student=student)
        .select_related("bundle", "feedback")
        .order_by("timestamp")
    )


def bundle_entries(bundle: Bundle) -> QuerySet[BundleEntry]:
    return bundle.entries.select_related("blob").order_by("path")


def assignment_counts(assignment: Assignment) -> dict[str, int]:
    """Submission figures for instructor pages and the admin."""
    figures = Submission.objects.filter(assignment=assignment).aggregate(
        submissions=Count("pk"),
        students=Count("student", distinct=True),
        late=Count(
            "student",
            distinct=True,
            filter=Q(timestamp__gt=assignment.due_date) if assignment.due_date else Q(pk=None),
        ),
        with_feedback=Count("feedback", distinct=True),
    )
    return figures
