"""``manage.py link_hub_user USER``: let the JupyterHub user of the same name use an account
made on the exchange itself (docs/security.md, Accounts)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts import link_hub_user


class Command(BaseCommand):
    help = (
        "Link the account USER, made on the exchange itself (createsuperuser, "
        "create_api_token --staff, a password), to the JupyterHub user of the same name, who "
        "may then sign in as it. Only when both are the same person."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"There is no user {username!r}; a hub user gets an account at first sign-in."
            )
        link_hub_user(user)
        self.stdout.write(f"The JupyterHub user {username!r} may now sign in as {username!r}.")
