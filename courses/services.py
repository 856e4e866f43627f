"""The exchange's operations: every write lives here once, and every interface (API views,
admin actions, web pages, manage.py commands) calls these functions.

Each operation takes keyword arguments, checks the caller's role through
``courses.permissions``, keeps slow file I/O outside its transaction, records its rows in
one transaction (so a failure records nothing) and writes an AuditEvent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from . import blobstore, deadlines
from .archive import Limits, ManifestEntry, iter_archive, parse_manifest
from .exceptions import BadArchive, BadRequest, Conflict, NotFound, PermissionDenied
from .limits import audited_upload, check_submission_quota, check_submission_rate
from .models import (
    Assignment,
    AuditEvent,
    Blob,
    Bundle,
    BundleEntry,
    Course,
    Feedback,
    Membership,
    Submission,
    code_validator,
)
from .permissions import Action, require, role_in
from .storage_checks import correct_blob_sizes, gc_guard

User = get_user_model()
logger = logging.getLogger(__name__)
Role = Membership.Role
USERNAME_MAX = 150


@dataclass
class Upload:
    """What an uploader sends: a manifest of every file, and an archive (tar.gz) holding the
    files whose bytes the server does not already have within what the uploader may read."""

    manifest: str | bytes | list[Any]
    archive: IO[bytes] | None = None


# --- audit --------------------------------------------------------------------------------


def record_event(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    course: Course | None = None,
    assignment: Assignment | None = None,
    student: AbstractBaseUser | None = None,
    submission: Submission | None = None,
    **detail: Any,
) -> AuditEvent:
    if assignment is not None and course is None:
        course = assignment.course
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "system",
        course=course,
        course_code=course.code if course else "",
        assignment=assignment,
        assignment_code=assignment.code if assignment else "",
        student_name=student.get_username() if student is not None else "",
        submission=submission,
        detail=detail,
    )


def _require(actor: AbstractBaseUser | None, course: Course, action: Action) -> str | None:
    """The actor's role, checked; ``actor=None`` is the operator at the command line."""
    if actor is None:
        return Role.INSTRUCTOR
    role = role_in(actor, course)
    if role is None:
        raise NotFound(f"There is no course {course.code!r} that you are a member of.")
    require(role, action, course)
    return role


def require_course_role(
    actor: AbstractBaseUser | None, course: Course, action: Action
) -> str | None:
    """The role check of every operation, for service modules outside this file."""
    return _require(actor, course, action)


# First key of the two-number PostgreSQL advisory locks that guard a course (the second is
# its id); two-number keys never collide with gc's one-number key.
COURSE_LOCK_SPACE = 7307


def _lock_course(course: Course, *, exclusive: bool = False) -> bool:
    """Inside a transaction: keep the course from being deleted until the transaction ends;
    False if it was deleted meanwhile. ``exclusive`` (``delete_course``) waits for every
    write in flight in the course and keeps new ones out.

    PostgreSQL: a transaction-scoped advisory lock per course, shared by writers (row locks
    on the course row would queue writers behind each other's foreign-key checks). SQLite
    runs write transactions one at a time.
    """
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [COURSE_LOCK_SPACE, course.pk])
    return Course.objects.filter(pk=course.pk).exists()


def _require_course(course: Course) -> None:
    """``_lock_course`` for an upload or roster change: NotFound once the course is gone."""
    if not _lock_course(course):
        raise NotFound(f"Course {course.code!r} was deleted while your request was being handled.")


def _check_code(value: str, what: str) -> str:
    try:
        code_validator(value)
    except ValidationError as exc:
        raise BadRequest(
            f"{what} {value!r} is not valid: use only letters, digits, '_', '-' and '.'."
        ) from exc
    if value in {".", ".."} or len(value) > 100:
        raise BadRequest(f"{what} {value!r} is not valid.")
    return value


# --- courses and rosters ------------------------------------------------------------------


