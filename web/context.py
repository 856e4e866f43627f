"""Template context shared by every page: the hub's home and how people log in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, Any]:
    hub = settings.EXCHANGE_HUB_LOGIN
    return {
        "hub_login": hub,
        "hub_home_url": settings.EXCHANGE_HUB_URL + "hub/home" if hub else "",
    }
