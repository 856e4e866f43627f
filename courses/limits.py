"""Per-person limits on uploads, and the audit trail of uploads that failed.

Students are the many and the untrusted, so the limits apply to submissions (the one upload
a student makes); course staff's releases and feedback are bounded by the per-upload limits
only, so that releasing feedback to a whole class is never throttled. docs/security.md says
why and how the numbers are counted.

- Rate: at most EXCHANGE_UPLOADS_PER_MINUTE submissions per person in any 60 seconds, over
  every course, counted from the audit trail (so it holds across workers and replicas):
  submissions recorded and submissions that failed. More answer 429 with Retry-After.
- Quota: the distinct files a student's submissions in one course hold, released files not
  counted (a student submitting the release back costs nothing), at most
  EXCHANGE_SUBMISSION_QUOTA bytes. Checked on the manifest before a byte is stored, and again
  under the lock that serialises the student's submissions. More answer 413.
- Every upload that fails once the caller is known to be a member (bad manifest, too large,
  over a limit, a conflict, storage or database down, a crash) leaves an ``upload_failed``
  event: who, what, why and how many bytes came in; it is written after the upload's own
  transaction rolled back.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import BooleanField, QuerySet, Sum, Value
from django.utils import timezone

from .exceptions import ExchangeError, NotFound, PermissionDenied, TooLarge, TooManyRequests
from .models import AuditEvent, Blob, BundleEntry, Course
from .prepared import Prepared

logger = logging.getLogger(__name__)

WINDOW = dt.timedelta(seconds=60)
RATE_LIMITED = "rate_limited"
QUOTA_EXCEEDED = "quota_exceeded"

F = TypeVar("F", bound=Callable[..., Any])


# --- rate ----------------------------------------------------------------------------------


def check_submission_rate(*, student: AbstractBaseUser) -> None:
    """TooManyRequests when the student made EXCHANGE_UPLOADS_PER_MINUTE submissions (or
    failed attempts) in the last minute, with the seconds until the oldest leaves it."""
    limit = settings.EXCHANGE_UPLOADS_PER_MINUTE
    if not limit:
        return
    now = timezone.now()
    recent = AuditEvent.objects.filter(
        actor=student,
        at__gt=now - WINDOW,
        action__in=[AuditEvent.Action.SUBMITTED, AuditEvent.Action.UPLOAD_FAILED],
    ).values_list("at", "action", "detail")
    counted: list[dt.datetime] = []
    refused_already = False
    for at, action, detail in recent:
        if action == AuditEvent.Action.SUBMITTED:
            counted.append(at)
        elif detail.get("kind") == "submission":
            if detail.get("error") == RATE_LIMITED:
                refused_already = True
            else:
                counted.append(at)
    if len(counted) < limit:
        return
    oldest = sorted(counted)[-limit]
    wait = max(1, math.ceil((oldest + WINDOW - now).total_seconds()))
    error = TooManyRequests(
        f"You have sent {len(counted)} submissions in the last minute, the most allowed; "
        f"try again in {wait} seconds.",
        code=RATE_LIMITED,
        retry_after=wait,
    )
    # One audit event per person and window, however often a client insists.
    error.audit = not refused_already
    raise error


# --- quota ---------------------------------------------------------------------------------


def _own_entries(student: AbstractBaseUser, course: Course) -> QuerySet[BundleEntry]:
    return BundleEntry.objects.filter(
        bundle__submission__student=student, bundle__submission__assignment__course=course
    )


def _released_entries(course: Course) -> QuerySet[BundleEntry]:
    return BundleEntry.objects.filter(bundle__released_assignment__course=course)


def _entry_sizes(entries: QuerySet[BundleEntry], *, released: bool) -> QuerySet[Any]:
    flag = Value(released, output_field=BooleanField())
    return entries.order_by().values_list("blob_id", "blob__size", flag)


def submission_usage(*, student: AbstractBaseUser, course: Course) -> int:
    """Bytes of the distinct files the student's submissions in the course hold, files of
    the course's current releases not counted."""
    total = (
        Blob.objects.filter(sha256__in=_own_entries(student, course).values("blob_id"))
        .exclude(sha256__in=_released_entries(course).values("blob_id"))
        .aggregate(total=Sum("size"))["total"]
    )
    return int(total or 0)


def _quota_files_query(student_id: int, course_id: int) -> QuerySet[Any]:
    own = BundleEntry.objects.filter(
        bundle__submission__student_id=student_id,
        bundle__submission__assignment__course_id=course_id,
    )
    released = BundleEntry.objects.filter(bundle__released_assignment__course_id=course_id)
    return _entry_sizes(own, released=False).union(_entry_sizes(released, released=True))


