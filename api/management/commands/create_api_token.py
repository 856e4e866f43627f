"""``manage.py create_api_token USER``: print a new API token for a user."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from api.tokens import NEVER, create_api_token, default_expiry
from courses import services, site_admins
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
        parser.add_argument(
            "--expires",
            metavar="WHEN",
            help=(
                "When the token stops working: a lifetime (90d, 12h, 30m), a UTC date "
                "(2027-01-31) or 'never'. Default: EXCHANGE_API_TOKEN_DAYS days "
                f"(now {settings.EXCHANGE_API_TOKEN_DAYS})."
            ),
        )

    def handle(
        self,
        *args: Any,
        username: str,
        create_user: bool,
        staff: bool,
        expires: str | None = None,
        **options: Any,
    ) -> None:
        expires_at = default_expiry() if expires is None else parse_expiry(expires)
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
        if staff and site_admins.set_staff(user=user, staff=True):
            self.stderr.write(f"{username!r} is now a site admin.")
        token = create_api_token(user=user, expires_at=expires_at)
        if expires_at is None:
            self.stderr.write("The token never expires; revoke it with revoke_api_tokens.")
        else:
            self.stderr.write(f"The token expires on {expires_at:%Y-%m-%d %H:%M} UTC.")
        # The token alone on stdout, so scripts can capture it.
        self.stdout.write(token)


_LIFETIME = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_expiry(raw: str) -> dt.datetime | None:
    """``90d``/``12h``/``30m`` from now, a UTC date or date-time, or ``never`` (None)."""
    text = raw.strip().lower()
    if text == "never":
        return NEVER
    match = _LIFETIME.match(text)
    if match:
        amount = int(match.group(1))
        if amount < 1:
            raise CommandError(f"--expires {raw}: the lifetime must be at least one unit.")
        return timezone.now() + dt.timedelta(**{_UNITS[match.group(2)]: amount})
    try:
        when = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--expires {raw!r}: expected a lifetime (90d, 12h, 30m), a date (2027-01-31) "
            "or 'never'."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when <= timezone.now():
        raise CommandError(f"--expires {raw}: that is in the past.")
    return when
