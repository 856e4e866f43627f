"""Who owns a JupyterHub token: the hub's ``/user`` answer, read in one place, and cached.

``HubIdentity.from_model`` is the only reader of JupyterHub's user model; the token check
(``hub_identity``) and the OAuth sign-in (``hub.oauth``) both go through it, so both see
the same name, admin flag, groups and scopes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache

from courses.exceptions import Unavailable

from . import client

CACHE_PREFIX = "hub-token:"
# Stored with a cached answer: when it expires (an entry without it: already).
UNTIL = "_until"


class UnreadableIdentity(ValueError):
    """JupyterHub's user model lacks what every answer of JupyterHub's has (a name)."""


@dataclass(frozen=True)
class HubIdentity:
    """What JupyterHub says about the owner of a token."""

    name: str
    admin: bool = False
    scopes: tuple[str, ...] = field(default_factory=tuple)
    groups: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_model(cls, model: Any) -> HubIdentity | None:
        """The identity in JupyterHub's user model; None for a service's or a server's own
        token (``kind`` other than user); UnreadableIdentity when it is not the hub's shape."""
        try:
            name = model["name"]
            kind = model.get("kind", "user")
        except (KeyError, TypeError, AttributeError) as exc:
            raise UnreadableIdentity("JupyterHub's user model has no name") from exc
        if kind != "user" or not isinstance(name, str) or not name:
            return None
        return cls(
            name=name,
            admin=bool(model.get("admin")),
            scopes=tuple(model.get("scopes") or ()),
            groups=tuple(model.get("groups") or ()),
        )

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
    try:
        model = client.get_json("/user", token=token, asking="who owns your token")
    except client.HubRefused:
        return None
    try:
        return HubIdentity.from_model(model)
    except UnreadableIdentity as exc:
        raise Unavailable("JupyterHub's answer about your token could not be read.") from exc


def hub_identity(token: str) -> HubIdentity | None:
    """``ask_hub``, cached for EXCHANGE_HUB_TOKEN_CACHE_SECONDS under the token's SHA-256."""
    return hub_identity_until(token)[0]


def hub_identity_until(token: str) -> tuple[HubIdentity | None, float]:
    """``hub_identity`` and the time (``time.time()``) until which its answer is trusted:
    what depends on the answer (the token's user, ``hub.accounts``) is never kept longer."""
    key = CACHE_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        fields = {name: value for name, value in cached.items() if name != UNTIL}
        return (HubIdentity(**fields) if fields else None), cached.get(UNTIL, 0.0)
    identity = ask_hub(token)
    timeout = settings.EXCHANGE_HUB_TOKEN_CACHE_SECONDS
    until = time.time() + timeout
    if timeout:
        cache.set(key, {**(asdict(identity) if identity else {}), UNTIL: until}, timeout)
    return identity, until
