"""``manage.py create_api_token USER``: print a new API token for a user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.tokens import create_api_token
from courses import services
from courses.exceptions import ExchangeError


class Command(BaseCommand):
    help = (
        "Print a new API token for USER (only its hash is stored, so copy it now). "
        "Use it as 'Authorization: token <token>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create the user if there is none with that name.",
        )
        parser.add_argument(
            "--staff",
            action="store_true",
            help="Also make the user a site admin (staff), who may create and delete courses.",
        )

    def handle(self, *args: Any, username: str, create_user: bool, staff: bool, **options: Any):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(
                    f"There is no user {username!r}; pass --create-user to create it."
                )
            try:
                user = services.get_or_create_user(username)
            except ExchangeError as exc:
                raise CommandError(exc.detail) from exc
            self.stderr.write(f"Created user {username!r}.")
        if not user.is_active:
            raise CommandError(f"The account {username!r} is disabled.")
        if staff and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            self.stderr.write(f"{username!r} is now a site admin.")
        # The token alone on stdout, so scripts can capture it.
        self.stdout.write(create_api_token(user=user))
