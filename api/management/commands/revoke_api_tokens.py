"""``manage.py revoke_api_tokens USER``: revoke every API token of a user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.tokens import revoke_api_tokens


class Command(BaseCommand):
    help = "Revoke every API token of USER; requests with them get 401 from now on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        count = revoke_api_tokens(user=user)
        self.stdout.write(f"Revoked {count} API token{'s' if count != 1 else ''} of {username!r}.")
