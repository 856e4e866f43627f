"""Input serializers (the shape of what clients send) and output serializers (what the API
answers). No business logic here: views hand parsed input to ``courses.services``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from courses import grades, selectors
from courses.models import Feedback, Membership, Submission
from courses.selectors import AssignmentRow, SubmissionFiles
from courses.timestamps import format_timestamp

from .downloads import blob_links
from .fields import ManifestField, TimestampField

Role = Membership.Role


# --- input --------------------------------------------------------------------------------


class CourseCreateSerializer(serializers.Serializer):
    course_id = serializers.CharField(max_length=100)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    instructors = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list
    )


class MemberInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    lms_user_id = serializers.CharField(max_length=128, required=False, allow_blank=True)


class UploadSerializer(serializers.Serializer):
    manifest = ManifestField(
        help_text="JSON list of {path, size, sha256}, one per file of the bundle."
    )
    archive = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="tar.gz of the files whose bytes the server does not have yet.",
    )


class FeedbackUploadSerializer(UploadSerializer):
    scores = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="JSON list of {notebook, score, max_score} from nbgrader's gradebook, "
        "0 <= score <= max_score, at most 500. Left out: the feedback has no scores.",
    )


class FeedbackBatchSerializer(serializers.Serializer):
    manifest = ManifestField(
        help_text='JSON {"submissions": [{"id", "files": [{path, size, sha256}], "scores"?}]}: '
        "per submission of this assignment its feedback files and optional notebook scores "
        "(as the single release's scores field); at most 100 submissions."
    )
    archive = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="tar.gz of the distinct files the server lacks, each member named by the "
        "SHA-256 of its bytes.",
    )


class ReleaseInputSerializer(UploadSerializer):
    due_date = TimestampField(required=False, allow_null=True)
    force = serializers.BooleanField(required=False, default=False)


class DeadlinesInputSerializer(serializers.Serializer):
    """A PATCH of an assignment: a key left out keeps its value, ``null`` clears it."""

    due_date = TimestampField(required=False, allow_null=True)
    accept_until = TimestampField(
        required=False, allow_null=True, help_text="The hard cutoff: later submissions get 403."
    )


class ExtensionInputSerializer(serializers.Serializer):
    due_date = TimestampField(required=False, allow_null=True, default=None)
    accept_until = TimestampField(required=False, allow_null=True, default=None)


class UnreleaseQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)


class SubmissionQuerySerializer(serializers.Serializer):
    latest = serializers.BooleanField(required=False, default=False)
    student = serializers.CharField(required=False, max_length=150)


_INLINE = serializers.BooleanField()


def inline_wanted(query: Any) -> bool:
    """``?inline=``, read as DRF reads a boolean (absent: false); a bad value is a 400 that
    names it. A function, not a serializer: every student's feedback fetch reads it."""
    given = query.get("inline")
    if given is None:
        return False
    try:
        return _INLINE.to_internal_value(given)
    except serializers.ValidationError as error:
        raise serializers.ValidationError({"inline": error.detail}) from None


class CollectInputSerializer(serializers.Serializer):
    latest = serializers.BooleanField(required=False, default=True)
    student = serializers.CharField(required=False, allow_null=True, max_length=150)


# --- output -------------------------------------------------------------------------------


# Reads a ``selectors.CourseRow`` (a comment, not a docstring: docstrings go into the schema).
class MyCourseSerializer(serializers.Serializer):
    course_id = serializers.CharField(source="course.code")
    title = serializers.CharField(source="course.title")
    role = serializers.CharField()


class CourseSerializer(MyCourseSerializer):
    created = TimestampField(source="course.created_at")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    courses = MyCourseSerializer(many=True)


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    # The course's own names for the member (see services.add_member), not the site-wide user.
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    lms_user_id = serializers.CharField(help_text="The person's id in the LMS, if known.")


class FileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField(source="blob.size")
    sha256 = serializers.CharField(source="blob_id")


