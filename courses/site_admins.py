"""Who may use the admin site: the exchange's IT staff.

Hub admins (with ``EXCHANGE_HUB_ADMINS_ARE_STAFF``) and members of the hub group named in
``EXCHANGE_HUB_STAFF_GROUP`` become staff and members of the Django group
``exchange-admins``, which holds every model permission of the admin site. Being staff
alone opens the admin site but shows "You don't have permission to view or edit anything";
a group (rather than ``is_superuser``) lets the hub take both away again when someone stops
being a hub admin, while superusers made with ``manage.py make_superuser`` (or
``createsuperuser``) are never changed by the hub.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

from . import services
from .exceptions import BadRequest

logger = logging.getLogger(__name__)

ADMIN_GROUP = "exchange-admins"


def hub_staff_managed() -> bool:
    """Whether the hub decides who is staff (one of the two settings is on)."""
    return bool(settings.EXCHANGE_HUB_ADMINS_ARE_STAFF or settings.EXCHANGE_HUB_STAFF_GROUP)


def is_hub_staff(*, admin: bool, groups: Iterable[str]) -> bool:
    """Whether a hub user with this admin flag and these hub groups is IT staff here."""
    if settings.EXCHANGE_HUB_ADMINS_ARE_STAFF and admin:
        return True
    group = settings.EXCHANGE_HUB_STAFF_GROUP
    return bool(group and group in groups)


def admin_group() -> Group:
    """The ``exchange-admins`` group, with every permission there is."""
    group, _created = Group.objects.get_or_create(name=ADMIN_GROUP)
    refresh_admin_group_permissions()
    return group


def refresh_admin_group_permissions(**kwargs: object) -> None:
    """Give ``exchange-admins`` every permission (new models bring new ones: this also runs
    after every ``migrate``). Nothing happens before the group exists."""
    group = Group.objects.filter(name=ADMIN_GROUP).first()
    if group is None:
        return
    every = Permission.objects.all()
    if group.permissions.count() != every.count():
        group.permissions.set(every)


def set_staff(*, user: AbstractBaseUser, staff: bool, superuser: bool | None = None) -> bool:
    """The one place that writes ``is_staff`` (and ``is_superuser`` with it when given):
    the hub's say, ``make_superuser`` and ``create_api_token --staff`` all come here.
    Returns whether anything changed."""
    fields = {"is_staff": staff}
    if superuser is not None:
        fields["is_superuser"] = superuser
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        user.save(update_fields=changed)
    return bool(changed)


@transaction.atomic
def apply_hub_staff(*, user: AbstractBaseUser, staff: bool) -> None:
    """Make the user staff and a member of ``exchange-admins``, or neither, as the hub says.
    Superusers are left alone: they were made here, not by the hub."""
    if user.is_superuser:  # type: ignore[attr-defined]
        return
    if not staff and not user.is_staff:  # type: ignore[attr-defined]
        # Every student's token check passes here: no query for them.
        return
    in_group = user.groups.filter(name=ADMIN_GROUP).exists()  # type: ignore[attr-defined]
    if set_staff(user=user, staff=staff):
        logger.info("%s is %s IT staff (from the hub).", user, "now" if staff else "no longer")
    if staff and not in_group:
        user.groups.add(admin_group())  # type: ignore[attr-defined]
    elif not staff and in_group:
        user.groups.remove(Group.objects.get(name=ADMIN_GROUP))  # type: ignore[attr-defined]


@transaction.atomic
def make_superuser(*, username: str, revoke: bool = False) -> AbstractBaseUser:
    """Make the account a superuser (created without a password when it does not exist yet:
    it signs in through the hub), or with ``revoke`` take that away again."""
    User = get_user_model()
    username = username.strip()
    if not username:
        raise BadRequest("Give the user name of the account.")
    if revoke:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise BadRequest(f"There is no account {username!r}.")
        set_staff(user=user, staff=False, superuser=False)
    else:
        user = services.get_or_create_user(username)
        if not user.password:  # made here or by a hub sign-in: it never signs in locally
            user.set_unusable_password()
            user.save(update_fields=["password"])
        set_staff(user=user, staff=True, superuser=True)
    logger.info(
        "%s is %s a superuser (manage.py make_superuser).", user, "no longer" if revoke else "now"
    )
    return user