# Every submit reads it twice (before the bytes, under the lock): compiled once
# (courses/prepared.py).
_QUOTA_FILES = Prepared(_quota_files_query, int, int)


def quota_files(*, student: AbstractBaseUser, course: Course) -> list[tuple[str, int, bool]]:
    """What ``check_submission_quota`` counts: the distinct files of the student's
    submissions in the course (with their sizes) and of the course's releases, in one
    statement, as ``(sha256, size, is_release)``."""
    return _QUOTA_FILES(student.pk, course.pk)


def check_submission_quota(
    *,
    student: AbstractBaseUser,
    course: Course,
    entries: Iterable[Any],
) -> None:
    """TooLarge (``quota_exceeded``) when the files of this submission that the student's
    earlier submissions and the releases do not hold yet would take the student past
    EXCHANGE_SUBMISSION_QUOTA in the course. ``entries`` have ``sha256`` and ``size``."""
    quota = settings.EXCHANGE_SUBMISSION_QUOTA
    if not quota:
        return
    sizes = {entry.sha256: entry.size for entry in entries}
    # What is counted here from ``quota_files`` is what ``submission_usage`` counts in SQL.
    own: dict[str, int] = {}
    released: set[str] = set()
    for sha, size, is_release in quota_files(student=student, course=course):
        if is_release:
            released.add(sha)
        else:
            own[sha] = size
    counted = own.keys() | released
    added = sum(size for sha, size in sizes.items() if sha not in counted)
    if not added:
        return
    used = sum(size for sha, size in own.items() if sha not in released)
    if used + added > quota:
        raise TooLarge(
            f"This submission would bring your files in {course.code} to {_size(used + added)}, "
            f"over the quota of {_size(quota)} per student and course (you use {_size(used)}). "
            "Leave large files (data, outputs) out of the assignment folder, or ask the "
            "course's instructors.",
            code=QUOTA_EXCEEDED,
        )


def _size(count: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} bytes"


# --- audit of failed uploads ----------------------------------------------------------------


def audited_upload(kind: str) -> Callable[[F], F]:
    """Decorate an upload service: when it fails, record an ``upload_failed`` event.

    The service takes keyword arguments: the uploader as ``actor`` or ``student``, the place
    as ``course``/``code``, ``assignment`` or ``submission``, and the ``upload``. Refusals
    that say nothing about the course (not a member, wrong role) are not recorded: they would
    let anyone write into any course's trail.
    """

    def decorate(service: F) -> F:
        @functools.wraps(service)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return service(*args, **kwargs)
            except (NotFound, PermissionDenied):
                raise
            except Exception as exc:
                if getattr(exc, "audit", True):
                    _record_failed_upload(kind, kwargs, exc)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


def _record_failed_upload(kind: str, kwargs: dict[str, Any], exc: Exception) -> None:
    # Imported here: services imports this module.
    from .services import record_event

    actor = kwargs.get("actor") or kwargs.get("student")
    submission = kwargs.get("submission")
    assignment = kwargs.get("assignment") or (submission.assignment if submission else None)
    course = kwargs.get("course") or (assignment.course if assignment else None)
    if isinstance(exc, ExchangeError):
        error, reason, status = exc.code, exc.detail, exc.status_code
    else:
        error, reason, status = "server_error", type(exc).__name__, 500
    detail: dict[str, Any] = {
        "kind": kind,
        "error": error,
        "reason": reason,
        "status": status,
        "bytes": _received_bytes(kwargs.get("upload")),
    }
    if assignment is None and kwargs.get("code"):
        detail["assignment_id"] = kwargs["code"]
    try:
        record_event(
            action=AuditEvent.Action.UPLOAD_FAILED,
            actor=actor,
            course=course,
            assignment=assignment,
            student=submission.student if submission else actor if kind == "submission" else None,
            submission=submission,
            **detail,
        )
    except Exception:
        # The database may be what failed; the upload's own error is the one to report.
        logger.exception("Could not record the failed %s upload of %s", kind, actor)


def _received_bytes(upload: Any) -> int:
    """The size of the archive the client sent (0 without one)."""
    archive = getattr(upload, "archive", None)
    if archive is None:
        return 0
    size = getattr(archive, "size", None)
    if isinstance(size, int):
        return size
    try:
        # The upload failed: its archive is not read again, so where it is left does not matter.
        return int(archive.seek(0, io.SEEK_END))
    except (OSError, ValueError):
        return 0
