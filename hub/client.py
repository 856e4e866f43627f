"""The one HTTP client for JupyterHub's REST API (``JUPYTERHUB_API_URL``).

One ``requests`` session per thread (connections to the hub are kept alive), one timeout,
and one error mapping: a hub that does not answer, answers with an error, or answers
something that is not JSON is ``Unavailable`` (503) with a sentence naming what was asked;
a hub that refuses the token (401, 403, 404) is ``HubRefused``, which each caller turns
into its own answer (an unknown token, a missing scope).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from django.conf import settings

from courses.exceptions import Unavailable

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
REFUSED = (401, 403, 404)

_local = threading.local()


class HubRefused(Exception):
    """JupyterHub refused the request (401, 403 or 404): the token is not good for it."""

    def __init__(self, status: int) -> None:
        super().__init__(f"JupyterHub answered {status}")
        self.status = status


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        # Each request speaks for one token: a cookie the hub set in answer to one user's
        # token must never travel with the next user's.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def get_json(
    path: str,
    *,
    token: str,
    asking: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """``GET <JUPYTERHUB_API_URL><path>`` with ``token``: the answer's JSON.

    ``asking`` completes "JupyterHub, asked <asking>, ..." in the sentences of errors."""
    url = settings.JUPYTERHUB_API_URL + path
    try:
        response = _session().get(
            url,
            params=params,
            headers={"Authorization": f"token {token}", **(headers or {})},
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        logger.warning("JupyterHub at %s did not answer: %s", url, exc)
        raise Unavailable(
            f"JupyterHub did not answer when asked {asking}; try again in a minute."
        ) from exc
    if response.status_code in REFUSED:
        raise HubRefused(response.status_code)
    if response.status_code != 200:
        logger.warning("JupyterHub at %s answered %s", url, response.status_code)
        raise Unavailable(
            f"JupyterHub answered with an error ({response.status_code}) when asked "
            f"{asking}; try again in a minute."
        )
    try:
        return response.json()
    except ValueError as exc:
        raise Unavailable(f"JupyterHub's answer when asked {asking} could not be read.") from exc
