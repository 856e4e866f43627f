"""The data model: courses, memberships, assignments, submissions, feedback, and the
content-addressed bundles of files they carry.

Cross-model workflows live in ``courses/services/``, never in ``save()`` or signals.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

CODE_PATTERN = r"^[A-Za-z0-9_.\-]+$"
# nbgrader's course and assignment ids: letters, digits, _, -, . (and not "." or "..").
code_validator = RegexValidator(
    CODE_PATTERN, _("Use only letters, digits, underscore, hyphen and dot.")
)


class Course(models.Model):
    code = models.CharField(
        _("course id"), max_length=100, unique=True, validators=[code_validator]
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=CODE_PATTERN) & ~Q(code__in=[".", ".."]),
                name="course_code_format",
            )
        ]

    def __str__(self) -> str:
        return self.code


class Membership(models.Model):
    class Role(models.TextChoices):
        INSTRUCTOR = "instructor", _("instructor")
        GRADER = "grader", _("grader")
        STUDENT = "student", _("student")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    # How this course's roster names the person. Kept per membership so that one course's
    # instructor (or roster import) never changes what another course or the admin shows.
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("email address"), max_length=254, blank=True)
    # The person's id in the LMS (Canvas's user "ID"), as nbgrader's gradebook keeps it.
    lms_user_id = models.CharField(_("LMS user id"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["course__code", "user__username"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="one_membership_per_course"),
            models.CheckConstraint(
                condition=Q(role__in=["instructor", "grader", "student"]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.course} as {self.role}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Blob(models.Model):
    """One file's bytes, stored once under ``blobs/<aa>/<sha256>``."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="blob_sha256"
            ),
            models.CheckConstraint(condition=Q(size__gte=0), name="blob_size_nonnegative"),
        ]

    def __str__(self) -> str:
        return self.sha256

    @property
    def storage_name(self) -> str:
        return blob_storage_name(self.sha256)


def blob_storage_name(sha256: str) -> str:
    """Where a blob's bytes live in the storage backend: the one place this is computed."""
    return f"blobs/{sha256[:2]}/{sha256}"


def preview_storage_names(sha256: str) -> tuple[str, str]:
    """Where the preview made from a blob lives (web/previews.py): its HTML, or the reason
    it could not be made. Beside the blobs, so every replica finds it; removed with the blob."""
    stem = f"previews/{sha256[:2]}/{sha256}"
    return f"{stem}.html", f"{stem}.failed.json"


class Bundle(models.Model):
    """One set of files: a release, a submission or a feedback."""

    class Kind(models.TextChoices):
        RELEASE = "release", _("release")
        SUBMISSION = "submission", _("submission")
        FEEDBACK = "feedback", _("feedback")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    file_count = models.PositiveIntegerField(default=0)
    total_size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When gc_blobs first found no release, submission or feedback holding this bundle; it
    # is deleted once that is longer ago than gc's grace period (readers in flight finish).
    ownerless_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bundle")

    def __str__(self) -> str:
        return f"{self.kind} bundle {self.pk} ({self.file_count} files)"


class BundleEntry(models.Model):
    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE, related_name="entries")
    path = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="entries")

    class Meta:
        ordering = ["path"]
        verbose_name = _("file")
        verbose_name_plural = _("files")
        constraints = [
            models.UniqueConstraint(fields=["bundle", "path"], name="one_path_per_bundle"),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def size(self) -> int:
        return self.blob.size


class Assignment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    code = models.CharField(_("assignment id"), max_length=100, validators=[code_validator])
    due_date = models.DateTimeField(_("due date"), null=True, blank=True)
    # The hard cutoff: after it a submission is refused (see courses/deadlines.py).
    accept_until = models.DateTimeField(_("accept until"), null=True, blank=True)
    release = models.OneToOneField(
        Bundle,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="released_assignment",
    )
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course__code", "code"]
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(fields=["course", "code"], name="one_assignment_id_per_course"),
            models.CheckConstraint(
                condition=Q(code__regex=CODE_PATTERN) & ~Q(code__in=[".", ".."]),
                name="assignment_code_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.course.code}/{self.code}"

    @property
    def is_released(self) -> bool:
        return self.release_id is not None


class Submission(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    timestamp = models.DateTimeField(_("submitted"))
    bundle = models.OneToOneField(Bundle, on_delete=models.PROTECT, related_name="submission")

    class Meta:
        ordering = ["assignment", "student__username", "timestamp"]
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "student", "timestamp"],
                name="one_submission_per_student_timestamp",
            ),
        ]
        indexes = [models.Index(fields=["assignment", "student", "-timestamp"])]

    def __str__(self) -> str:
        return f"{self.assignment} by {self.student} at {self.timestamp:%Y-%m-%d %H:%M:%S}"

    @property
    def due_date(self) -> dt.datetime | None:
        """The student's own due date: their extension's, else the assignment's.

        Lists annotate ``extended_due_date`` (see ``selectors.list_submissions``) so that
        this costs no query per row.
        """
        extended = getattr(self, "extended_due_date", _UNSET)
        if extended is _UNSET:
            extended = (
                Extension.objects.filter(
                    assignment_id=self.assignment_id, student_id=self.student_id
                )
                .values_list("due_date", flat=True)
                .first()
            )
        return extended or self.assignment.due_date

    @property
    def is_late(self) -> bool:
        due = self.due_date
        return due is not None and self.timestamp > due


