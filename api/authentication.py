"""Who is calling: a JupyterHub API token, a standalone API token, or a browser session.

The DRF classes only: who owns a hub token, and the account they get, is ``hub``'s work.

DRF tries the classes in ``settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` in
order: JupyterHub token, API token, session. Both token classes read
``Authorization: token <T>`` or ``Authorization: Bearer <T>``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from hub.accounts import (
    LocalAccountConflict,
    cached_hub_user,
    remember_hub_user,
    user_for_hub_identity,
)
from hub.identity import hub_identity_until

from .tokens import InvalidToken, is_api_token, user_for_api_token

KEYWORDS = ("token", "bearer")


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


class JupyterHubTokenAuthentication(BaseAuthentication):
    """A JupyterHub API token, checked with the hub; None without a token or a hub."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, str] | None:
        token = token_from_header(request)
        if token is None or is_api_token(token) or not settings.JUPYTERHUB_API_URL:
            return None
        user = cached_hub_user(token)
        if user is None:
            user = self._user_from_hub(token)
            if user is None:
                # Not a hub token: the API token class has the last word.
                return None
        if not user.is_active:
            raise exceptions.AuthenticationFailed(f"The account {user} is disabled.")
        return user, token

    def _user_from_hub(self, token: str) -> AbstractBaseUser | None:
        identity, until = hub_identity_until(token)
        if identity is None:
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
        if user.is_active:
            remember_hub_user(token, user, until=until)
        return user

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
