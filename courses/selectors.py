"""Reads shared by every interface: what a user sees, listed the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    Feedback,
    Membership,
    Submission,
)
from .permissions import Action, is_site_admin, may
from .prefetched import cached_query, prefetched
from .prepared import Prepared

if TYPE_CHECKING:
    from .deadlines import Dates


@dataclass(frozen=True)
class CourseRow:
    """A course with the viewer's role in it; ``as_admin``: a site admin who is not a
    member (acting as an instructor)."""

    course: Course
    role: str
    as_admin: bool = False


def my_courses(user: AbstractBaseUser) -> list[CourseRow]:
    """The user's courses with their role in each, by course code; a site admin also gets
    the courses they are not a member of, ``as_admin``."""
    memberships = Membership.objects.filter(user=user).select_related("course")
    rows = [CourseRow(m.course, m.role) for m in memberships]
    if is_site_admin(user):
        member_of = {row.course.pk for row in rows}
        rows += [
            CourseRow(course, Membership.Role.INSTRUCTOR, as_admin=True)
            for course in Course.objects.exclude(pk__in=member_of)
        ]
    return sorted(rows, key=lambda row: row.course.code)


def members_of(course: Course) -> QuerySet[Membership]:
    """A course's roster, by role then user name."""
    return (
        Membership.objects.filter(course=course)
        .select_related("user")
        .order_by("role", "user__username")
    )


def membership_of(course: Course, username: str) -> Membership | None:
    return Membership.objects.filter(course=course, user__username=username).first()


def assignments_for(course: Course, role: str | None) -> QuerySet[Assignment]:
    """Assignments of a course as a role sees them: students see released ones only."""
    assignments = Assignment.objects.filter(course=course).select_related("release", "course")
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
    """Submissions of an assignment: all of them, or each student's latest; each with the
    hash of its submission_secret.txt as ``secret_sha256`` (None without one)."""
    secret = BundleEntry.objects.filter(
        bundle_id=OuterRef("bundle_id"), path="submission_secret.txt"
    ).values("blob_id")[:1]
    submissions = (
        Submission.objects.filter(assignment=assignment)
        .select_related("student", "bundle", "feedback__bundle", "assignment__course")
        .annotate(secret_sha256=Subquery(secret))
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
        .select_related("assignment__course", "bundle", "feedback__bundle")
        .order_by("timestamp")
    )


def bundle_entries(bundle: Bundle) -> QuerySet[BundleEntry]:
    """The bundle's files with their blobs, by path (a query already answered)."""
    query = bundle.entries.select_related("blob").order_by("path")
    # A bundle just recorded (``services.record_bundle``) carries its rows.
    rows = prefetched(bundle, "entries")
    if rows is not None:
        return cached_query(query, sorted(rows, key=lambda entry: entry.path))
    return cached_query(query, _BUNDLE_ENTRIES(bundle.pk))


# Every fetch reads the release's files: compiled once (courses/prepared.py).
_BUNDLE_ENTRIES = Prepared(
    lambda bundle_id: BundleEntry.objects.filter(bundle_id=bundle_id)
    .select_related("blob")
    .order_by("path"),
    int,
)


@dataclass(frozen=True)
class AssignmentFigures:
    """What instructors and graders see of an assignment: how many people fetched it, how
    many students submitted, submissions in all, students late (against their own due
    date), submissions with feedback."""

    fetched: int = 0
    submitted: int = 0
    submissions: int = 0
    late: int = 0
    with_feedback: int = 0


def figures_for(assignments: Iterable[Assignment]) -> dict[int, AssignmentFigures]:
    """``AssignmentFigures`` of each assignment by id, in two queries however many."""
    ids = [assignment.pk for assignment in assignments]
    if not ids:
        return {}
    # Late against each student's own due date: their extension's, else the assignment's.
    per_assignment = (
        with_own_due_dates(Submission.objects.filter(assignment_id__in=ids))
        .annotate(own_due=Coalesce(F("extended_due_date"), F("assignment__due_date")))
        .values("assignment")
        .annotate(
            submissions=Count("pk"),
            submitted=Count("student", distinct=True),
            late=Count("student", distinct=True, filter=Q(timestamp__gt=F("own_due"))),
            with_feedback=Count("feedback", distinct=True),
        )
        .order_by()
    )
    submitted = {row.pop("assignment"): row for row in per_assignment}
    # People who fetched, from the audit trail (by name: a deleted account still counts).
    fetched = dict(
        AuditEvent.objects.filter(assignment_id__in=ids, action=AuditEvent.Action.FETCHED)
        .values("assignment")
        .annotate(n=Count("actor_name", distinct=True))
        .values_list("assignment", "n")
        .order_by()
    )
    return {
        pk: AssignmentFigures(fetched=fetched.get(pk, 0), **submitted.get(pk, {})) for pk in ids
    }


