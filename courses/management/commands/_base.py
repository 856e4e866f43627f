"""What every exchange command shares: ExchangeError becomes a CommandError (exit code 1)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from courses.exceptions import ExchangeError
from courses.filemodes import write_private_text
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

    def write_private(self, output: str, text: str) -> bool:
        """Write ``text`` to standard output (``-``) or to the file ``output``, readable by the
        operator only (exports hold names, emails and scores); True when a file was written."""
        if output == "-":
            self.stdout.write(text, ending="")
            return False
        try:
            write_private_text(output, text)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
        return True
