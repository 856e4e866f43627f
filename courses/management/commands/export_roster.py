"""manage.py export_roster: write a course's roster as nbgrader or Canvas CSV."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from courses import roster, roster_export
from courses.models import Membership

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = "Write a course's roster as CSV (nbgrader's student CSV or Canvas columns)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course_id", help="the course's nbgrader course_id")
        parser.add_argument(
            "-o", "--output", default="-", help="the file to write (default: standard output)"
        )
        parser.add_argument(
            "--role",
            choices=[*Membership.Role.values, "all"],
            default=Membership.Role.STUDENT,
            help="whose rows to write (default: student)",
        )
        parser.add_argument("--format", choices=roster.FORMATS, default=roster.NBGRADER)

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        role = None if options["role"] == "all" else options["role"]
        text = roster_export.export_roster(course=course, role=role, format=options["format"])
        if not self.write_private(options["output"], text):
            return
        count = text.count("\n") - 1
        self.stderr.write(f"Wrote {count} row(s) of {course.code} to {options['output']}.")
