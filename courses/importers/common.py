"""What every importer shares: the shape of what it read, and how that is recorded.

A source is read into ``CourseSource`` objects (releases, submissions, feedback, with their
files as things that can be opened). ``import_course`` then, per course:

1. stores the files of every item not yet imported in the blob store (deduplicated by
   SHA-256), skipping an item whose files cannot be read and saying why;
2. records everything in one transaction through ``courses.services``, so a course is
   imported whole or not at all. Bytes stored by a run that dies before its transaction
   commits are orphans that ``gc_blobs`` removes.

A second run finds the same submissions (same student and timestamp) and the same files
(same paths and hashes) and adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, NamedTuple

from django.db import transaction

from courses import blobstore, services
from courses.archive import ManifestEntry, normalize_path
from courses.exceptions import ExchangeError
from courses.models import Assignment, BundleEntry, Course, Feedback, Membership, Submission

Role = Membership.Role
Opener = Callable[[], IO[bytes]]


@dataclass(frozen=True)
class SourceFile:
    """One file of an item: its path in the bundle and how to open its bytes."""

    path: str
    open: Opener


@dataclass
class Item:
    """A release, a submission or a feedback as the old exchange held it.

    ``timestamp`` is the submission's (for feedback: the submission it belongs to);
    ``at`` is when a release or feedback was made, as well as the source knows.
    """

    kind: str
    assignment: str
    files: list[SourceFile]
    where: str
    student: str = ""
    timestamp: dt.datetime | None = None
    at: dt.datetime | None = None


class Person(NamedTuple):
    """How the old exchange named a member of one course."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclass
class CourseSource:
    code: str
    students: dict[str, Person] = field(default_factory=dict)  # username -> names and email
    instructors: dict[str, Person] = field(default_factory=dict)
    releases: list[Item] = field(default_factory=list)
    submissions: list[Item] = field(default_factory=list)
    feedback: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def skip(self, where: str, why: str) -> None:
        self.skipped.append((where, why))


@dataclass
class CourseSummary:
    code: str
    dry_run: bool = False
    course_created: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    bytes_added: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def added_anything(self) -> bool:
        return self.course_created or any(
            n for key, n in self.counts.items() if not key.endswith("unchanged")
        )


def stage_item(item: Item, *, store: bool) -> services.StagedBundle:
    """The item's files hashed (and, unless a dry run, put in the blob store).

    Raises ExchangeError or OSError with what went wrong; bytes already stored for the
    item's other files stay as orphans for ``gc_blobs``.
    """
    entries = []
    seen: set[str] = set()
    for source in item.files:
        path = normalize_path(source.path)
        if path in seen:
            raise ExchangeError(f"File {path!r} appears twice.")
        seen.add(path)
        with source.open() as stream:
            if store:
                staged = blobstore.stage(stream)
                sha, size = staged.sha256, staged.size
                blobstore.put(staged)
            else:
                sha, size = blobstore.hash_copy(stream)
        entries.append(ManifestEntry(path=path, size=size, sha256=sha))
    # Sizes measured on the bytes, as for an upload; stored bytes also correct a row whose
    # recorded size lies.
    sizes = {entry.sha256: entry.size for entry in entries}
    return services.StagedBundle(
        entries=entries, sizes=sizes, received=frozenset(sizes) if store else frozenset()
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ExchangeError):
        return exc.detail
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return f"cannot read{name}: {exc.strerror or exc}"
    return str(exc)


def _existing_submissions(code: str) -> set[tuple[str, str, dt.datetime]]:
    return {
        (a, s, t)
        for a, s, t in Submission.objects.filter(assignment__course__code=code).values_list(
            "assignment__code", "student__username", "timestamp"
        )
    }


def _files_of(bundle_id: int | None) -> set[tuple[str, str]]:
    if bundle_id is None:
        return set()
    return set(BundleEntry.objects.filter(bundle_id=bundle_id).values_list("path", "blob_id"))


def _entries(staged: services.StagedBundle) -> set[tuple[str, str]]:
    return {(entry.path, entry.sha256) for entry in staged.entries}


def _stage_all(
    items: Iterable[Item], summary: CourseSummary, *, store: bool
) -> list[tuple[Item, services.StagedBundle]]:
    staged = []
    for item in items:
        try:
            staged.append((item, stage_item(item, store=store)))
        except (ExchangeError, OSError, ValueError) as exc:
            summary.skipped.append((item.where, _reason(exc)))
    return staged


