"""``manage.py sync_hub_groups``: course rosters from JupyterHub groups, for everyone."""

from __future__ import annotations

from typing import Any

from courses.management.commands._base import ExchangeCommand
from hub.groups import sync_hub_groups


class Command(ExchangeCommand):
    help = (
        "Give the members of the hub groups nbgrader-<course> and formgrade-<course> the role "
        "of student and instructor in that course (existing courses; roles are only added or "
        "raised). Needs JUPYTERHUB_API_URL and a service token with list:groups, read:groups."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--dry-run", action="store_true", help="show, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        changes = sync_hub_groups(dry_run=options["dry_run"])
        verb = "would become" if options["dry_run"] else "is now"
        for username, code, role in changes:
            self.stdout.write(f"{username} {verb} {role} in {code}.")
        self.stdout.write(
            f"{len(changes)} roster changes{' (dry run)' if options['dry_run'] else ''}."
        )
