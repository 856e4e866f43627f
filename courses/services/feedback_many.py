"""Feedback for many submissions of one assignment in one call (``POST .../feedback``).

A grader releasing feedback to a class sends one request per batch of students instead of
one per student: a manifest naming, per submission, its feedback files and scores, and one
archive holding each distinct file once, named by its SHA-256. Everything is checked before
a row is written, the bytes are staged once, and the rows are written by the same
``write_feedback`` as a single release, in one transaction: a bad entry records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .. import grades
from ..archive import Limits, ManifestEntry, parse_manifest
from ..exceptions import BadArchive, BadRequest, ExchangeError, NotFound, TooLarge
from ..limits import audited_upload
from ..models import Assignment, Feedback, Submission
from ..permissions import Action
from . import bundles
from .bundles import StagedBundle, Upload, _shas_of
from .feedback import FeedbackPart, write_feedback_many
from .guards import _require, _require_course

# At most this many submissions in one request: a bad batch costs at most this much work,
# and one transaction stays short. The plugin sends 50 (docs/api.md).
MAX_FEEDBACK_BATCH = 100
# Ids beyond a 64-bit integer are no submission's, and the database cannot compare them.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class FeedbackItem:
    """One submission's part of a batch, checked."""

    submission_id: int
    entries: list[ManifestEntry]
    scores: list[grades.Score]


@audited_upload("feedback")
def release_feedback_many(
    *,
    actor: AbstractBaseUser | None,
    assignment: Assignment,
    upload: Upload,
) -> list[Feedback]:
    """Release feedback to many submissions of ``assignment`` at once, all or nothing.

    ``upload.manifest`` is ``{"submissions": [{"id", "files": [{path, size, sha256}],
    "scores"?}]}``; ``upload.archive`` a tar.gz whose members are named by the SHA-256 of
    their bytes, each distinct file the server lacks once. Releasing again to a submission
    replaces its files and scores, as a single release does.
    """
    _require(actor, assignment.course, Action.RELEASE_FEEDBACK)
    items = parse_batch(upload.manifest, Limits.from_settings())
    ids = [item.submission_id for item in items]
    # One read of every submission named, with what the audit events need.
    found = {
        s.pk: s
        for s in Submission.objects.filter(pk__in=ids, assignment=assignment).select_related(
            "student"
        )
    }
    for pk in ids:
        if pk not in found:
            # 400, not 404: a client tells "no batch endpoint here" (404/405) from this.
            raise BadRequest(
                f"There is no submission {pk} of assignment {assignment.code!r} in course "
                f"{assignment.course.code!r}; nothing was released.",
                code="unknown_submission",
            )
        found[pk].assignment = assignment  # the one already read, not a query per row
    readable = _shas_of(
        [
            assignment.release_id,
            *(s.bundle_id for s in found.values()),
            *Feedback.objects.filter(submission__assignment=assignment).values_list(
                "bundle_id", flat=True
            ),
        ]
    )
    # Every distinct file once, named by its hash: what the archive holds.
    distinct = {e.sha256: e.size for item in items for e in item.entries}
    try:
        staged = bundles.stage_bundle(
            upload=Upload(
                manifest=[
                    {"path": sha, "size": size, "sha256": sha} for sha, size in distinct.items()
                ],
                archive=upload.archive,
            ),
            readable_shas=readable,
            keep_copies=True,  # fetched inline by the students, as with one feedback
        )
    except BadArchive as exc:
        raise BadArchive(_name_files(exc.detail, items), code=exc.code) from None
    with transaction.atomic():
        _require_course(assignment.course)
        # Ordered by id alone: the model's ordering would join (and lock) other tables, and
        # one order for every locker keeps two batches from deadlocking.
        locked = set(
            Submission.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for pk in ids:
            if pk not in locked:
                raise NotFound(
                    f"Submission {pk} was deleted while the feedback was being sent; nothing "
                    "was released."
                )
        old = {f.submission_id: f for f in Feedback.objects.filter(submission_id__in=ids)}
        return write_feedback_many(
            actor=actor,
            parts=[
                FeedbackPart(
                    submission=found[item.submission_id],
                    old=old.get(item.submission_id),
                    staged=_part_of(staged, item.entries),
                    scores=item.scores,
                )
                for item in items
            ],
        )


def _part_of(staged: StagedBundle, entries: list[ManifestEntry]) -> StagedBundle:
    shas = {e.sha256 for e in entries}
    return StagedBundle(
        entries=entries,
        sizes={sha: staged.sizes[sha] for sha in shas},
        received=staged.received & shas,
        ticket=staged.ticket,
    )


def parse_batch(raw: str | bytes | Any, limits: Limits) -> list[FeedbackItem]:
    """The batch's items, each checked as a single release's manifest and scores are; the
    error names the submission (and the file) it is about."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BadArchive(
                f"The manifest is not valid JSON: {exc}.", code="bad_manifest"
            ) from None
    items = raw.get("submissions") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise BadArchive(
            'The manifest must be a JSON object {"submissions": [{"id", "files", "scores"}]} '
            "naming at least one submission.",
            code="bad_manifest",
        )
    if len(items) > MAX_FEEDBACK_BATCH:
        raise TooLarge(
            f"The manifest names {len(items)} submissions; at most {MAX_FEEDBACK_BATCH} are "
            "accepted in one request."
        )
    checked: list[FeedbackItem] = []
    seen: set[int] = set()
    for index, item in enumerate(items, start=1):
        pk = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not set(item) <= {"id", "files", "scores"}:
            raise BadArchive(
                f"Entry {index} of the manifest must be an object with id, files and "
                "optionally scores.",
                code="bad_manifest",
            )
        if not isinstance(pk, int) or isinstance(pk, bool) or not 1 <= pk <= MAX_ID:
            raise BadArchive(
                f"Entry {index} of the manifest needs a submission id (a positive integer).",
                code="bad_manifest",
            )
        if pk in seen:
            raise BadArchive(
                f"Submission {pk} is named more than once in the manifest.", code="bad_manifest"
            )
        seen.add(pk)
        checked.append(_item(pk, item, limits))
    return checked


def _item(pk: int, item: dict[str, Any], limits: Limits) -> FeedbackItem:
    try:
        entries = parse_manifest(item.get("files"), limits)
        raw_scores = item.get("scores")
        scores = grades.check_scores(raw_scores) if raw_scores is not None else []
    except ExchangeError as exc:
        raise type(exc)(f"Submission {pk}: {exc.detail}", code=exc.code) from None
    return FeedbackItem(submission_id=pk, entries=entries, scores=scores)


def _name_files(detail: str, items: Sequence[FeedbackItem]) -> str:
    """The archive names files by hash: say which submission's file a sentence is about."""
    for item in items:
        for entry in item.entries:
            quoted = f"{entry.sha256!r}"
            if quoted in detail:
                return detail.replace(
                    quoted, f"{entry.path!r} of submission {item.submission_id}", 1
                )
    return detail