def import_course(
    source: CourseSource, *, instructors: Iterable[str] = (), dry_run: bool = False
) -> CourseSummary:
    """Import one course read from another exchange; see the module docstring."""
    summary = CourseSummary(code=source.code, dry_run=dry_run, skipped=list(source.skipped))
    store = not dry_run
    existing = _existing_submissions(source.code)
    new_submissions = []
    for item in source.submissions:
        key = (item.assignment, item.student, item.timestamp)
        if key in existing:
            summary.count("submissions unchanged")
        else:
            new_submissions.append(item)
    releases = _stage_all(source.releases, summary, store=store)
    submissions = _stage_all(new_submissions, summary, store=store)
    feedback = _stage_all(source.feedback, summary, store=store)
    # Instructors first: an instructor who also submitted stays an instructor.
    roster = [(name, Person(), Role.INSTRUCTOR) for name in instructors]
    roster += [(name, who, Role.INSTRUCTOR) for name, who in sorted(source.instructors.items())]
    roster += [(name, who, Role.STUDENT) for name, who in sorted(source.students.items())]
    if dry_run:
        _preview(source.code, summary, roster, releases, submissions, feedback)
        return summary
    with transaction.atomic():
        course, summary.course_created = services.import_course_record(code=source.code)
        for name, who, role in roster:
            try:
                if services.import_member(course=course, username=name, role=role, **who._asdict()):
                    summary.count(f"{role}s added")
            except ExchangeError as exc:
                summary.skipped.append((f"{role} {name!r}", exc.detail))
        for item, staged in releases:
            _, outcome = services.import_release(
                course=course, code=item.assignment, staged=staged, released_at=item.at
            )
            summary.count(f"releases {outcome}")
            if outcome != "unchanged":
                summary.bytes_added += sum(e.size for e in staged.entries)
        for item, staged in submissions:
            student = Membership.objects.filter(
                course=course, user__username=item.student
            ).select_related("user")
            member = student.first()
            if member is None:
                summary.skipped.append((item.where, f"{item.student!r} is not on the roster"))
                continue
            _, added = services.import_submission(
                course=course,
                assignment_code=item.assignment,
                student=member.user,
                timestamp=item.timestamp,
                staged=staged,
            )
            summary.count("submissions added" if added else "submissions unchanged")
            if added:
                summary.bytes_added += sum(e.size for e in staged.entries)
        for item, staged in feedback:
            submission = Submission.objects.filter(
                assignment__course=course,
                assignment__code=item.assignment,
                student__username=item.student,
                timestamp=item.timestamp,
            ).first()
            if submission is None:
                summary.skipped.append((item.where, "its submission was not imported"))
                continue
            _, outcome = services.import_feedback(
                submission=submission, staged=staged, released_at=item.at
            )
            summary.count(f"feedback {outcome}")
            if outcome != "unchanged":
                summary.bytes_added += sum(e.size for e in staged.entries)
    return summary


def _preview(
    code: str,
    summary: CourseSummary,
    roster: list[tuple[str, Person, str]],
    releases: list[tuple[Item, services.StagedBundle]],
    submissions: list[tuple[Item, services.StagedBundle]],
    feedback: list[tuple[Item, services.StagedBundle]],
) -> None:
    """What a run would do, read from the database without writing to it."""
    summary.course_created = not Course.objects.filter(code=code).exists()
    members = set(
        Membership.objects.filter(course__code=code).values_list("user__username", flat=True)
    )
    for name, _, role in roster:
        if name not in members:
            members.add(name)
            summary.count(f"{role}s added")
    for item, staged in releases:
        assignment = Assignment.objects.filter(course__code=code, code=item.assignment).first()
        have = _files_of(assignment.release_id if assignment else None)
        outcome = "unchanged" if have == _entries(staged) else "replaced" if have else "added"
        summary.count(f"releases {outcome}")
        if outcome != "unchanged":
            summary.bytes_added += sum(e.size for e in staged.entries)
    new_keys = _existing_submissions(code)
    for item, staged in submissions:
        new_keys.add((item.assignment, item.student, item.timestamp))
        summary.count("submissions added")
        summary.bytes_added += sum(e.size for e in staged.entries)
    for item, staged in feedback:
        key = (item.assignment, item.student, item.timestamp)
        old = Feedback.objects.filter(
            submission__assignment__course__code=code,
            submission__assignment__code=item.assignment,
            submission__student__username=item.student,
            submission__timestamp=item.timestamp,
        ).first()
        if old is None and key not in new_keys:
            summary.skipped.append((item.where, "its submission was not imported"))
            continue
        have = _files_of(old.bundle_id if old else None)
        outcome = "unchanged" if have == _entries(staged) else "replaced" if have else "added"
        summary.count(f"feedback {outcome}")
        if outcome != "unchanged":
            summary.bytes_added += sum(e.size for e in staged.entries)