@transaction.atomic
def create_course(
    *,
    code: str,
    title: str = "",
    actor: AbstractBaseUser | None = None,
    instructors: Iterable[str] = (),
) -> Course:
    _check_code(code, "Course id")
    if Course.objects.filter(code=code).exists():
        raise Conflict(f"Course {code!r} already exists.")
    course = Course.objects.create(code=code, title=title)
    record_event(action=AuditEvent.Action.COURSE_CREATED, actor=actor, course=course)
    for username in instructors:
        add_member(course=course, username=username, role=Role.INSTRUCTOR, actor=actor)
    return course


def get_or_create_user(username: str, **fields: str) -> AbstractBaseUser:
    """The user with this name, created (with ``fields``) if new.

    An existing user is returned unchanged: the site-wide account belongs to its owner and
    to the site admins (the admin's user pages), never to a course. What a course calls a
    person lives on the membership (see ``add_member``).
    """
    username = username.strip()
    if not username or len(username) > USERNAME_MAX:
        raise BadRequest(f"User name {username!r} is not valid.")
    user, _ = User.objects.get_or_create(
        username=username, defaults={key: value for key, value in fields.items() if value}
    )
    return user


PROFILE_FIELDS = ("first_name", "last_name", "email")


@transaction.atomic
def add_member(
    *,
    course: Course,
    username: str,
    role: str,
    actor: AbstractBaseUser | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> Membership:
    """Add a user to the course, or change their role or how the course names them.

    Names and email are the course's own (kept on the membership; an empty value leaves the
    current one): they never change the site-wide user, which another course and the admin
    site show. A user created here starts with them.
    """
    _require(actor, course, Action.MANAGE_ROSTER)
    _require_course(course)
    if role not in Role.values:
        raise BadRequest(f"Role {role!r} is not one of {', '.join(Role.values)}.")
    given = {"first_name": first_name, "last_name": last_name, "email": email}
    user = get_or_create_user(username, **given)
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, course=course, defaults={"role": role, **given}
    )
    if created:
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="added",
            role=role,
        )
        return membership
    if membership.role != role:
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="role",
            old_role=old,
            role=role,
        )
    changed = [
        key for key in PROFILE_FIELDS if given[key] and getattr(membership, key) != given[key]
    ]
    if changed:
        for key in changed:
            setattr(membership, key, given[key])
        membership.save(update_fields=[*changed, "updated_at"])
        record_event(
            action=AuditEvent.Action.ROSTER_CHANGED,
            actor=actor,
            course=course,
            student=user,
            change="details",
            fields=changed,
        )
    return membership


@transaction.atomic
def remove_member(*, course: Course, username: str, actor: AbstractBaseUser | None = None) -> None:
    """Remove a user's membership; their submissions stay."""
    _require(actor, course, Action.MANAGE_ROSTER)
    _require_course(course)
    membership = (
        Membership.objects.select_related("user")
        .filter(course=course, user__username=username)
        .first()
    )
    if membership is None:
        raise NotFound(f"{username!r} is not a member of course {course.code!r}.")
    if actor is not None and membership.user_id == actor.pk and membership.role == Role.INSTRUCTOR:
        others = Membership.objects.filter(course=course, role=Role.INSTRUCTOR).exclude(
            pk=membership.pk
        )
        if not others.exists():
            raise Conflict(
                f"You are the last instructor of {course.code!r}; add another one first."
            )
    membership.delete()
    record_event(
        action=AuditEvent.Action.ROSTER_CHANGED,
        actor=actor,
        course=course,
        student=membership.user,
        change="removed",
        role=membership.role,
    )


# --- bundles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagedBundle:
    entries: list[ManifestEntry]
    # The size of each file's bytes: measured on the bytes received, or the stored blob's
    # own for a file referenced without bytes. Never a size the manifest merely claims.
    sizes: dict[str, int]
    # Hashes whose bytes this upload sent (and so measured).
    received: frozenset[str] = frozenset()

    @property
    def total_size(self) -> int:
        return sum(self.sizes[entry.sha256] for entry in self.entries)


