"""manage.py import_roster: add, update (and with --sync remove) a course's members from a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses import roster
from courses.models import Membership

from ._base import ExchangeCommand

SHOWN = 30


def shorten(names: list[str]) -> str:
    """A list of names for the terminal: the first few, then how many more."""
    if len(names) <= SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:SHOWN])} and {len(names) - SHOWN} more"


class Command(ExchangeCommand):
    help = (
        "Import a roster into a course from nbgrader's student CSV (id,first_name,last_name,"
        "email) or a Canvas Gradebook / SIS users export. One transaction: a file with a bad "
        "row changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course_id", help="the course's nbgrader course_id")
        parser.add_argument("file", help="the CSV file ('-' reads standard input)")
        parser.add_argument(
            "--role",
            choices=Membership.Role.values,
            default=Membership.Role.STUDENT,
            help="the role every person in the file gets (default: student)",
        )
        parser.add_argument(
            "--format",
            choices=roster.FORMATS,
            help="the file's format (default: detected from the header)",
        )
        parser.add_argument(
            "--login-column",
            help="Canvas only: the column holding JupyterHub user names "
            "(default: EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN, 'SIS Login ID')",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="also remove members with this role who are not in the file "
            "(their submissions are kept)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        try:
            if options["file"] == "-":
                data: str | bytes = self.stdin_bytes()
            else:
                data = Path(options["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from exc
        try:
            rows = roster.parse_roster(
                data, format=options["format"], login_column=options["login_column"]
            )
            summary = roster.import_roster(
                course=course,
                rows=rows,
                role=options["role"],
                sync=options["sync"],
                dry_run=options["dry_run"],
            )
        except roster.RosterError as exc:
            for line, problem in exc.problems:
                self.stderr.write(f"{options['file']}:{line}: {problem}")
            raise CommandError(
                f"{len(exc.problems)} bad row(s) in {options['file']}; nothing was changed."
            ) from exc
        prefix = "Would change (dry run, nothing changed)" if summary.dry_run else "Imported"
        self.stdout.write(f"{prefix} {course.code} {options['role']}s: {summary.counts()}.")
        for label, names in (
            ("added", summary.added),
            ("updated", summary.updated),
            ("removed", summary.removed),
        ):
            if names:
                self.stdout.write(f"  {label}: {shorten(names)}")
        if summary.removed_with_submissions:
            self.stdout.write(
                "  removed members whose submissions are kept: "
                + shorten(summary.removed_with_submissions)
            )

    def stdin_bytes(self) -> bytes:
        import sys

        return sys.stdin.buffer.read()
