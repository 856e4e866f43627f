"""The local account of a hub user: made on first sight through ``get_or_create_user``,
linked to the hub user, IT staff as the hub says, course roles from hub groups.

Shared by the API's token check and the browser sign-in through the hub.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils.translation import gettext as _
from social_django.models import UserSocialAuth

from courses import services, site_admins

from .groups import apply_hub_groups
from .identity import HubIdentity

logger = logging.getLogger(__name__)

# The social-auth provider name under which hub users are linked to local accounts, by
# browser sign-in and by token alike.
HUB_PROVIDER = "jupyterhub"


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
    groups give course roles.

    An account of the same name that was made on the exchange itself (a password, site
    admin rights) and never linked to the hub is not handed over: LocalAccountConflict."""
    # get_or_create underneath copes with two first requests of a new user at once; a user
    # made just now has no password and no rights, so it is never taken for a local one.
    user = services.get_or_create_user(identity.name)
    linked = UserSocialAuth.objects.filter(
        provider=HUB_PROVIDER, uid=identity.name, user=user
    ).exists()
    if not linked:
        if _is_local_account(user):
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


# --- the token's user, cached --------------------------------------------------------------

# A hub token's local user is cached under this prefix and the token's SHA-256: the calls
# after the first need no query to know who is calling.
USER_CACHE_PREFIX = "hub-user:"


def _user_key(token: str) -> str:
    return USER_CACHE_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def cached_hub_user(token: str) -> AbstractBaseUser | None:
    """The user ``remember_hub_user`` kept for this token, or None."""
    if not settings.EXCHANGE_API_TOKEN_CACHE_SECONDS:
        return None
    return cache.get(_user_key(token))


def remember_hub_user(token: str, user: AbstractBaseUser, *, until: float) -> None:
    """Trust ``user`` as the token's for EXCHANGE_API_TOKEN_CACHE_SECONDS, as for API tokens,
    and never past ``until``, the end of the hub's cached answer about the token (so a token
    revoked at the hub stops working within EXCHANGE_HUB_TOKEN_CACHE_SECONDS, as before). A
    disabled account, a changed staff flag or hub groups take effect within those seconds."""
    seconds = min(settings.EXCHANGE_API_TOKEN_CACHE_SECONDS, int(until - time.time()))
    if seconds >= 1:
        cache.set(_user_key(token), user, seconds)