class FileWithUrlSerializer(FileSerializer):
    # Output only; ``required=False`` (not ``read_only``) so the schema says each may be
    # absent: a file whose bytes come inline has no URL, and with S3 only small files offer the
    # archive's token.
    url = serializers.CharField(
        required=False, help_text="A short-lived download URL (absent with ``content``)."
    )
    token = serializers.CharField(
        required=False,
        help_text="The file's signed token, to post to ``archive_url`` (every file with local "
        "storage, files up to 256 KiB with S3).",
    )
    archive_url = serializers.CharField(
        required=False,
        help_text='Where to POST {"tokens": [...]} for a tar of several files (with ``token``).',
    )
    content = serializers.CharField(
        required=False,
        help_text="The file's bytes, base64 (only when asked for with ``?inline=true``, for "
        "small files); such a file has no ``url``.",
    )
    content_at = serializers.IntegerField(
        required=False,
        help_text="Instead of ``content`` in an answer of JSON and bytes (``Accept: "
        "application/vnd.nbgrader-exchange.inline``): where the file's ``size`` bytes start "
        "after the newline that ends the JSON.",
    )

    def to_representation(self, entry: Any) -> dict[str, Any]:
        data = {"path": entry.path, "size": entry.blob.size, "sha256": entry.blob_id}
        content = self.context.get("inline", {}).get(entry.blob_id)
        at = self.context.get("inline_at", {}).get(entry.blob_id)
        if content is not None:
            data["content"] = content
        elif at is not None:
            data["content_at"] = at
        else:
            data.update(
                blob_links(
                    self.context["request"],
                    sha256=entry.blob_id,
                    path=entry.path,
                    size=entry.blob.size,
                )
            )
        return data


# Reads a ``selectors.AssignmentRow``: the assignment, with its figures for instructors and
# graders, or a student's own dates.
class AssignmentSerializer(serializers.Serializer):
    course_id = serializers.CharField(source="assignment.course.code")
    assignment_id = serializers.CharField(source="assignment.code")
    released = serializers.BooleanField(source="assignment.is_released")
    released_at = TimestampField(source="assignment.released_at")
    due_date = TimestampField(
        source="assignment.due_date", help_text="Students: their own (an extension's, if any)."
    )
    accept_until = TimestampField(
        source="assignment.accept_until",
        help_text="Students: their own (an extension's, if any).",
    )
    # Not required: left out of the answer when the row has no own dates / no figures.
    extended = serializers.BooleanField(
        source="own_dates.extended",
        required=False,
        help_text="Students only: whether an extension of theirs applies.",
    )
    file_count = serializers.SerializerMethodField()
    total_size = serializers.SerializerMethodField()
    fetched_count = serializers.IntegerField(
        source="figures.fetched", required=False, help_text="Instructors and graders only."
    )
    submitted_count = serializers.IntegerField(
        source="figures.submitted", required=False, help_text="Instructors and graders only."
    )

    def get_file_count(self, row: AssignmentRow) -> int:
        release = row.assignment.release
        return release.file_count if release else 0

    def get_total_size(self, row: AssignmentRow) -> int:
        release = row.assignment.release
        return release.total_size if release else 0

    def to_representation(self, instance: AssignmentRow) -> dict[str, Any]:
        data = super().to_representation(instance)
        own = instance.own_dates
        if own is not None:
            data["due_date"] = TimestampField().to_representation(own.due_date)
            data["accept_until"] = TimestampField().to_representation(own.accept_until)
        return data


class AssignmentDetailSerializer(AssignmentSerializer):
    files = serializers.SerializerMethodField()

    @extend_schema_field(FileSerializer(many=True))
    def get_files(self, row: AssignmentRow) -> list[dict[str, Any]]:
        release = row.assignment.release
        if release is None:
            return []
        return FileSerializer(selectors.bundle_entries(release), many=True).data


class ReleaseManifestSerializer(AssignmentSerializer):
    files = serializers.SerializerMethodField()

    @extend_schema_field(FileWithUrlSerializer(many=True))
    def get_files(self, row: AssignmentRow) -> list[dict[str, Any]]:
        release = row.assignment.release
        assert release is not None
        return FileWithUrlSerializer(
            selectors.bundle_entries(release), many=True, context=self.context
        ).data


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    course_id = serializers.CharField(source="assignment.course.code")
    assignment_id = serializers.CharField(source="assignment.code")
    student = serializers.CharField(source="student.username")
    timestamp = TimestampField()
    due_date = TimestampField(
        help_text="The student's own due date: their extension's, else the assignment's."
    )
    late = serializers.BooleanField(source="is_late")
    file_count = serializers.IntegerField(source="bundle.file_count")
    total_size = serializers.IntegerField(source="bundle.total_size")
    has_feedback = serializers.SerializerMethodField()
    feedback_released_at = serializers.SerializerMethodField()

    def _feedback(self, submission: Submission) -> Feedback | None:
        try:
            return submission.feedback
        except Feedback.DoesNotExist:
            return None

    def get_has_feedback(self, submission: Submission) -> bool:
        return self._feedback(submission) is not None

    @extend_schema_field(TimestampField())
    def get_feedback_released_at(self, submission: Submission) -> str | None:
        feedback = self._feedback(submission)
        return TimestampField().to_representation(feedback.released_at) if feedback else None


