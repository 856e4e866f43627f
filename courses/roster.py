"""Roster import and export: nbgrader's student CSV and Canvas's CSV exports.

``parse_roster`` turns a file into ``RosterRow`` objects (format detected from the header
when not given); ``import_roster`` applies them to a course in one transaction through
``services.add_member`` / ``services.remove_member``. ``courses.roster_export`` writes a
course's roster back out in either format, formula-safe (``courses.csvsafe``), and the import
undoes that quoting so an export reads back unchanged.

Formats:

- nbgrader: the file ``nbgrader db student import`` reads, header ``id`` plus any of
  ``first_name``, ``last_name``, ``email``, ``lms_user_id`` (other columns are ignored).
  ``id`` is the JupyterHub user name.
- canvas: the Gradebook export (``Student, ID, SIS User ID, SIS Login ID, Section, <one column
  per assignment>...``, a "Points Possible" row under the header) and the SIS-format
  ``users.csv`` (``user_id, login_id, first_name, last_name, email, status``). The Gradebook
  export's ``ID`` (Canvas's user id) is kept as the LMS user id. The JupyterHub
  user name is taken from the login column (``SIS Login ID``, or ``login_id``), configurable
  with ``EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN``; ``Student`` holds "Last, First".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from . import services
from .csvsafe import unescape_cell
from .exceptions import BadRequest
from .models import Course, Membership, Submission
from .permissions import Action

User = get_user_model()
Role = Membership.Role

NBGRADER = "nbgrader"
CANVAS = "canvas"
FORMATS = (NBGRADER, CANVAS)

NBGRADER_COLUMNS = ["id", "first_name", "last_name", "email", "lms_user_id"]
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
DEFAULT_CANVAS_LOGIN_COLUMN = "SIS Login ID"
# Canvas Gradebook exports put these pseudo-students under the header.
CANVAS_SKIP_NAMES = {"points possible", "manual posting", "muted"}
# Canvas's built-in "Test Student" (student view) has no SIS login and is not a person.
CANVAS_TEST_STUDENT = {"student, test", "test student"}


class RosterError(BadRequest):
    """A roster file that cannot be applied; ``problems`` lists (line, sentence) per bad row."""

    code = "bad_roster"

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"line {line}: {message}" for line, message in problems)
        super().__init__(f"The roster has {len(problems)} bad row(s), nothing was changed: {lines}")


@dataclass(frozen=True)
class RosterRow:
    """One person in a roster file. ``line`` is the file's line number (1 = header)."""

    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    line: int = 0
    lms_user_id: str = ""


