from __future__ import annotations

from typing import Any

from courses import services
from courses.models import Membership

from ._base import ExchangeCommand


class Command(ExchangeCommand):
    help = "Add a user to a course with a role, or change their role. The user is created if new."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("course_id")
        parser.add_argument("user", help="JupyterHub user name")
        parser.add_argument("--role", required=True, choices=Membership.Role.values)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        course = self.get_course(options["course_id"])
        membership = services.add_member(
            course=course,
            username=options["user"],
            role=options["role"],
            first_name=options["first_name"],
            last_name=options["last_name"],
            email=options["email"],
        )
        self.stdout.write(f"{membership.user.username} is {membership.role} in {course.code}.")
