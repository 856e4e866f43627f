"""Reading an ngshare 0.5/0.6 installation: its database and its storage directory.

ngshare (``ngshare/database/database.py``) keeps, in SQLAlchemy tables read here with
plain SQL (sqlite3 or psycopg, no SQLAlchemy needed):

- ``courses`` (``_id``, ``id`` = course id), ``users`` (``id`` = JupyterHub name);
- ``instructor_assoc_table`` / ``student_assoc_table`` (``left_id`` user, ``right_id``
  course id, ``first_name``, ``last_name``, ``email``);
- ``assignments`` (``_id``, ``id``, ``course_id`` -> ``courses._id``);
- ``submissions`` (``_id``, ``assignment_id``, ``timestamp`` in UTC without a zone,
  ``student_id``);
- ``files`` (``_id``, ``filename`` = path in the bundle, ``actual_name`` = name under the
  storage directory), joined to their owner by ``assignment_files_assoc_table``,
  ``submission_files_assoc_table`` and ``feedback_files_assoc_table``
  (``left_id`` owner, ``right_id`` file).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .common import CourseSource, Item, Person, SourceFile
from .fs import TIMESTAMP_FILE, _open


class SourceError(Exception):
    """The installation cannot be read at all (a sentence for the operator)."""


def connect(database: str) -> Any:
    """A DB-API connection to ngshare's database, from its SQLAlchemy URL."""
    parsed = urlparse(database)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "sqlite":
        # sqlite:////abs/path (four slashes) or sqlite:///relative/path
        path = database.split("://", 1)[1][1:]
        if not path or not Path(path).is_file():
            raise SourceError(f"There is no SQLite database at {path or database!r}.")
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    if scheme in ("postgresql", "postgres"):
        import psycopg

        url = database.replace(parsed.scheme + "://", "postgresql://", 1)
        try:
            return psycopg.connect(url)
        except psycopg.Error as exc:
            raise SourceError(f"Cannot connect to ngshare's database: {exc}") from exc
    raise SourceError(
        f"Database URL {database!r} is neither sqlite:///... nor postgresql://...; "
        "those are the databases ngshare runs on."
    )


def _rows(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    if not isinstance(conn, sqlite3.Connection):
        sql = sql.replace("?", "%s")
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _utc(value: Any) -> dt.datetime:
    """ngshare's timestamps: UTC without a zone (a string in SQLite, a datetime in PostgreSQL)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{value!r} is not a time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def read(*, database: str, storage: Path, courses: list[str] | None) -> list[CourseSource]:
    """Every course (or the ones named) of the installation."""
    if not storage.is_dir():
        raise SourceError(f"{storage} is not a directory.")
    conn = connect(database)
    try:
        try:
            known = _rows(conn, "SELECT _id, id FROM courses ORDER BY id")
        except Exception as exc:  # sqlite3.Error or psycopg.Error: not an ngshare database
            raise SourceError(f"{database} does not hold ngshare's tables: {exc}") from exc
        by_code = {code: pk for pk, code in known}
        missing = sorted(set(courses or ()) - set(by_code))
        if missing:
            raise SourceError(f"No course {', '.join(missing)} in ngshare's database.")
        return [_read_course(conn, storage, by_code[code], code) for code in (courses or by_code)]
    finally:
        conn.close()


def _files(
    conn: Any, storage: Path, table: str, owners: list[Any]
) -> dict[str, list[tuple[str, str]]]:
    """Owner id (as text) -> [(path in bundle, file in storage)] for one association table.

    ngshare declares the tables' ``left_id`` as TEXT though it holds the owner's integer id,
    so ids are compared as text.
    """
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not owners:
        return found
    marks = ",".join("?" * len(owners))
    for owner, filename, actual in _rows(
        conn,
        f"SELECT a.left_id, f.filename, f.actual_name FROM {table} a "
        f"JOIN files f ON f._id = a.right_id WHERE a.left_id IN ({marks}) ORDER BY f.filename",
        [str(owner) for owner in owners],
    ):
        found[str(owner)].append((filename, actual))
    return found


def _source_files(
    files: list[tuple[str, str]], storage: Path, *, leave_out: tuple[str, ...] = ()
) -> list[SourceFile]:
    result = []
    for filename, actual in files:
        if filename in leave_out:
            continue
        if not actual or "/" in actual or actual in (".", ".."):
            raise ValueError(f"file {filename!r} has no usable name in storage ({actual!r})")
        result.append(SourceFile(path=filename, open=partial(_open, storage / actual)))
    return result


def _read_course(conn: Any, storage: Path, pk: int, code: str) -> CourseSource:
    source = CourseSource(code=code)
    for table, people in (
        ("instructor_assoc_table", source.instructors),
        ("student_assoc_table", source.students),
    ):
        for user, first, last, email in _rows(
            conn,
            f"SELECT left_id, first_name, last_name, email FROM {table} "
            "WHERE right_id = ? ORDER BY left_id",
            [code],
        ):
            people[user] = Person(first or "", last or "", email or "")
    assignments = _rows(conn, "SELECT _id, id FROM assignments WHERE course_id = ?", [pk])
    release_files = _files(
        conn, storage, "assignment_files_assoc_table", [a for a, _ in assignments]
    )
    names = dict(assignments)
    now = dt.datetime.now(dt.timezone.utc)
    for a_pk, a_code in sorted(assignments, key=lambda row: row[1]):
        where = f"ngshare {code}/{a_code} release"
        try:
            files = _source_files(release_files.get(str(a_pk), []), storage)
        except ValueError as exc:
            source.skip(where, str(exc))
            continue
        # ngshare does not record when an assignment was released.
        source.releases.append(
            Item(kind="release", assignment=a_code, files=files, where=where, at=now)
        )
    submissions = (
        _rows(
            conn,
            "SELECT _id, assignment_id, timestamp, student_id FROM submissions "
            f"WHERE assignment_id IN ({','.join('?' * len(names))}) ORDER BY _id",
            list(names),
        )
        if names
        else []
    )
    ids = [row[0] for row in submissions]
    submitted = _files(conn, storage, "submission_files_assoc_table", ids)
    feedback = _files(conn, storage, "feedback_files_assoc_table", ids)
    for s_pk, a_pk, raw_stamp, student in submissions:
        where = f"ngshare {code}/{names[a_pk]} submission {s_pk} by {student}"
        try:
            timestamp = _utc(raw_stamp)
            files = _source_files(
                submitted.get(str(s_pk), []), storage, leave_out=(TIMESTAMP_FILE,)
            )
            feedback_files = _source_files(feedback.get(str(s_pk), []), storage)
        except ValueError as exc:
            source.skip(where, str(exc))
            continue
        if student not in source.instructors:
            source.students.setdefault(student, Person())
        source.submissions.append(
            Item(
                kind="submission",
                assignment=names[a_pk],
                student=student,
                timestamp=timestamp,
                files=files,
                where=where,
            )
        )
        if feedback_files:
            source.feedback.append(
                Item(
                    kind="feedback",
                    assignment=names[a_pk],
                    student=student,
                    timestamp=timestamp,
                    files=feedback_files,
                    where=f"feedback on {where}",
                    at=now,
                )
            )
    return source
