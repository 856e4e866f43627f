"""Signing in through JupyterHub: an OAuth2 backend for social-auth and the pipeline steps
that map a hub user to a local account.

JupyterHub is an OAuth2 provider for its services: the browser is sent to the hub's
``/hub/api/oauth2/authorize`` (relative to the hub's public URL, usually on the same host
behind the same proxy), the service exchanges the code at ``<JUPYTERHUB_API_URL>/oauth2/token``
with its client id and its API token as the secret, and asks ``<JUPYTERHUB_API_URL>/user``
who the token belongs to (through ``hub.client``, read by ``HubIdentity.from_model``). The
redirect URI must be exactly the one the hub registered (``JUPYTERHUB_OAUTH_CALLBACK_URL``),
which may be a path without a host.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import AuthFailed, AuthUnreachableProvider

from courses.exceptions import BadRequest, Unavailable

from . import client
from .accounts import LocalAccountConflict, user_for_hub_identity
from .identity import HubIdentity, UnreadableIdentity

logger = logging.getLogger(__name__)


class JupyterHubOAuth2(BaseOAuth2):
    """JupyterHub's OAuth2 provider, configured from the service's standard environment."""

    name = "jupyterhub"
    ID_KEY = "name"
    ACCESS_TOKEN_METHOD = "POST"
    # The hub compares the redirect URI exactly: no state appended to it.
    REDIRECT_STATE = False
    STATE_PARAMETER = True
    EXTRA_DATA: list[str] = []

    def auth_complete(self, *args: Any, **kwargs: Any) -> Any:
        """The callback's work, with every refusal or silence of the hub turned into an
        authentication failure, which the middleware shows on the sign-in-failed page."""
        try:
            return super().auth_complete(*args, **kwargs)
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else "no"
            logger.warning(
                "JupyterHub refused the sign-in: %s answered %s",
                response.url if response is not None else "?",
                status,
            )
            raise AuthFailed(self, f"JupyterHub answered {status}") from exc
        except client.HubRefused as exc:
            logger.warning("JupyterHub refused to say who signed in: %s", exc)
            raise AuthFailed(self, str(exc)) from exc
        except (requests.RequestException, Unavailable) as exc:
            logger.warning("JupyterHub did not answer the sign-in: %s", exc)
            raise AuthUnreachableProvider(self) from exc
        except (ValueError, KeyError, TypeError) as exc:
            # Logged with its traceback: a mistake of ours would show up here too.
            logger.exception("JupyterHub's answer to the sign-in could not be read")
            raise AuthFailed(self, "JupyterHub's answer could not be read") from exc

    def authorization_url(self) -> str:
        return settings.EXCHANGE_HUB_URL + "hub/api/oauth2/authorize"

    def access_token_url(self) -> str:
        return settings.JUPYTERHUB_API_URL + "/oauth2/token"

    def get_redirect_uri(self, state: str | None = None) -> str:
        return settings.JUPYTERHUB_OAUTH_CALLBACK_URL or str(self.redirect_uri)

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The hub's user model, checked to be one (a name, kind user) before it is used."""
        model = client.get_json("/user", token=access_token, asking="who signed in")
        if HubIdentity.from_model(model) is None:
            raise UnreadableIdentity("JupyterHub's token for the sign-in is not a user's")
        return model

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        return {"username": response["name"]}


def user_from_hub(
    backend: Any, details: dict[str, Any], response: dict[str, Any], *args: Any, **kwargs: Any
) -> dict[str, Any] | HttpResponse:
    """Pipeline step: the local account named exactly as the hub user (made on first login),
    with staff status and the group roster applied as for an API token. A local account of
    that name that is not the hub user's, or a hub name no account may have, ends the sign-in
    on the sign-in-failed page, saying why."""
    identity = HubIdentity.from_model(response)
    assert identity is not None  # user_data let only a user's model through
    try:
        user = user_for_hub_identity(identity)
    except LocalAccountConflict as exc:
        return render(
            backend.strategy.request, "web/login_failed.html", {"reason": str(exc)}, status=403
        )
    except BadRequest as exc:  # a hub name that cannot be an exchange account's
        return render(
            backend.strategy.request, "web/login_failed.html", {"reason": exc.detail}, status=400
        )
    return {"user": user, "is_new": False}


def remember_hub_token_expiry(
    backend: Any, social: Any, response: dict[str, Any], *args: Any, **kwargs: Any
) -> None:
    """Pipeline step: keep when the hub's token for this sign-in expires (never the token),
    so that the session ends no later (SOCIAL_AUTH_SESSION_EXPIRATION), nor later than
    SESSION_COOKIE_AGE (SOCIAL_AUTH_MAX_SESSION_LENGTH). JupyterHub's tokens live
    ``oauth_token_expires_in``, by default as long as its own login cookie."""
    expires_in = response.get("expires_in")
    if isinstance(expires_in, int | float) and expires_in > 0:
        extra = {"expires_on": int(time.time() + expires_in)}
    else:
        extra = {}
    if social.extra_data != extra:
        social.extra_data = extra
        social.save(update_fields=["extra_data"])
