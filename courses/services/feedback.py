"""Feedback: graders release it for a submission, its student fetches it."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from .. import grades
from ..exceptions import NotFound
from ..grade_models import NotebookScore
from ..limits import audited_upload
from ..models import Assignment, AuditEvent, Bundle, BundleEntry, Feedback, Submission
from ..permissions import Action
from ..prefetched import prefetch_rows
from ..prepared import Prepared
from . import bundles
from .audit import record_event
from .bundles import Upload
from .guards import _hold_course, _require, _require_course

# --- feedback -----------------------------------------------------------------------------


@audited_upload("feedback")
def release_feedback(
    *,
    actor: AbstractBaseUser | None,
    submission: Submission,
    upload: Upload,
    scores: Sequence[grades.Score] = (),
) -> Feedback:
    """Release feedback for one submission; releasing again replaces the files and the
    scores (checked by ``grades.check_scores``)."""
    assignment = submission.assignment
    _require(actor, assignment.course, Action.RELEASE_FEEDBACK)
    # The submission's files, the release's and every feedback's of the assignment, as a
    # subquery of the one read of the stored sizes.
    readable = bundles.readable_entries(
        [submission.bundle_id, assignment.release_id],
        Feedback.objects.filter(submission__assignment=assignment).values("bundle_id"),
    )
    staged = bundles.stage_bundle(upload=upload, readable_shas=readable)
    with transaction.atomic():
        _hold_course(assignment.course)
        # The submission's row, locked; it also proves the course is still there (it goes
        # with the course).
        # get(), not first(): the model's ordering would join (and lock) other tables.
        try:
            Submission.objects.select_for_update().only("pk").get(pk=submission.pk)
        except Submission.DoesNotExist:
            _require_course(assignment.course)
            raise NotFound(
                "This submission was deleted while the feedback was being sent."
            ) from None
        old = Feedback.objects.filter(submission=submission).first()
        return write_feedback(
            actor=actor, submission=submission, old=old, staged=staged, scores=scores
        )


def write_feedback(
    *,
    actor: AbstractBaseUser | None,
    submission: Submission,
    old: Feedback | None,
    staged: bundles.StagedBundle,
    scores: Sequence[grades.Score],
) -> Feedback:
    """The rows of one release of feedback (``old``: the submission's feedback until now),
    inside the caller's transaction, with the submission locked and the role checked."""
    bundle = bundles.record_bundle(kind=Bundle.Kind.FEEDBACK, staged=staged)
    if old is None:
        feedback = Feedback.objects.create(submission=submission, bundle=bundle, released_by=actor)
    else:
        # The replaced bundle stays (ownerless) until gc_blobs, as a replaced release does:
        # a collect or a page that read the old feedback an instant ago still lists it.
        old.submission = submission  # already read: the answer's timestamp needs no query
        old.bundle = bundle
        old.released_by = actor
        old.released_at = timezone.now()
        old.save(update_fields=["bundle", "released_by", "released_at"])
        feedback = old
    grades.replace_scores(feedback=feedback, scores=scores, replacing=old is not None)
    record_event(
        action=AuditEvent.Action.FEEDBACK_RELEASED,
        actor=actor,
        assignment=submission.assignment,
        student=submission.student,
        submission=submission,
        files=len(staged.entries),
        scores=len(scores),
    )
    return feedback


def fetch_feedback(
    *, student: AbstractBaseUser, assignment: Assignment, submission: Submission | None = None
) -> list[Feedback]:
    """The feedback on a student's own submissions (one, or all), recorded as fetched.

    Reads, then one insert (the audit event), in no transaction of their own: a
    transaction would hold SQLite's write lock across the reads (transaction_mode
    IMMEDIATE), making every student's fetch wait for every other write."""
    _require(student, assignment.course, Action.FETCH_FEEDBACK)
    if submission is not None:
        if submission.student_id != student.pk or submission.assignment_id != assignment.pk:
            raise NotFound("There is no such submission of yours.")
        result = _feedback_read(
            Feedback.objects.filter(submission=submission).select_related("submission", "bundle")
        )
    else:
        result = _all_feedback(assignment.pk, student.pk)
    record_event(
        action=AuditEvent.Action.FEEDBACK_FETCHED,
        actor=student,
        assignment=assignment,
        student=student,
        submission=submission,
        feedback=len(result),
    )
    return result


def _feedback_read(feedback: QuerySet[Feedback]) -> list[Feedback]:
    # Each bundle's files with their blobs in one query, not one per feedback.
    return list(
        feedback.prefetch_related(
            "scores",
            Prefetch("bundle__entries", queryset=BundleEntry.objects.select_related("blob")),
        ).order_by("submission__timestamp")
    )


# A student's whole feedback on an assignment (what every ``fetch_feedback`` asks, at once
# after a release): three prepared reads (courses/prepared.py) of the feedback, its files
# and its scores, each by the assignment and the student.
_FEEDBACK = Prepared(
    lambda assignment_id, student_id: Feedback.objects.filter(
        submission__assignment_id=assignment_id, submission__student_id=student_id
    )
    .select_related("submission", "bundle")
    .order_by("submission__timestamp"),
    int,
    int,
)
_FEEDBACK_FILES = Prepared(
    lambda assignment_id, student_id: BundleEntry.objects.filter(
        bundle__feedback__submission__assignment_id=assignment_id,
        bundle__feedback__submission__student_id=student_id,
    )
    .select_related("blob")
    .order_by("path"),
    int,
    int,
)
_FEEDBACK_SCORES = Prepared(
    lambda assignment_id, student_id: NotebookScore.objects.filter(
        feedback__submission__assignment_id=assignment_id,
        feedback__submission__student_id=student_id,
    ).order_by("notebook"),
    int,
    int,
)


def _all_feedback(assignment_id: int, student_id: int) -> list[Feedback]:
    result = _FEEDBACK(assignment_id, student_id)
    if not result:
        return result
    files: dict[int, list[BundleEntry]] = {}
    for entry in _FEEDBACK_FILES(assignment_id, student_id):
        files.setdefault(entry.bundle_id, []).append(entry)
    if any(len(files.get(item.bundle_id, ())) != item.bundle.file_count for item in result):
        # Released again between the reads: the files now belong to another bundle. Read
        # the bundles as the first read found them.
        return _feedback_read(Feedback.objects.filter(pk__in=[item.pk for item in result]))
    scores: dict[int, list[NotebookScore]] = {}
    for score in _FEEDBACK_SCORES(assignment_id, student_id):
        scores.setdefault(score.feedback_id, []).append(score)
    for item in result:
        prefetch_rows(item.bundle, "entries", files.get(item.bundle_id, []))
        prefetch_rows(item, "scores", scores.get(item.pk, []))
    return result
