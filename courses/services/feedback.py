"""Feedback: graders release it for a submission, its student fetches it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
from .audit import audit_event, record_event, record_events
from .bundles import Upload
from .guards import _hold_course, _require, _require_course

# --- feedback -----------------------------------------------------------------------------


# What a grader may send without bytes: the submission's files, the release's and every
# feedback's of the assignment, as a subquery of the one read of the stored sizes.
_READABLE_TO_GRADER = bundles.readable_by(
    lambda assignment_id: Feedback.objects.filter(submission__assignment_id=assignment_id).values(
        "bundle_id"
    ),
    int,
)


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
    readable = _READABLE_TO_GRADER([submission.bundle_id, assignment.release_id], assignment.pk)
    # Students fetch feedback with its small files inline: the server keeps copies of them.
    staged = bundles.stage_bundle(upload=upload, readable_shas=readable, keep_copies=True)
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


@dataclass(frozen=True)
class FeedbackPart:
    """One submission's feedback in a release of many: ``old`` is its feedback until now."""

    submission: Submission
    old: Feedback | None
    staged: bundles.StagedBundle
    scores: Sequence[grades.Score]


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
    part = FeedbackPart(submission=submission, old=old, staged=staged, scores=scores)
    return write_feedback_many(actor=actor, parts=[part])[0]


def write_feedback_many(
    *, actor: AbstractBaseUser | None, parts: Sequence[FeedbackPart]
) -> list[Feedback]:
    """``write_feedback`` for many submissions at once: a few statements for the whole
    batch (bundles, files, feedback, scores and audit events each written together)."""
    made = bundles.record_bundles(kind=Bundle.Kind.FEEDBACK, staged=[p.staged for p in parts])
    result: list[Feedback] = []
    new: list[Feedback] = []
    replaced: list[Feedback] = []
    for part, bundle in zip(parts, made, strict=True):
        if part.old is None:
            feedback = Feedback(submission=part.submission, bundle=bundle, released_by=actor)
            new.append(feedback)
        else:
            # The replaced bundle stays (ownerless) until gc_blobs, as a replaced release
            # does: a collect or a page that read the old feedback an instant ago still
            # lists it.
            feedback = part.old
            feedback.submission = part.submission  # read already: the answer needs no query
            feedback.bundle = bundle
            feedback.released_by = actor
            feedback.released_at = timezone.now()
            replaced.append(feedback)
        result.append(feedback)
    bundles.create_all(new)
    if len(replaced) > 1:
        Feedback.objects.bulk_update(replaced, ["bundle", "released_by", "released_at"])
    elif replaced:
        replaced[0].save(update_fields=["bundle", "released_by", "released_at"])
    grades.replace_scores_many(
        [
            (feedback, part.scores, part.old is not None)
            for feedback, part in zip(result, parts, strict=True)
        ]
    )
    record_events(
        [
            audit_event(
                action=AuditEvent.Action.FEEDBACK_RELEASED,
                actor=actor,
                assignment=part.submission.assignment,
                student=part.submission.student,
                submission=part.submission,
                files=len(part.staged.entries),
                scores=len(part.scores),
            )
            for part in parts
        ]
    )
    return result


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
