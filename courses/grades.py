"""Scores at the exchange: each notebook's score and max score as nbgrader's gradebook had
them when the feedback was released, and the reads that show and export them.

The plugin's ``release_feedback`` sends them beside the feedback's files (the ``scores``
form field, a JSON list of ``{notebook, score, max_score}``); ``check_scores`` validates the
whole list before anything is recorded, ``replace_scores`` stores it inside the feedback's own
transaction. Feedback released without scores (an older plugin) has none, and releasing it
again replaces the scores with the new ones, or none: a score never outlives its feedback.

A student's score on an assignment is the sum over the notebooks of the newest feedback that
carries scores (on any of their submissions); its max score is that feedback's sum too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from .exceptions import BadRequest
from .models import Assignment, Feedback, NotebookScore
from .prefetched import prefetch_rows

# A notebook count no assignment reaches; it bounds the work one request can ask for.
MAX_NOTEBOOKS = 500
# nbgrader's points are small numbers; anything past this is a mistake, not a score.
MAX_POINTS = 1e9
NOTEBOOK_MAX = 255


class BadScores(BadRequest):
    """Scores that cannot be stored; the feedback is not recorded either."""

    code = "bad_scores"


@dataclass(frozen=True)
class Score:
    """One notebook's score."""

    notebook: str
    score: float
    max_score: float


@dataclass(frozen=True)
class Total:
    """A student's score on an assignment, with the notebooks it sums."""

    score: float
    max_score: float
    notebooks: tuple[Score, ...]


def _number(value: Any, what: str) -> float:
    # bool is an int to Python, but true/false is no score.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadScores(f"The {what} must be a number, not {json.dumps(value)[:40]}.")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= MAX_POINTS:
        raise BadScores(f"The {what} must be a number from 0 to {MAX_POINTS:g}, not {value}.")
    return number


def check_scores(raw: Any) -> list[Score]:
    """The scores of a request (JSON text or a parsed list), or BadScores with one sentence.

    Each item is ``{"notebook": str, "score": number, "max_score": number}`` with
    ``0 <= score <= max_score``; notebooks are named once; at most ``MAX_NOTEBOOKS``.
    """
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadScores(f"The scores are not JSON: {exc}.") from None
    if not isinstance(raw, list):
        raise BadScores("The scores must be a JSON list of {notebook, score, max_score}.")
    if len(raw) > MAX_NOTEBOOKS:
        raise BadScores(f"At most {MAX_NOTEBOOKS} notebook scores can be sent with feedback.")
    scores: list[Score] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or set(item) != {"notebook", "score", "max_score"}:
            raise BadScores(
                f"Score {index} must be an object with exactly notebook, score and max_score."
            )
        notebook = item["notebook"]
        if not isinstance(notebook, str) or not notebook.strip() or len(notebook) > NOTEBOOK_MAX:
            raise BadScores(
                f"Score {index} needs a notebook name of 1 to {NOTEBOOK_MAX} characters."
            )
        if notebook in seen:
            raise BadScores(f"The notebook {notebook!r} has more than one score.")
        seen.add(notebook)
        score = _number(item["score"], f"score of {notebook!r}")
        max_score = _number(item["max_score"], f"max score of {notebook!r}")
        if score > max_score:
            raise BadScores(
                f"The score of {notebook!r} ({score:g}) is more than its max score ({max_score:g})."
            )
        scores.append(Score(notebook, score, max_score))
    return scores


def replace_scores(*, feedback: Feedback, scores: Sequence[Score], replacing: bool = True) -> None:
    """Make ``scores`` the feedback's scores; called inside the feedback's transaction.
    ``replacing=False``: the feedback was just made, so it has no scores to delete.

    The rows written are left on ``feedback`` as its prefetched ``scores``, so that the
    answer reads none back."""
    replace_scores_many([(feedback, scores, replacing)])


def replace_scores_many(items: Sequence[tuple[Feedback, Sequence[Score], bool]]) -> None:
    """``replace_scores`` for many feedbacks at once: one delete, one insert."""
    replaced = [feedback.pk for feedback, _, replacing in items if replacing]
    if replaced:
        NotebookScore.objects.filter(feedback_id__in=replaced).delete()
    rows = [
        [
            NotebookScore(
                feedback=feedback, notebook=s.notebook, score=s.score, max_score=s.max_score
            )
            for s in scores
        ]
        for feedback, scores, _ in items
    ]
    written = [row for rows_of in rows for row in rows_of]
    if written:
        NotebookScore.objects.bulk_create(written)
    for (feedback, _, _), rows_of in zip(items, rows, strict=True):
        prefetch_rows(feedback, "scores", rows_of)


# --- reads --------------------------------------------------------------------------------


def total_of(rows: Iterable[NotebookScore]) -> Total | None:
    """The sum of a feedback's notebook scores; None when it has none."""
    notebooks = tuple(Score(r.notebook, r.score, r.max_score) for r in rows)
    if not notebooks:
        return None
    return Total(
        score=sum(n.score for n in notebooks),
        max_score=sum(n.max_score for n in notebooks),
        notebooks=notebooks,
    )


def feedback_total(feedback: Feedback) -> Total | None:
    """One feedback's scores (prefetched ``scores`` are used when there)."""
    return total_of(feedback.scores.all())


def scores_of(assignments: Iterable[Assignment]) -> dict[tuple[int, int], Total]:
    """(assignment pk, student pk) -> the student's score, for every student with one.

    Two queries whatever the number of students: the scored feedback, and their scores.
    """
    feedback = (
        Feedback.objects.filter(submission__assignment__in=list(assignments), scores__isnull=False)
        .distinct()
        .select_related("submission")
        .prefetch_related(Prefetch("scores", queryset=NotebookScore.objects.order_by("notebook")))
        .order_by("released_at", "pk")
    )
    totals: dict[tuple[int, int], Total] = {}
    # Oldest first: the newest feedback of each student overwrites the older ones.
    for item in feedback:
        total = feedback_total(item)
        if total is not None:
            key = (item.submission.assignment_id, item.submission.student_id)
            totals[key] = total
    return totals


@dataclass(frozen=True)
class StudentScore:
    """A student's score on one assignment, and the feedback it came with."""

    student: str
    submission_id: int
    released_at: dt.datetime
    total: Total


def student_scores(assignment: Assignment) -> dict[str, StudentScore]:
    """User name -> score on one assignment, for the students who have one."""
    feedback = (
        Feedback.objects.filter(submission__assignment=assignment, scores__isnull=False)
        .distinct()
        .select_related("submission__student")
        .prefetch_related(Prefetch("scores", queryset=NotebookScore.objects.order_by("notebook")))
        .order_by("released_at", "pk")
    )
    found: dict[str, StudentScore] = {}
    # Oldest first: each student's newest scored feedback overwrites the older ones.
    for item in feedback:
        total = feedback_total(item)
        if total is not None:
            name = item.submission.student.get_username()
            found[name] = StudentScore(name, item.submission_id, item.released_at, total)
    return found
