"""The viewer's time zone: pages show times in it, and date fields are read in it.

The browser says its zone (``Intl.DateTimeFormat().resolvedOptions().timeZone``) in the
``exchange_tz`` cookie that ``web/static/web/time.js`` sets; this middleware makes it the
active zone of the request, so templates render local times. Without the cookie (first visit,
no JavaScript) the zone is ``settings.TIME_ZONE``, and every form says which zone it reads.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from courses.exceptions import BadRequest

COOKIE = "exchange_tz"


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone called ``name``, or None for no name or an unknown one."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def viewer_zone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    """The zone the viewer's browser named, if it named one the server knows."""
    return zone_named(unquote(request.COOKIES.get(COOKIE, "")))


class ViewerTimezoneMiddleware:
    """Activates the zone named by the viewer's cookie for the pages and the admin site.

    The API is left alone: its timestamps stay in UTC whoever asks."""

    NAMESPACES = frozenset({"web", "admin"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(self, request: HttpRequest, *args: object) -> None:
        match = request.resolver_match
        zone = viewer_zone(request)
        if zone is not None and match is not None and self.NAMESPACES & set(match.namespaces):
            timezone.activate(zone)


def parse_local(value: str, zone_name: str, what: str) -> dt.datetime | None:
    """A form's ``YYYY-MM-DDTHH:MM`` read in the zone the form named; empty is None.

    23:59 typed by an instructor in Europe/Madrid is 23:59 in Madrid (22:59 UTC in winter),
    never 23:59 UTC.
    """
    value = (value or "").strip()
    if not value:
        return None
    zone = zone_named(zone_name)
    if zone is None:
        raise BadRequest(f"Unknown time zone {zone_name!r}.")
    try:
        naive = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"The {what} {value!r} is not a date and time (YYYY-MM-DD HH:MM)."
        ) from None
    if naive.tzinfo is not None:
        # An explicit offset (a script's post) says its own zone.
        return naive
    return naive.replace(tzinfo=zone)


def local_input(value: dt.datetime | None) -> str:
    """A date for a ``datetime-local`` field, in the active zone."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