@dataclass
class RosterSummary:
    """What an import did (or, with ``dry_run``, would do); lists of user names."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Removed members who have submissions in the course: the submissions stay.
    removed_with_submissions: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "removed_with_submissions": self.removed_with_submissions,
            "dry_run": self.dry_run,
        }

    def counts(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged"
        )


# --- parsing ------------------------------------------------------------------------------


def canvas_login_column() -> str:
    return getattr(settings, "EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN", DEFAULT_CANVAS_LOGIN_COLUMN)


def _text(data: str | bytes | IO[Any]) -> str:
    if hasattr(data, "read"):
        data = data.read()  # type: ignore[union-attr]
    if isinstance(data, bytes):
        try:
            # Canvas writes a UTF-8 byte order mark; utf-8-sig drops it.
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadRequest(
                f"The roster file is not UTF-8 text (byte {exc.start} cannot be read); "
                "save it as CSV UTF-8 and try again."
            ) from exc
    return data.removeprefix("\ufeff")  # type: ignore[union-attr]


def detect_format(header: list[str]) -> str:
    """nbgrader or canvas, from a CSV header; BadRequest when neither fits."""
    names = {name.strip() for name in header}
    if "id" in names:
        return NBGRADER
    if {"Student", "SIS Login ID"} & names or {"login_id", "user_id"} & names:
        return CANVAS
    raise BadRequest(
        f"Cannot tell the roster format from its header ({', '.join(header) or 'empty'}): "
        "an nbgrader file has an 'id' column, a Canvas export 'Student' and 'SIS Login ID'. "
        "Name the format (nbgrader or canvas)."
    )


def parse_roster(
    data: str | bytes | IO[Any],
    *,
    format: str | None = None,
    login_column: str | None = None,
) -> list[RosterRow]:
    """The rows of a roster file, each with its line number; format detected if not given.

    Rows are not validated here (``import_roster`` reports every bad row at once); a file
    whose header does not fit the format raises BadRequest.
    """
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise BadRequest("The roster file is empty: it has no header line.")
    header = [name.strip() for name in header]
    if format is None:
        format = detect_format(header)
    if format not in FORMATS:
        raise BadRequest(f"Roster format {format!r} is not one of {', '.join(FORMATS)}.")
    if format == NBGRADER:
        return _parse_nbgrader(header, reader)
    return _parse_canvas(header, reader, login_column or canvas_login_column())


def _records(header: list[str], reader: Iterable[list[str]]) -> Iterable[tuple[int, dict]]:
    for number, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue  # blank line
        yield (
            number,
            {
                name: unescape_cell(value.strip())
                for name, value in zip(header, values, strict=False)
            },
        )


def _parse_nbgrader(header: list[str], reader: Iterable[list[str]]) -> list[RosterRow]:
    if "id" not in header:
        raise BadRequest(
            f"An nbgrader roster needs an 'id' column; this header has {', '.join(header)}."
        )
    return [
        RosterRow(
            username=record.get("id", ""),
            first_name=record.get("first_name", ""),
            last_name=record.get("last_name", ""),
            email=record.get("email", ""),
            line=number,
            lms_user_id=record.get("lms_user_id", ""),
        )
        for number, record in _records(header, reader)
    ]


def _parse_canvas(header: list[str], reader: Iterable[list[str]], login: str) -> list[RosterRow]:
    sis_users = "login_id" in header and "Student" not in header
    column = "login_id" if sis_users and login == DEFAULT_CANVAS_LOGIN_COLUMN else login
    if column not in header:
        raise BadRequest(
            f"The Canvas export has no {column!r} column to take user names from; its header "
            f"has {', '.join(header)}. Export with SIS data, or set "
            "EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN to the column holding JupyterHub user names."
        )
    rows = []
    for number, record in _records(header, reader):
        if sis_users:
            first, last = record.get("first_name", ""), record.get("last_name", "")
        else:
            name = record.get("Student", "")
            if name.lower() in CANVAS_SKIP_NAMES or (
                name.lower() in CANVAS_TEST_STUDENT and not record.get(column)
            ):
                continue
            last, _, first = name.partition(",") if "," in name else ("", "", name)
        rows.append(
            RosterRow(
                username=record.get(column, ""),
                first_name=first.strip(),
                last_name=last.strip(),
                email=record.get("email", ""),
                line=number,
                lms_user_id="" if sis_users else record.get("ID", ""),
            )
        )
    return rows


def _as_row(item: RosterRow | Mapping[str, Any], index: int) -> RosterRow:
    if isinstance(item, RosterRow):
        return item
    return RosterRow(
        username=str(item.get("username") or item.get("id") or "").strip(),
        first_name=str(item.get("first_name") or "").strip(),
        last_name=str(item.get("last_name") or "").strip(),
        email=str(item.get("email") or "").strip(),
        line=int(item.get("line") or index),
        lms_user_id=str(item.get("lms_user_id") or "").strip(),
    )


# --- import -------------------------------------------------------------------------------


def _problems(rows: list[RosterRow]) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for row in rows:
        name = row.username
        problem = services.username_problem(name)
        if problem is not None:
            problems.append((row.line, problem))
            if not name:
                continue
        elif any(ch.isspace() for ch in name):
            problems.append((row.line, f"the user name {name!r} has a space"))
        if name in seen:
            problems.append((row.line, f"{name!r} is already on line {seen[name]}"))
        else:
            seen[name] = row.line
        if row.email:
            try:
                validate_email(row.email)
            except ValidationError:
                problems.append((row.line, f"{row.email!r} is not an email address"))
        for what, value in (("first name", row.first_name), ("last name", row.last_name)):
            if len(value) > 150:
                problems.append((row.line, f"the {what} is longer than 150 characters"))
        if len(row.lms_user_id) > 128:
            problems.append((row.line, "the LMS user id is longer than 128 characters"))
    return problems


def _changes(membership: Membership, row: RosterRow) -> bool:
    return any(
        value and getattr(membership, key) != value
        for key, value in (
            ("first_name", row.first_name),
            ("last_name", row.last_name),
            ("email", row.email),
            ("lms_user_id", row.lms_user_id),
        )
    )


def import_roster(
    *,
    course: Course,
    rows: Iterable[RosterRow | Mapping[str, Any]],
    role: str = Role.STUDENT,
    sync: bool = False,
    dry_run: bool = False,
    actor: AbstractBaseUser | None = None,
) -> RosterSummary:
    """Add or update every row as a member with ``role``; with ``sync``, remove the members
    with that role who are not in the rows (their submissions stay).

    One transaction: a bad row (each reported with its line number in RosterError) or any
    failure changes nothing. ``dry_run`` runs the same steps and rolls them back.
    ``actor=None`` is the operator at the command line.
    """
    services.require_course_role(actor, course, Action.MANAGE_ROSTER)
    if role not in Role.values:
        raise BadRequest(f"Role {role!r} is not one of {', '.join(Role.values)}.")
    rows = [_as_row(item, index) for index, item in enumerate(rows, start=1)]
    problems = _problems(rows)
    if problems:
        raise RosterError(problems)
    if sync and not rows:
        raise BadRequest(
            f"The roster has no rows; syncing it would remove every {role} of {course.code}."
        )
    summary = RosterSummary(dry_run=dry_run)
    with transaction.atomic():
        current = {
            m.user.get_username(): m
            for m in Membership.objects.filter(course=course).select_related("user")
        }
        for row in rows:
            membership = current.get(row.username)
            if membership is None:
                summary.added.append(row.username)
            elif membership.role != role or _changes(membership, row):
                summary.updated.append(row.username)
            else:
                summary.unchanged.append(row.username)
                continue
            services.add_member(
                course=course,
                username=row.username,
                role=role,
                actor=actor,
                first_name=row.first_name,
                last_name=row.last_name,
                email=row.email,
                lms_user_id=row.lms_user_id,
            )
        if sync:
            listed = {row.username for row in rows}
            gone = sorted(
                name for name, m in current.items() if m.role == role and name not in listed
            )
            with_submissions = set(
                Submission.objects.filter(
                    assignment__course=course, student__username__in=gone
                ).values_list("student__username", flat=True)
            )
            for name in gone:
                services.remove_member(course=course, username=name, actor=actor)
                summary.removed.append(name)
                if name in with_submissions:
                    summary.removed_with_submissions.append(name)
        if dry_run:
            transaction.set_rollback(True)
    return summary