def stage_bundle(
    *,
    upload: Upload,
    readable_shas: Iterable[str] | None = None,
    check_manifest: Callable[[list[ManifestEntry]], None] | None = None,
) -> StagedBundle:
    """Check an upload and put its bytes in storage; no database rows are written.

    ``readable_shas`` are the hashes the uploader may reference without sending bytes; a
    file listed in the manifest is accepted without bytes only if its hash is among them and
    the manifest gives the stored file's own size. ``check_manifest`` may refuse the
    manifest before a byte is stored (a quota).
    """
    limits = Limits.from_settings()
    entries = parse_manifest(upload.manifest, limits)
    if check_manifest is not None:
        check_manifest(entries)
    by_path = {entry.path: entry for entry in entries}
    wanted = {entry.sha256 for entry in entries}
    known = _known_shas(wanted, readable_shas)
    sizes: dict[str, int] = {}
    if upload.archive is not None:
        for path, size, stream in iter_archive(upload.archive, limits):
            entry = by_path.get(path)
            if entry is None:
                raise BadArchive(f"Archive member {path!r} is not listed in the manifest.")
            if size != entry.size:
                raise BadArchive(
                    f"File {path!r} has {size} bytes in the archive but {entry.size} in the "
                    "manifest."
                )
            sizes[entry.sha256] = blobstore.store_stream(
                stream, path=path, size=entry.size, sha256=entry.sha256
            )
    received = frozenset(sizes)
    for entry in entries:
        if entry.sha256 in received:
            continue
        if entry.sha256 not in known:
            raise BadArchive(
                f"File {entry.path!r} is listed in the manifest but its bytes are neither in "
                "the archive nor already stored where you may read them.",
                code="missing_file",
            )
        if entry.size != known[entry.sha256]:
            raise BadArchive(
                f"Manifest entry {entry.path!r} names a stored file of "
                f"{known[entry.sha256]} bytes with SHA-256 {entry.sha256}, but gives its size "
                f"as {entry.size} bytes; list it with its own size.",
                code="bad_manifest",
            )
        sizes[entry.sha256] = known[entry.sha256]
    return StagedBundle(entries=entries, sizes=sizes, received=received)


def _known_shas(wanted: set[str], readable_shas: Iterable[str] | None) -> dict[str, int]:
    """The stored size of each wanted hash the uploader may reference without bytes."""
    if not readable_shas:
        return {}
    allowed = wanted & set(readable_shas)
    return dict(Blob.objects.filter(sha256__in=allowed).values_list("sha256", "size"))


def record_bundle(*, kind: str, staged: StagedBundle) -> Bundle:
    """The bundle's rows; call inside the transaction that records what owns it."""
    sizes = staged.sizes
    # Held until the transaction ends: gc_blobs cannot delete what this bundle references.
    with gc_guard():
        # Bytes a collection may have removed since they were staged or found: those with no
        # row, and those whose row no bundle references (a collection's next candidates).
        # Their bytes must be in storage now; under the lock they then stay.
        referenced = set(
            BundleEntry.objects.filter(blob_id__in=sizes).values_list("blob_id", flat=True)
        )
        for sha in sorted(sizes.keys() - referenced):
            if not blobstore.exists(sha):
                raise Conflict(
                    "Some files of this upload were removed from storage while it was being "
                    "recorded; send it again.",
                    code="retry",
                )
    Blob.objects.bulk_create(
        [Blob(sha256=sha, size=size) for sha, size in sizes.items()], ignore_conflicts=True
    )
    _correct_sizes(staged)
    bundle = Bundle.objects.create(
        kind=kind, file_count=len(staged.entries), total_size=staged.total_size
    )
    BundleEntry.objects.bulk_create(
        [
            BundleEntry(bundle=bundle, path=entry.path, blob_id=entry.sha256)
            for entry in staged.entries
        ]
    )
    return bundle


def _correct_sizes(staged: StagedBundle) -> None:
    """Bytes just received and measured are the truth: a row that says otherwise (written
    before manifests were checked) takes their size, and so do the bundles that list it."""
    measured = staged.received
    if not measured:
        return
    for sha in correct_blob_sizes({sha: staged.sizes[sha] for sha in measured}):
        logger.warning(
            "blob %s was recorded with a wrong size; corrected to %d", sha, staged.sizes[sha]
        )


def _shas_of(bundles: Iterable[int | None]) -> set[str]:
    ids = [pk for pk in bundles if pk is not None]
    return set(BundleEntry.objects.filter(bundle_id__in=ids).values_list("blob_id", flat=True))


