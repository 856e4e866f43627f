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

from typing import Any

from django.conf import settings
from social_core.backends.oauth import BaseOAuth2

from api.authentication import HubIdentity, user_for_hub_identity


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
    with staff status and the group roster applied as for an API token."""
    identity = HubIdentity(
        name=response["name"],
        admin=bool(response.get("admin")),
        groups=tuple(response.get("groups") or ()),
    )
    return {"user": user_for_hub_identity(identity), "is_new": False}
