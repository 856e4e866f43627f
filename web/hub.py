"""Logging in through JupyterHub: an OAuth2 backend for social-auth, the pipeline step that
maps a hub user to a local account, and course rosters from hub groups.

JupyterHub is an OAuth2 provider for its services: the browser is sent to the hub's
``/hub/api/oauth2/authorize`` (relative to the hub's public URL, usually on the same host
behind the same proxy), the service exchanges the code at ``<JUPYTERHUB_API_URL>/oauth2/token``
with its client id and its API token as the secret, and asks ``<JUPYTERHUB_API_URL>/user``
who the token belongs to. The redirect URI must be exactly the one the hub registered
(``JUPYTERHUB_OAUTH_CALLBACK_URL``), which may be a path without a host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from social_core.backends.oauth import BaseOAuth2

from courses import services
from courses.exceptions import ExchangeError
from courses.models import Course, Membership

logger = logging.getLogger(__name__)

Role = Membership.Role
# nbgrader's multi-course convention on JupyterHub.
GROUP_ROLES = (("formgrade-", Role.INSTRUCTOR), ("nbgrader-", Role.STUDENT))
RANK = {Role.STUDENT: 0, Role.GRADER: 1, Role.INSTRUCTOR: 2}


class JupyterHubOAuth2(BaseOAuth2):
    """JupyterHub's OAuth2 provider, configured from the service's standard environment."""

    name = "jupyterhub"
    ID_KEY = "name"
    ACCESS_TOKEN_METHOD = "POST"
    # The hub compares the redirect URI exactly: no state appended to it.
    REDIRECT_STATE = False
    STATE_PARAMETER = True
    EXTRA_DATA: list[str] = []

    def authorization_url(self) -> str:
        return settings.EXCHANGE_HUB_URL + "hub/api/oauth2/authorize"

    def access_token_url(self) -> str:
        return settings.JUPYTERHUB_API_URL + "/oauth2/token"

    def get_redirect_uri(self, state: str | None = None) -> str:
        return settings.JUPYTERHUB_OAUTH_CALLBACK_URL or str(self.redirect_uri)

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self.get_json(
            settings.JUPYTERHUB_API_URL + "/user",
            headers={"Authorization": f"token {access_token}"},
        )

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        return {"username": response["name"]}


def user_from_hub(
    backend: Any, details: dict[str, Any], response: dict[str, Any], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """Pipeline step: the local account named exactly as the hub user (made on first login),
    with staff status and group roster applied as the settings say."""
    user = account_for_hub_user(
        response["name"], admin=response.get("admin"), groups=response.get("groups")
    )
    return {"user": user, "is_new": False}


def account_for_hub_user(
    name: str, *, admin: bool | None = None, groups: Iterable[str] | None = None
) -> AbstractBaseUser:
    """The local user of a hub user, created on first sight. Hub admins become staff (and
    stop being staff, superusers excepted) when EXCHANGE_HUB_ADMINS_ARE_STAFF is on and the
    hub said whether they are admins; hub groups are applied when EXCHANGE_HUB_GROUP_ROSTER
    is on."""
    User = get_user_model()
    try:
        with transaction.atomic():
            user, _ = User.objects.get_or_create(username=name)
    except IntegrityError:  # two first logins of a new user at once
        user = User.objects.get(username=name)
    if settings.EXCHANGE_HUB_ADMINS_ARE_STAFF and admin is not None and not user.is_superuser:
        if user.is_staff != bool(admin):
            user.is_staff = bool(admin)
            user.save(update_fields=["is_staff"])
    if settings.EXCHANGE_HUB_GROUP_ROSTER and groups is not None:
        apply_hub_groups(user, groups)
    return user


def roles_from_groups(groups: Iterable[str]) -> dict[str, str]:
    """Course code -> role named by nbgrader's group convention (instructor wins)."""
    roles: dict[str, str] = {}
    for group in groups:
        for prefix, role in GROUP_ROLES:
            if group.startswith(prefix) and len(group) > len(prefix):
                code = group[len(prefix) :]
                if RANK[role] > RANK.get(roles.get(code, ""), -1):
                    roles[code] = role
    return roles


def apply_hub_groups(
    user: AbstractBaseUser, groups: Iterable[str], *, dry_run: bool = False
) -> list[tuple[str, str]]:
    """Give the user the roles their hub groups name, in courses that exist. Memberships
    are added or raised, never lowered or removed: a role set by hand (a grader) stays.
    Returns the (course, role) changes made, or that would be made with ``dry_run``."""
    wanted = roles_from_groups(groups)
    if not wanted:
        return []
    courses = {c.code: c for c in Course.objects.filter(code__in=wanted)}
    current = dict(
        Membership.objects.filter(user=user, course__code__in=wanted).values_list(
            "course__code", "role"
        )
    )
    changes = []
    for code, role in sorted(wanted.items()):
        course = courses.get(code)
        have = current.get(code)
        if course is None or (have is not None and RANK[have] >= RANK[role]):
            continue
        changes.append((code, role))
        if dry_run:
            continue
        try:
            services.add_member(course=course, username=user.get_username(), role=role)
        except ExchangeError as exc:  # pragma: no cover - add_member as operator does not refuse
            logger.warning("Could not apply hub group role %s in %s: %s", role, code, exc)
    return changes