# --- release ------------------------------------------------------------------------------


@audited_upload("release")
def release_assignment(
    *,
    actor: AbstractBaseUser | None,
    course: Course,
    code: str,
    upload: Upload,
    due_date: dt.datetime | None = None,
    force: bool = False,
) -> Assignment:
    """Release (or re-release) an assignment's files to the course's students.

    A re-release over an assignment that students already fetched or submitted is refused
    unless ``force``, and the refusal says how many fetched and submitted.
    """
    _require(actor, course, Action.RELEASE)
    _check_code(code, "Assignment id")
    existing = Assignment.objects.filter(course=course, code=code).first()
    if existing is not None and existing.is_released and not force:
        _refuse_if_in_use(existing, "release it again")
    readable = _shas_of(
        Assignment.objects.filter(course=course).values_list("release_id", flat=True)
    )
    staged = stage_bundle(upload=upload, readable_shas=readable)
    with transaction.atomic():
        _require_course(course)
        assignment, _ = Assignment.objects.select_for_update().get_or_create(
            course=course, code=code
        )
        if assignment.is_released and not force:
            _refuse_if_in_use(assignment, "release it again")
        replaced = assignment.release_id is not None
        assignment.release = record_bundle(kind=Bundle.Kind.RELEASE, staged=staged)
        assignment.released_by = actor
        assignment.released_at = timezone.now()
        if due_date is not None:
            assignment.due_date = due_date
        # The replaced bundle stays (ownerless) until gc_blobs: a read that saw the old
        # release an instant ago still lists its files instead of failing.
        assignment.save()
        record_event(
            action=AuditEvent.Action.RELEASED,
            actor=actor,
            assignment=assignment,
            files=len(staged.entries),
            replaced=replaced,
        )
    return assignment


def usage_counts(assignment: Assignment) -> tuple[int, int]:
    """How many students fetched, and how many submitted, this assignment."""
    fetched = (
        AuditEvent.objects.filter(assignment=assignment, action=AuditEvent.Action.FETCHED)
        .values("actor")
        .distinct()
        .count()
    )
    submitted = assignment.submissions.values("student").distinct().count()
    return fetched, submitted


def _refuse_if_in_use(assignment: Assignment, what: str) -> None:
    fetched, submitted = usage_counts(assignment)
    if fetched or submitted:
        raise Conflict(
            f"Assignment {assignment.code!r} in {assignment.course.code!r} has been fetched by "
            f"{fetched} and submitted by {submitted} students; use force to {what} anyway.",
            code="in_use",
        )


@transaction.atomic
def unrelease_assignment(
    *, actor: AbstractBaseUser | None, assignment: Assignment, force: bool = False
) -> Assignment:
    """Withdraw an assignment's release; submissions and feedback stay."""
    _require(actor, assignment.course, Action.RELEASE)
    _require_course(assignment.course)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if not assignment.is_released:
        raise Conflict(f"Assignment {assignment.code!r} is not released.", code="not_released")
    if not force:
        _refuse_if_in_use(assignment, "unrelease it")
    # The withdrawn bundle stays (ownerless) until gc_blobs, as after a re-release.
    assignment.release = None
    assignment.save(update_fields=["release"])
    record_event(action=AuditEvent.Action.UNRELEASED, actor=actor, assignment=assignment)
    return assignment


@transaction.atomic
def fetch_assignment(*, user: AbstractBaseUser, assignment: Assignment) -> Bundle:
    """The release a user fetches, recorded for the audit trail and the re-release check."""
    _require(user, assignment.course, Action.FETCH)
    if not assignment.is_released:
        raise NotFound(
            f"Assignment {assignment.code!r} in course {assignment.course.code!r} is not released."
        )
    record_event(action=AuditEvent.Action.FETCHED, actor=user, assignment=assignment)
    assert assignment.release is not None
    return assignment.release


# --- submit -------------------------------------------------------------------------------


