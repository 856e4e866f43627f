"""manage.py export_grades: write a course's scores for Canvas's gradebook import or as CSV."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from courses import gradeexport

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = (
        "Write a course's scores (sent with released feedback) as a Canvas gradebook import "
        "file or as CSV; a missing score is a blank cell."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course_id", help="the course's nbgrader course_id")
        parser.add_argument(
            "assignments", nargs="*", metavar="ASSIGNMENT", help="assignment ids (default: all)"
        )
        parser.add_argument("--format", choices=gradeexport.FORMATS, default=gradeexport.CANVAS)
        parser.add_argument(
            "-o", "--output", default="-", help="the file to write (default: standard output)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        text = gradeexport.export_grades(
            course=course, assignments=options["assignments"], format=options["format"]
        )
        if not self.write_private(options["output"], text):
            return
        self.stderr.write(f"Wrote the grades of {course.code} to {options['output']}.")