class SubmittedSerializer(SubmissionSerializer):
    """The answer to a submit."""

    assignment_released_at = TimestampField(
        source="assignment.released_at",
        help_text="When the release this submission was recorded against was released: a "
        "client that remembers the release as it fetched it can tell it changed since.",
    )


class SubmissionListSerializer(SubmissionSerializer):
    """A row of the submissions listing, which also says which submission_secret.txt each
    submission holds (so a grader's client can match feedback to it without a read each)."""

    submission_secret_sha256 = serializers.CharField(
        source="secret_sha256",
        allow_null=True,
        read_only=True,
        help_text="SHA-256 of the submission's submission_secret.txt (nbgrader 0.9.3+); "
        "null when it has none.",
    )


# Reads a ``selectors.SubmissionFiles`` (the files of many submissions come in one query).
class SubmissionWithFilesSerializer(SubmissionSerializer):
    files = FileWithUrlSerializer(many=True, read_only=True)
    feedback_files = FileSerializer(
        many=True,
        read_only=True,
        help_text="The released feedback's files (no URLs: reading them is not a fetch).",
    )

    def to_representation(self, instance: SubmissionFiles) -> dict[str, Any]:
        data = SubmissionSerializer(instance.submission, context=self.context).data
        data["files"] = FileWithUrlSerializer(instance.files, many=True, context=self.context).data
        data["feedback_files"] = FileSerializer(instance.feedback_files, many=True).data
        return data


class ScoreSerializer(serializers.Serializer):
    notebook = serializers.CharField()
    score = serializers.FloatField()
    max_score = serializers.FloatField()


class FeedbackReleasedSerializer(serializers.Serializer):
    """What a batch release answers per submission: what was recorded, from the rows just
    written (no read per submission; the student's own GET shows the files and scores)."""

    submission_id = serializers.IntegerField()
    released_at = TimestampField()
    file_count = serializers.IntegerField(source="bundle.file_count")
    total_size = serializers.IntegerField(source="bundle.total_size")


class FeedbackSerializer(serializers.Serializer):
    submission_id = serializers.IntegerField()
    timestamp = TimestampField(source="submission.timestamp")
    released_at = TimestampField()
    score = serializers.SerializerMethodField(help_text="The notebooks' sum; null: no scores.")
    max_score = serializers.SerializerMethodField()
    scores = ScoreSerializer(many=True, source="scores.all")
    files = serializers.SerializerMethodField()

    def get_score(self, feedback: Feedback) -> float | None:
        total = grades.feedback_total(feedback)
        return total.score if total else None

    def get_max_score(self, feedback: Feedback) -> float | None:
        total = grades.feedback_total(feedback)
        return total.max_score if total else None

    @extend_schema_field(FileWithUrlSerializer(many=True))
    def get_files(self, feedback: Feedback) -> list[dict[str, Any]]:
        return FileWithUrlSerializer(
            selectors.bundle_entries(feedback.bundle), many=True, context=self.context
        ).data

    def to_representation(self, feedback: Feedback) -> dict[str, Any]:
        # The fields above, written out: every student's fetch_feedback renders this, and
        # DRF's field-by-field walk cost more than the rest of the answer.
        total = grades.feedback_total(feedback)
        files = FileWithUrlSerializer(context=self.context)
        return {
            "submission_id": feedback.submission_id,
            "timestamp": format_timestamp(feedback.submission.timestamp),
            "released_at": format_timestamp(feedback.released_at),
            "score": total.score if total else None,
            "max_score": total.max_score if total else None,
            "scores": [
                {"notebook": s.notebook, "score": float(s.score), "max_score": float(s.max_score)}
                for s in feedback.scores.all()
            ],
            "files": [
                files.to_representation(entry)
                for entry in selectors.bundle_entries(feedback.bundle)
            ],
        }


class ExtensionSerializer(serializers.Serializer):
    student = serializers.CharField(source="student.username")
    due_date = TimestampField()
    accept_until = TimestampField()
    granted_by = serializers.CharField(source="granted_by.username", allow_null=True, default=None)
    granted_at = TimestampField()


class RosterSummarySerializer(serializers.Serializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    removed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