@audited_upload("submission")
def submit_assignment(
    *, student: AbstractBaseUser, assignment: Assignment, upload: Upload
) -> Submission:
    """Record a new submission; every submission is kept, with a unique server timestamp.

    Within the per-person limits (``courses/limits.py``): the submission rate, checked
    before the upload is read, and the quota, checked on the manifest and again under the
    lock."""
    course = assignment.course
    _require(student, course, Action.SUBMIT)
    if not assignment.is_released:
        raise NotFound(f"Assignment {assignment.code!r} in course {course.code!r} is not released.")
    # Refused before any byte is stored, and again at the recorded time below.
    deadlines.check_open(assignment=assignment, student=student, at=timezone.now())
    check_submission_rate(student=student)
    readable = _shas_of([assignment.release_id, *_own_submission_bundles(student, assignment)])

    def within_quota(entries: list[ManifestEntry]) -> None:
        check_submission_quota(student=student, course=course, entries=entries)

    staged = stage_bundle(upload=upload, readable_shas=readable, check_manifest=within_quota)
    with transaction.atomic():
        _require_course(course)
        # One student's submissions to one course are serialised on their membership row,
        # so concurrent submits get distinct, increasing timestamps.
        try:
            Membership.objects.select_for_update().get(user=student, course=course)
        except Membership.DoesNotExist:
            raise NotFound(
                f"You were removed from course {course.code!r} while your submission was "
                "being sent; nothing was recorded."
            ) from None
        within_quota(staged.entries)
        now = timezone.now()
        # The cutoff may have passed while the bytes arrived; the dates are read afresh.
        fresh = Assignment.objects.filter(pk=assignment.pk).first()
        if fresh is None:
            raise NotFound(
                f"Assignment {assignment.code!r} was deleted while your submission was being "
                "sent; nothing was recorded."
            )
        deadlines.check_open(assignment=fresh, student=student, at=now)
        last = Submission.objects.filter(assignment=assignment, student=student).aggregate(
            last=Max("timestamp")
        )["last"]
        if last is not None and now <= last:
            now = last + dt.timedelta(microseconds=1)
        submission = _record_submission(
            assignment=assignment, student=student, timestamp=now, staged=staged, actor=student
        )
    return submission


def _record_submission(
    *,
    assignment: Assignment,
    student: AbstractBaseUser,
    timestamp: dt.datetime,
    staged: StagedBundle,
    actor: AbstractBaseUser | None,
    **details: Any,
) -> Submission:
    """Inside the caller's transaction: the submission's bundle, its row and its audit event."""
    bundle = record_bundle(kind=Bundle.Kind.SUBMISSION, staged=staged)
    submission = Submission.objects.create(
        assignment=assignment, student=student, timestamp=timestamp, bundle=bundle
    )
    record_event(
        action=AuditEvent.Action.SUBMITTED,
        actor=actor,
        assignment=assignment,
        student=student,
        submission=submission,
        files=len(staged.entries),
        late=submission.is_late,
        **details,
    )
    return submission


def _own_submission_bundles(student: AbstractBaseUser, assignment: Assignment) -> list[int]:
    return list(
        Submission.objects.filter(assignment=assignment, student=student).values_list(
            "bundle_id", flat=True
        )
    )


# --- collect ------------------------------------------------------------------------------


@transaction.atomic
def collect_submissions(
    *,
    actor: AbstractBaseUser | None,
    assignment: Assignment,
    latest_only: bool = True,
    student: str | None = None,
) -> list[Submission]:
    """The submissions an instructor or grader collects, recorded for the audit trail."""
    from .selectors import list_submissions

    _require(actor, assignment.course, Action.COLLECT)
    submissions = list(
        list_submissions(assignment=assignment, latest_only=latest_only, student=student)
    )
    record_event(
        action=AuditEvent.Action.COLLECTED,
        actor=actor,
        assignment=assignment,
        submissions=len(submissions),
        latest_only=latest_only,
    )
    return submissions


# --- feedback -----------------------------------------------------------------------------


