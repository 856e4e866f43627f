"""What every exchange command shares: ExchangeError becomes a CommandError (exit code 1)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from courses.exceptions import ExchangeError
from courses.models import Course


class ExchangeCommand(BaseCommand):
    """A thin command: parse arguments, call one service, print a summary."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except ExchangeError as exc:
            raise CommandError(exc.detail) from exc

    @staticmethod
    def get_course(code: str) -> Course:
        course = Course.objects.filter(code=code).first()
        if course is None:
            raise CommandError(f"There is no course {code!r}.")
        return course
