"""Who is calling: a JupyterHub API token, a standalone API token, or a browser session.

DRF tries the classes in ``settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` in
order: JupyterHub token, API token, session. Both token classes read
``Authorization: token <T>`` or ``Authorization: Bearer <T>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from social_django.models import UserSocialAuth

from courses import site_admins
from courses.exceptions import Unavailable
from courses.hub_groups import apply_hub_groups

from .tokens import InvalidToken, hash_token, is_api_token, user_for_api_token

logger = logging.getLogger(__name__)

KEYWORDS = ("token", "bearer")
HUB_TIMEOUT_SECONDS = 5
CACHE_PREFIX = "hub-token:"


def token_from_header(request: Request) -> str | None:
    """The token of an ``Authorization: token|Bearer <T>`` header, or None without one."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if not parts or parts[0].lower() not in KEYWORDS:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(
            "The Authorization header must be 'token <token>' or 'Bearer <token>'."
        )
    return parts[1]


@dataclass(frozen=True)
class HubIdentity:
    """What JupyterHub says about the owner of a token."""

    name: str
    admin: bool = False
    scopes: tuple[str, ...] = field(default_factory=tuple)
    groups: tuple[str, ...] = field(default_factory=tuple)

    def may_access_service(self) -> bool:
        """Whether the token carries ``access:services`` for this service, as JupyterHub's
        own services require (single-user servers' tokens do not, unless the hub grants it:
        see docs/jupyterhub.md)."""
        name = settings.JUPYTERHUB_SERVICE_NAME
        wanted = {"access:services"} | ({f"access:services!service={name}"} if name else set())
        return bool(wanted & set(self.scopes))