@audited_upload("feedback")
def release_feedback(
    *, actor: AbstractBaseUser | None, submission: Submission, upload: Upload
) -> Feedback:
    """Release feedback for one submission; releasing again replaces the files."""
    assignment = submission.assignment
    _require(actor, assignment.course, Action.RELEASE_FEEDBACK)
    readable = _shas_of(
        [
            submission.bundle_id,
            assignment.release_id,
            *Feedback.objects.filter(submission__assignment=assignment).values_list(
                "bundle_id", flat=True
            ),
        ]
    )
    staged = stage_bundle(upload=upload, readable_shas=readable)
    with transaction.atomic():
        _require_course(assignment.course)
        try:
            # get(), not first(): the model's ordering would join (and lock) other tables.
            Submission.objects.select_for_update().get(pk=submission.pk)
        except Submission.DoesNotExist:
            raise NotFound(
                "This submission was deleted while the feedback was being sent."
            ) from None
        old = Feedback.objects.filter(submission=submission).first()
        bundle = record_bundle(kind=Bundle.Kind.FEEDBACK, staged=staged)
        if old is None:
            feedback = Feedback.objects.create(
                submission=submission, bundle=bundle, released_by=actor
            )
        else:
            # The replaced bundle stays (ownerless) until gc_blobs, as a replaced release does:
            # a collect or a page that read the old feedback an instant ago still lists it.
            old.bundle = bundle
            old.released_by = actor
            old.released_at = timezone.now()
            old.save()
            feedback = old
        record_event(
            action=AuditEvent.Action.FEEDBACK_RELEASED,
            actor=actor,
            assignment=assignment,
            student=submission.student,
            submission=submission,
            files=len(staged.entries),
        )
    return feedback


@transaction.atomic
def fetch_feedback(
    *, student: AbstractBaseUser, assignment: Assignment, submission: Submission | None = None
) -> list[Feedback]:
    """The feedback on a student's own submissions (one, or all), recorded as fetched."""
    _require(student, assignment.course, Action.FETCH_FEEDBACK)
    feedback = Feedback.objects.filter(
        submission__assignment=assignment, submission__student=student
    ).select_related("submission", "bundle")
    if submission is not None:
        if submission.student_id != student.pk or submission.assignment_id != assignment.pk:
            raise NotFound("There is no such submission of yours.")
        feedback = feedback.filter(submission=submission)
    result = list(feedback.order_by("submission__timestamp"))
    record_event(
        action=AuditEvent.Action.FEEDBACK_FETCHED,
        actor=student,
        assignment=assignment,
        student=student,
        submission=submission,
        feedback=len(result),
    )
    return result


# --- deleting (site admins) and due dates -------------------------------------------------


def _require_site_admin(actor: AbstractBaseUser | None, what: str) -> None:
    """Deletes are for site admins (the admin site) and the operator (``actor=None``)."""
    from .permissions import is_site_admin

    if actor is not None and not is_site_admin(actor):
        raise PermissionDenied(f"Only site admins may delete {what}.")


def _delete_bundles(bundle_ids: Iterable[int | None]) -> None:
    """Delete bundles whose owner row is gone. Their blobs stay until ``gc_blobs`` finds
    them unreferenced and frees the bytes: storage is never touched here."""
    Bundle.objects.filter(pk__in=[pk for pk in bundle_ids if pk is not None]).delete()


def _actor_name(actor: AbstractBaseUser | None) -> str:
    return actor.get_username() if actor is not None else "system"


@transaction.atomic
def delete_course(*, actor: AbstractBaseUser | None, course: Course) -> None:
    """Delete a course with its memberships, assignments, submissions and feedback.

    Only site admins (or the operator at the command line) may. The audit trail keeps the
    course's events (with its code) and the log records the deletion; the files' bytes stay
    in storage until ``gc_blobs`` removes them.
    """
    _require_site_admin(actor, f"course {course.code!r}")
    # Waits for the uploads and roster changes in flight (they hold the course's lock
    # shared), so the bundles read next are all there are; later ones find the course gone.
    if not _lock_course(course, exclusive=True):
        raise NotFound(f"Course {course.code!r} was already deleted.")
    bundle_ids = [
        *Assignment.objects.filter(course=course).values_list("release_id", flat=True),
        *Submission.objects.filter(assignment__course=course).values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__assignment__course=course).values_list(
            "bundle_id", flat=True
        ),
    ]
    code = course.code
    record_event(
        action=AuditEvent.Action.COURSE_DELETED,
        actor=actor,
        course=course,
        assignments=Assignment.objects.filter(course=course).count(),
        submissions=Submission.objects.filter(assignment__course=course).count(),
    )
    course.delete()
    _delete_bundles(bundle_ids)
    logger.info("course %s deleted by %s", code, _actor_name(actor))


