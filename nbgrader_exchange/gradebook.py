"""What the plugin reads from and writes to nbgrader's gradebook.

- ``notebook_scores``: each notebook's score and max score of a student's graded submission,
  sent by ``release_feedback`` beside the feedback (the service's ``scores`` field).
- ``sync_students``: the service's roster (first name, last name, email, LMS id) written
  into the gradebook as ``update_or_create_student`` would, in one transaction, so the
  formgrader and ``nbgrader export`` name the students; ``collect`` does it for the
  students it collects, ``python -m nbgrader_exchange.sync_roster`` for the whole roster.

An sqlite gradebook that does not exist yet is not created to read from it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# The roster's fields and the gradebook's Student columns they fill.
STUDENT_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "lms_user_id": "lms_user_id",
}
# Student ids per ``IN (...)`` query: SQLite allows 999 bound values in older builds.
_IN_BATCH = 500


def gradebook_exists(db_url: str) -> bool:
    return not db_url.startswith("sqlite:///") or os.path.exists(db_url[len("sqlite:///") :])


@contextmanager
def open_gradebook(db_url: str, course_id: str) -> Iterator[Any]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        yield gb


def notebook_scores(
    gb: Any, assignment_id: str, student_id: str, notebooks: Iterable[str]
) -> list[dict[str, Any]] | None:
    """``[{notebook, score, max_score}]`` of the named notebooks of the student's graded
    submission; None when the gradebook has no such submission."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment_id, student_id)
    except MissingEntry:
        return None
    wanted = set(notebooks)
    return [
        {"notebook": nb.name, "score": float(nb.score), "max_score": float(nb.max_score)}
        for nb in sorted(submission.notebooks, key=lambda nb: nb.name)
        if nb.name in wanted
    ]


def assignment_duedate(db_url: str, course_id: str, assignment_id: str) -> dt.datetime | None:
    """The gradebook's due date for the assignment (naive UTC, as nbgrader keeps it)."""
    from nbgrader.api import MissingEntry

    if not gradebook_exists(db_url):
        return None
    with open_gradebook(db_url, course_id) as gb:
        try:
            return gb.find_assignment(assignment_id).duedate
        except MissingEntry:
            return None


def sync_students(
    db_url: str, course_id: str, members: Iterable[dict[str, Any]], only: set[str] | None = None
) -> list[str]:
    """Write the roster's students (those in ``only``, when given) into the gradebook; the
    ids written. A field the roster leaves empty keeps what the gradebook has."""
    students = [
        m
        for m in members
        if m.get("role", "student") == "student" and (only is None or m["username"] in only)
    ]
    if not students:
        return []
    from nbgrader.api import Student

    names = list(dict.fromkeys(m["username"] for m in students))
    with open_gradebook(db_url, course_id) as gb:
        # What ``update_or_create_student`` does (this gradebook has no authenticator), in
        # one transaction: it commits once per student, 4 s for 2000 on a local disk and
        # 2 s again on every later collect (bench.collect_cache --gradebook).
        known: dict[str, Any] = {}
        for start in range(0, len(names), _IN_BATCH):
            chunk = names[start : start + _IN_BATCH]
            known.update((s.id, s) for s in gb.db.query(Student).filter(Student.id.in_(chunk)))
        try:
            for member in students:
                student = known.get(member["username"])
                if student is None:
                    student = known[member["username"]] = Student(id=member["username"])
                    gb.db.add(student)
                for key, column in STUDENT_FIELDS.items():
                    if member.get(key):
                        setattr(student, column, member[key])
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise
    return [m["username"] for m in students]