def ask_hub(token: str) -> HubIdentity | None:
    """Ask JupyterHub's ``/user`` who owns the token: their identity, or None if the hub
    does not accept the token. Unavailable (503) when the hub cannot be asked."""
    url = f"{settings.JUPYTERHUB_API_URL}/user"
    try:
        response = requests.get(
            url, headers={"Authorization": f"token {token}"}, timeout=HUB_TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        logger.warning("JupyterHub at %s did not answer: %s", url, exc)
        raise Unavailable(
            "JupyterHub, which checks your token, did not answer; try again in a minute."
        ) from exc
    if response.status_code in (401, 403, 404):
        return None
    if response.status_code != 200:
        logger.warning("JupyterHub at %s answered %s", url, response.status_code)
        raise Unavailable(
            f"JupyterHub, which checks your token, answered with an error "
            f"({response.status_code}); try again in a minute."
        )
    try:
        model: dict[str, Any] = response.json()
        name = model["name"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable("JupyterHub's answer about your token could not be read.") from exc
    if model.get("kind", "user") != "user" or not isinstance(name, str) or not name:
        return None
    return HubIdentity(
        name=name,
        admin=bool(model.get("admin")),
        scopes=tuple(model.get("scopes") or ()),
        groups=tuple(model.get("groups") or ()),
    )


def hub_identity(token: str) -> HubIdentity | None:
    """``ask_hub``, cached for EXCHANGE_HUB_TOKEN_CACHE_SECONDS under the token's SHA-256."""
    key = CACHE_PREFIX + hash_token(token)
    cached = cache.get(key)
    if cached is not None:
        return HubIdentity(**cached) if cached else None
    identity = ask_hub(token)
    timeout = settings.EXCHANGE_HUB_TOKEN_CACHE_SECONDS
    if timeout:
        value = (
            {
                "name": identity.name,
                "admin": identity.admin,
                "scopes": identity.scopes,
                "groups": identity.groups,
            }
            if identity
            else {}
        )
        cache.set(key, value, timeout)
    return identity


class LocalAccountConflict(Exception):
    """A hub user whose name is taken by an account made on the exchange itself."""

    def __init__(self, name: str) -> None:
        super().__init__(
            _(
                "The exchange account %(name)s was made on the exchange itself (a site admin "
                "or an account with a password), so the JupyterHub user %(name)s may not use "
                "it. The exchange's administrators can link the two (manage.py "
                "link_hub_user; docs/security.md, Accounts)."
            )
            % {"name": repr(name)}
        )


# The social-auth provider name under which hub users are linked to local accounts, by
# browser sign-in and by token alike.
HUB_PROVIDER = "jupyterhub"


def _is_local_account(user: AbstractBaseUser) -> bool:
    """Made on the exchange rather than for a hub user: a password, or site admin rights
    (createsuperuser, create_api_token --staff, the admin site). Accounts that rosters make
    for hub names have neither."""
    has_password = bool(user.password) and user.has_usable_password()
    return has_password or user.is_staff or user.is_superuser  # type: ignore[attr-defined]


def link_hub_user(user: AbstractBaseUser) -> None:
    """Mark ``user`` as the hub user of the same name (idempotent)."""
    UserSocialAuth.objects.get_or_create(
        provider=HUB_PROVIDER, uid=user.get_username(), defaults={"user": user}
    )


def user_for_hub_identity(identity: HubIdentity) -> AbstractBaseUser:
    """The local user of a hub user, created on first sight; hub admins (with
    EXCHANGE_HUB_ADMINS_ARE_STAFF) and members of EXCHANGE_HUB_STAFF_GROUP become IT staff
    with every admin permission, and stop being staff when the hub says so (superusers
    excepted: courses/site_admins.py); with EXCHANGE_HUB_GROUP_ROSTER on, the user's hub
    groups give course roles. Shared by API tokens and the browser login through the hub.

    An account of the same name that was made on the exchange itself (a password, site
    admin rights) and never linked to the hub is not handed over: LocalAccountConflict."""
    User = get_user_model()
    # get_or_create copes with two first requests of a new user at once.
    user, created = User.objects.get_or_create(username=identity.name)
    linked = UserSocialAuth.objects.filter(
        provider=HUB_PROVIDER, uid=identity.name, user=user
    ).exists()
    if not linked:
        if not created and _is_local_account(user):
            logger.warning(
                "Refused JupyterHub user %r: a local account of that name exists", identity.name
            )
            raise LocalAccountConflict(identity.name)
        link_hub_user(user)
    if site_admins.hub_staff_managed():
        staff = site_admins.is_hub_staff(admin=identity.admin, groups=identity.groups)
        site_admins.apply_hub_staff(user=user, staff=staff)
    if settings.EXCHANGE_HUB_GROUP_ROSTER:
        apply_hub_groups(user, identity.groups)
    return user


class JupyterHubTokenAuthentication(BaseAuthentication):
    """A JupyterHub API token, checked with the hub; None without a token or a hub."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, str] | None:
        token = token_from_header(request)
        if token is None or is_api_token(token) or not settings.JUPYTERHUB_API_URL:
            return None
        identity = hub_identity(token)
        if identity is None:
            # Not a hub token: the API token class has the last word.
            return None
        if settings.EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE and not identity.may_access_service():
            raise exceptions.AuthenticationFailed(
                "JupyterHub did not give this token access to the exchange (it lacks the "
                f"scope access:services!service={settings.JUPYTERHUB_SERVICE_NAME or '<name>'}). "
                "If it is your server's token, ask the hub's administrators to add that scope "
                "to the user and server roles (hub.loadRoles in Zero to JupyterHub, "
                "c.JupyterHub.load_roles otherwise; see docs/jupyterhub.md), then restart your "
                "server."
            )
        try:
            user = user_for_hub_identity(identity)
        except LocalAccountConflict as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        if not user.is_active:
            raise exceptions.AuthenticationFailed(f"The account {user} is disabled.")
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "token"


class ApiTokenAuthentication(BaseAuthentication):
    """A standalone API token made by ``manage.py create_api_token``."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, str] | None:
        token = token_from_header(request)
        if token is None:
            return None
        if not is_api_token(token):
            raise exceptions.AuthenticationFailed(
                "The token is not valid: it is neither this exchange's own (nbx_...) nor one "
                "JupyterHub accepts."
                if settings.JUPYTERHUB_API_URL
                else "The token is not valid: the exchange does not know it."
            )
        try:
            return user_for_api_token(token), token
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request: Request) -> str:
        return "token"