@transaction.atomic
def delete_assignment(*, actor: AbstractBaseUser | None, assignment: Assignment) -> None:
    """Delete an assignment with its release, submissions and feedback (site admins)."""
    _require_site_admin(actor, f"assignment {assignment.code!r}")
    # Wait for the course's uploads in flight and keep new ones out until this commits, so
    # none of them records a row that points at the deleted assignment.
    _lock_course(assignment.course, exclusive=True)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    submissions = Submission.objects.filter(assignment=assignment)
    bundle_ids = [
        assignment.release_id,
        *submissions.values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__assignment=assignment).values_list(
            "bundle_id", flat=True
        ),
    ]
    record_event(
        action=AuditEvent.Action.ASSIGNMENT_DELETED,
        actor=actor,
        assignment=assignment,
        submissions=submissions.count(),
    )
    assignment.delete()
    _delete_bundles(bundle_ids)


@transaction.atomic
def delete_submission(*, actor: AbstractBaseUser | None, submission: Submission) -> None:
    """Delete one submission and its feedback (site admins, and the course's instructors:
    ``nbgrader list --inbound --remove``); the student's others stay."""
    from .permissions import is_site_admin

    submission = (
        Submission.objects.select_for_update()
        .select_related("assignment__course", "student")
        .get(pk=submission.pk)
    )
    if not is_site_admin(actor):
        _require(actor, submission.assignment.course, Action.REMOVE_SUBMISSIONS)
    bundle_ids = [
        submission.bundle_id,
        *Feedback.objects.filter(submission=submission).values_list("bundle_id", flat=True),
    ]
    record_event(
        action=AuditEvent.Action.SUBMISSION_DELETED,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        timestamp=submission.timestamp.isoformat(),
        files=submission.bundle.file_count,
    )
    submission.delete()
    _delete_bundles(bundle_ids)


@transaction.atomic
def delete_feedback(*, actor: AbstractBaseUser | None, feedback: Feedback) -> None:
    """Withdraw the feedback on one submission (site admins); the submission stays."""
    _require_site_admin(actor, "feedback")
    feedback = (
        Feedback.objects.select_for_update()
        .select_related("submission__assignment__course", "submission__student")
        .get(pk=feedback.pk)
    )
    submission = feedback.submission
    record_event(
        action=AuditEvent.Action.FEEDBACK_DELETED,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        files=feedback.bundle.file_count,
    )
    bundle_id = feedback.bundle_id
    feedback.delete()
    _delete_bundles([bundle_id])


@transaction.atomic
def delete_user(*, actor: AbstractBaseUser | None, user: AbstractBaseUser) -> None:
    """Delete an account with its memberships, submissions and their feedback (site admins)."""
    _require_site_admin(actor, f"user {user.get_username()!r}")
    submissions = Submission.objects.filter(student=user)
    bundle_ids = [
        *submissions.values_list("bundle_id", flat=True),
        *Feedback.objects.filter(submission__student=user).values_list("bundle_id", flat=True),
    ]
    record_event(
        action=AuditEvent.Action.USER_DELETED,
        actor=actor,
        student=user,
        memberships=Membership.objects.filter(user=user).count(),
        submissions=submissions.count(),
    )
    user.delete()
    _delete_bundles(bundle_ids)


def set_due_date(
    *, actor: AbstractBaseUser | None, assignment: Assignment, due_date: dt.datetime | None
) -> Assignment:
    """Change (or, with None, clear) an assignment's due date; late flags follow it."""
    return deadlines.set_deadlines(actor=actor, assignment=assignment, due_date=due_date)


# --- importing from another exchange ------------------------------------------------------
# The importers in ``courses/importers/`` store the bytes first (``blobstore``), then call
# these inside the one transaction of a course. The operator runs them (no actor), and the
# original times are kept: a submission's timestamp is the one the old exchange gave it.


