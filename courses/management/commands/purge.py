"""manage.py purge: delete a course's submissions at the end of a term (audited)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from courses import removal
from courses.timestamps import format_timestamp, parse_timestamp

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Delete a course's submissions and their feedback (of one assignment, made before a "
        "date); assignments, releases and the roster stay. Audited; the files' bytes are "
        "freed by the next gc_blobs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course_id")
        parser.add_argument("--assignment", help="only this assignment's submissions")
        parser.add_argument(
            "--before",
            help="only submissions made before this time (ISO 8601 or nbgrader's format; UTC "
            "unless a zone is given)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        before = None
        if options["before"]:
            try:
                before = parse_timestamp(options["before"])
            except ValueError as exc:
                raise CommandError(f"--before: {exc}") from exc
        summary = removal.purge_submissions(
            actor=None,
            course=course,
            assignment_code=options["assignment"],
            before=before,
            dry_run=options["dry_run"],
        )
        scope = f"assignment {options['assignment']} of " if options["assignment"] else ""
        when = f" made before {format_timestamp(before)}" if before else ""
        verb = "Dry run: would delete" if summary.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {summary.submissions} submission(s) of {summary.students} student(s) to "
            f"{summary.assignments} assignment(s) in {scope}{course.code}{when}, with "
            f"{summary.feedback} feedback, {summary.bytes} bytes"
            + ("." if summary.dry_run else "; run gc_blobs to free the storage.")
        )
