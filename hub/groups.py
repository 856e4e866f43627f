"""Course rosters from JupyterHub groups, by nbgrader's multi-course convention:
``nbgrader-<course>`` holds the students, ``formgrade-<course>`` the instructors.

Applied to one user when they sign in (browser or API token) with EXCHANGE_HUB_GROUP_ROSTER
on, and to everyone by ``manage.py sync_hub_groups``. Memberships are added or raised
(``courses.role_grants``), never lowered or removed: a role set by hand stays.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from courses.exceptions import Unavailable
from courses.models import Membership
from courses.role_grants import RANK, grant_roles

from . import client

Role = Membership.Role
GROUP_ROLES = (("formgrade-", Role.INSTRUCTOR), ("nbgrader-", Role.STUDENT))
GROUP_PAGE = 200


def course_role_of_group(group: str) -> tuple[str, str] | None:
    """(course code, role) a group stands for, or None for any other group."""
    for prefix, role in GROUP_ROLES:
        if group.startswith(prefix) and len(group) > len(prefix):
            return group[len(prefix) :], role
    return None


def roles_from_groups(groups: Iterable[str]) -> dict[str, str]:
    """Course code -> role the groups give (instructor wins over student)."""
    roles: dict[str, str] = {}
    for group in groups:
        found = course_role_of_group(group)
        if found is None:
            continue
        code, role = found
        if code not in roles or RANK[role] > RANK[roles[code]]:
            roles[code] = role
    return roles


def apply_hub_groups(user: AbstractBaseUser, groups: Iterable[str]) -> list[tuple[str, str]]:
    """The roles one user's hub groups name, applied."""
    return grant_roles(username=user.get_username(), wanted=roles_from_groups(groups))


def hub_group_members() -> dict[str, list[str]]:
    """Every hub group's members, asked of ``JUPYTERHUB_API_URL/groups`` with the service's
    token (which needs ``list:groups`` and ``read:groups``). Unavailable when the hub does
    not answer or refuses."""
    if not settings.JUPYTERHUB_API_URL or not settings.JUPYTERHUB_API_TOKEN:
        raise Unavailable("JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN must be set.")
    groups: dict[str, list[str]] = {}
    offset = 0
    while True:
        try:
            page = client.get_json(
                "/groups",
                token=settings.JUPYTERHUB_API_TOKEN,
                asking="for its groups",
                params={"offset": offset, "limit": GROUP_PAGE},
                headers={"Accept": "application/jupyterhub-pagination+json"},
            )
        except client.HubRefused as exc:
            raise Unavailable(
                f"JupyterHub answered {exc.status} when asked for its groups; the service's "
                f"token needs the scopes list:groups and read:groups."
            ) from exc
        for group in page["items"]:
            groups[group["name"]] = list(group.get("users") or [])
        following = (page.get("_pagination") or {}).get("next")
        if not following:
            return groups
        offset = following["offset"]


def sync_hub_groups(*, dry_run: bool = False) -> list[tuple[str, str, str]]:
    """Apply every hub group of the convention to the rosters: (user, course, role) changes."""
    by_user: dict[str, list[str]] = {}
    for group, users in hub_group_members().items():
        if course_role_of_group(group) is None:
            continue
        for user in users:
            by_user.setdefault(user, []).append(group)
    changes = []
    for username, groups in sorted(by_user.items()):
        wanted = roles_from_groups(groups)
        for code, role in grant_roles(username=username, wanted=wanted, dry_run=dry_run):
            changes.append((username, code, role))
    return changes