def _same_files(bundle: Bundle | None, staged: StagedBundle) -> bool:
    if bundle is None:
        return False
    have = set(bundle.entries.values_list("path", "blob_id"))
    return have == {(entry.path, entry.sha256) for entry in staged.entries}


@transaction.atomic
def import_release(
    *, course: Course, code: str, staged: StagedBundle, released_at: dt.datetime
) -> tuple[Assignment, str]:
    """Record an imported release; returns the assignment and "added", "replaced" or
    "unchanged" (the same files are already released)."""
    _check_code(code, "Assignment id")
    _require_course(course)
    assignment, _ = Assignment.objects.select_for_update().get_or_create(course=course, code=code)
    if _same_files(assignment.release, staged):
        return assignment, "unchanged"
    old_release = assignment.release
    assignment.release = record_bundle(kind=Bundle.Kind.RELEASE, staged=staged)
    assignment.released_by = None
    assignment.released_at = released_at
    assignment.save()
    if old_release is not None:
        old_release.delete()
    record_event(
        action=AuditEvent.Action.RELEASED,
        actor=None,
        assignment=assignment,
        files=len(staged.entries),
        replaced=old_release is not None,
        imported=True,
    )
    return assignment, "replaced" if old_release is not None else "added"


@transaction.atomic
def import_submission(
    *,
    course: Course,
    assignment_code: str,
    student: AbstractBaseUser,
    timestamp: dt.datetime,
    staged: StagedBundle,
) -> tuple[Submission, bool]:
    """Record an imported submission with its original timestamp; returns it and whether it
    is new (a submission of this student at this timestamp is kept as it is). The
    assignment is created unreleased if the old exchange no longer released it."""
    _check_code(assignment_code, "Assignment id")
    _require_course(course)
    assignment, _ = Assignment.objects.get_or_create(course=course, code=assignment_code)
    existing = Submission.objects.filter(
        assignment=assignment, student=student, timestamp=timestamp
    ).first()
    if existing is not None:
        return existing, False
    submission = _record_submission(
        assignment=assignment,
        student=student,
        timestamp=timestamp,
        staged=staged,
        actor=None,
        imported=True,
    )
    return submission, True


@transaction.atomic
def import_feedback(
    *, submission: Submission, staged: StagedBundle, released_at: dt.datetime
) -> tuple[Feedback, str]:
    """Record imported feedback for one submission; "added", "replaced" or "unchanged"."""
    _require_course(submission.assignment.course)
    old = Feedback.objects.filter(submission=submission).select_related("bundle").first()
    if old is not None and _same_files(old.bundle, staged):
        return old, "unchanged"
    bundle = record_bundle(kind=Bundle.Kind.FEEDBACK, staged=staged)
    if old is None:
        feedback = Feedback.objects.create(
            submission=submission, bundle=bundle, released_by=None, released_at=released_at
        )
    else:
        old_bundle = old.bundle
        old.bundle = bundle
        old.released_by = None
        old.released_at = released_at
        old.save()
        old_bundle.delete()
        feedback = old
    record_event(
        action=AuditEvent.Action.FEEDBACK_RELEASED,
        actor=None,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        files=len(staged.entries),
        imported=True,
    )
    return feedback, "added" if old is None else "replaced"


@transaction.atomic
def import_member(
    *,
    course: Course,
    username: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
) -> bool:
    """Add an imported member, named as the old exchange named them in this course, unless
    they already belong to the course (whose role and names are then kept: an import never
    demotes an instructor to student); returns whether one was added."""
    names = {"first_name": first_name, "last_name": last_name, "email": email}
    user = get_or_create_user(username, **names)
    if Membership.objects.filter(user=user, course=course).exists():
        return False
    add_member(course=course, username=username, role=role, **names)
    return True


def import_course_record(*, code: str, title: str = "") -> tuple[Course, bool]:
    """The imported course, created if new; returns it and whether it was created."""
    course = Course.objects.filter(code=code).first()
    if course is not None:
        return course, False
    return create_course(code=code, title=title), True