_UNSET = object()


class Extension(models.Model):
    """One student's own due date and/or cutoff for one assignment (empty: the assignment's)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extensions"
    )
    due_date = models.DateTimeField(_("due date"), null=True, blank=True)
    accept_until = models.DateTimeField(_("accept until"), null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("granted"), default=timezone.now)

    class Meta:
        ordering = ["assignment", "student__username"]
        verbose_name = _("extension")
        verbose_name_plural = _("extensions")
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "student"], name="one_extension_per_student"
            ),
        ]

    def __str__(self) -> str:
        return f"extension on {self.assignment} for {self.student}"


class Feedback(models.Model):
    """The feedback released for one submission; releasing again replaces its files."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="feedback")
    bundle = models.OneToOneField(Bundle, on_delete=models.PROTECT, related_name="feedback")
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    released_at = models.DateTimeField(_("released"), default=timezone.now)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")

    def __str__(self) -> str:
        return f"feedback on {self.submission}"


class AuditEvent(models.Model):
    """Who did what, where and when. Codes and names are copied so the trail survives deletes."""

    class Action(models.TextChoices):
        COURSE_CREATED = "course_created", _("course created")
        ROSTER_CHANGED = "roster_changed", _("roster changed")
        RELEASED = "released", _("released")
        UNRELEASED = "unreleased", _("unreleased")
        FETCHED = "fetched", _("fetched")
        SUBMITTED = "submitted", _("submitted")
        COLLECTED = "collected", _("collected")
        FEEDBACK_RELEASED = "feedback_released", _("feedback released")
        FEEDBACK_FETCHED = "feedback_fetched", _("feedback fetched")
        DUE_DATE_CHANGED = "due_date_changed", _("due date changed")
        COURSE_DELETED = "course_deleted", _("course deleted")
        ASSIGNMENT_DELETED = "assignment_deleted", _("assignment deleted")
        SUBMISSION_DELETED = "submission_deleted", _("submission deleted")
        FEEDBACK_DELETED = "feedback_deleted", _("feedback deleted")
        TOKENS_REVOKED = "tokens_revoked", _("API tokens revoked")
        USER_DELETED = "user_deleted", _("user deleted")
        UPLOAD_FAILED = "upload_failed", _("upload failed")
        CUTOFF_CHANGED = "cutoff_changed", _("cutoff changed")
        EXTENSION_GRANTED = "extension_granted", _("extension granted")
        EXTENSION_REVOKED = "extension_revoked", _("extension revoked")
        PURGED = "purged", _("purged")
        REGRADE_REQUESTED = "regrade_requested", _("regrade requested")
        REGRADE_ANSWERED = "regrade_answered", _("regrade request answered")
        REGRADE_WITHDRAWN = "regrade_withdrawn", _("regrade request withdrawn")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=30, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    course = models.ForeignKey(
        Course, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    course_code = models.CharField(_("course id"), max_length=100, blank=True)
    assignment = models.ForeignKey(
        Assignment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignment_code = models.CharField(_("assignment id"), max_length=100, blank=True)
    student_name = models.CharField(_("student"), max_length=150, blank=True)
    submission = models.ForeignKey(
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["course", "-at"]),
            models.Index(fields=["assignment", "action"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"


# Registered with the app here; their own modules hold them (see those modules' docstrings).
from .collection_models import CollectionRecord  # noqa: E402, F401
from .grade_models import NotebookScore  # noqa: E402, F401
from .regrade_models import RegradeRequest  # noqa: E402, F401
