from __future__ import annotations

from typing import Any

from courses import services

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = "Remove a user from a course. Their submissions are kept."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("course_id")
        parser.add_argument("user", help="JupyterHub user name")

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        services.remove_member(course=course, username=options["user"])
        self.stdout.write(f"Removed {options['user']} from {course.code}.")
