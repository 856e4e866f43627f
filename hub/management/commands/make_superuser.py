"""manage.py make_superuser: the admin site for one person, whatever the hub says."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses import site_admins
from courses.exceptions import ExchangeError
from hub.accounts import link_hub_user


class Command(BaseCommand):
    help = (
        "Make an account a superuser of the admin site (made without a password if it does "
        "not exist yet), linked to the JupyterHub user of the same name, who signs in as it. "
        "Unlike createsuperuser, works for an account a hub sign-in already made. --revoke "
        "takes superuser away."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the JupyterHub user name")
        parser.add_argument("--revoke", action="store_true", help="no longer a superuser")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = site_admins.make_superuser(
                username=options["username"], revoke=options["revoke"]
            )
        except ExchangeError as exc:
            raise CommandError(exc.detail) from exc
        if options["revoke"]:
            self.stdout.write(f"{user} is no longer a superuser.")
        else:
            # The hub user of that name is this person (so no local-account refusal).
            link_hub_user(user)
            self.stdout.write(f"{user} is a superuser: the admin site, every course.")