def figures_of(assignment: Assignment) -> AssignmentFigures:
    return figures_for([assignment])[assignment.pk]


@dataclass(frozen=True)
class AssignmentRow:
    """An assignment as one person sees it: instructors and graders its figures, a student
    their own dates (an extension's, if any)."""

    assignment: Assignment
    figures: AssignmentFigures | None = None
    own_dates: Dates | None = None


def assignment_rows(
    assignments: Iterable[Assignment], *, role: str | None, user: AbstractBaseUser
) -> list[AssignmentRow]:
    """Assignments of one course as ``user`` (with ``role``) sees them; a few queries
    however many."""
    from .deadlines import dates_for_many

    assignments = list(assignments)
    if may(role, Action.VIEW_ALL_SUBMISSIONS):
        figures = figures_for(assignments)
        return [AssignmentRow(a, figures=figures[a.pk]) for a in assignments]
    dates = dates_for_many(assignments=assignments, student=user)
    return [AssignmentRow(a, own_dates=dates[a.pk]) for a in assignments]


@dataclass(frozen=True)
class MyAssignmentRow:
    """A student's own submissions to one assignment, newest first, and their own dates."""

    assignment: Assignment
    submissions: list[Submission]
    own_dates: Dates


def my_submissions_in(
    course: Course, student: AbstractBaseUser, shown: Iterable[Assignment]
) -> list[MyAssignmentRow]:
    """Per assignment of ``shown`` (and of those no longer released that the student
    submitted to, for their feedback), the student's submissions and own dates; by
    assignment code. Three queries however many."""
    mine = with_own_due_dates(
        Submission.objects.filter(assignment__course=course, student=student)
        .select_related("assignment__course", "feedback", "bundle")
        .order_by("assignment__code", "-timestamp")
    )
    by_assignment: dict[int, list[Submission]] = {}
    for submission in mine:
        by_assignment.setdefault(submission.assignment_id, []).append(submission)
    assignments = {a.pk: a for a in shown}
    for pk, submissions in by_assignment.items():
        assignments.setdefault(pk, submissions[0].assignment)
    from .deadlines import dates_for_many

    dates = dates_for_many(assignments=assignments.values(), student=student)
    return [
        MyAssignmentRow(a, by_assignment.get(a.pk, []), dates[a.pk])
        for a in sorted(assignments.values(), key=lambda a: a.code)
    ]


@dataclass(frozen=True)
class SubmissionFiles:
    """A submission with its files and, when released, its feedback's files (by path)."""

    submission: Submission
    files: list[BundleEntry]
    feedback_files: list[BundleEntry]


def with_files(submissions: Iterable[Submission]) -> list[SubmissionFiles]:
    """Each submission with its files and its feedback's, in one query however many (the
    bundles as the submissions were read: a feedback replaced since keeps its old files)."""
    submissions = list(submissions)
    feedback = {s.pk: _feedback_or_none(s) for s in submissions}
    bundle_ids = {s.bundle_id for s in submissions}
    bundle_ids |= {f.bundle_id for f in feedback.values() if f is not None}
    entries: dict[int, list[BundleEntry]] = {}
    for entry in (
        BundleEntry.objects.filter(bundle_id__in=bundle_ids).select_related("blob").order_by("path")
    ):
        entries.setdefault(entry.bundle_id, []).append(entry)
    return [
        SubmissionFiles(
            submission=s,
            files=entries.get(s.bundle_id, []),
            feedback_files=entries.get(feedback[s.pk].bundle_id, []) if feedback[s.pk] else [],
        )
        for s in submissions
    ]


def _feedback_or_none(submission: Submission) -> Feedback | None:
    try:
        return submission.feedback
    except Feedback.DoesNotExist:
        return None


def submission_count(assignment: Assignment, student: AbstractBaseUser) -> int:
    return Submission.objects.filter(assignment=assignment, student=student).count()


def feedback_of(submission: Submission) -> Feedback | None:
    return Feedback.objects.filter(submission=submission).select_related("bundle").first()


def bundle_entry(bundle: Bundle, path: str) -> BundleEntry | None:
    return bundle.entries.select_related("blob").filter(path=path).first()


def roster_counts(course: Course) -> dict[str, int]:
    """How many members the course has in each role."""
    counts = dict(
        Membership.objects.filter(course=course)
        .values_list("role")
        .annotate(n=Count("pk"))
        .values_list("role", "n")
    )
    return {role: counts.get(role, 0) for role in Membership.Role.values}


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
