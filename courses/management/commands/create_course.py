from __future__ import annotations

from typing import Any

from courses import services

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = "Create a course; its id is nbgrader's course_id."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("course_id", help="nbgrader course_id: letters, digits, _ - .")
        parser.add_argument("--title", default="", help="a human title")
        parser.add_argument(
            "--instructor",
            action="append",
            default=[],
            metavar="USER",
            help="JupyterHub user name of an instructor (repeatable); created if new",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        course = services.create_course(
            code=options["course_id"], title=options["title"], instructors=options["instructor"]
        )
        who = ", ".join(options["instructor"]) or "no instructors yet"
        self.stdout.write(f"Created course {course.code} ({who}).")
