"""IT staff from the hub: hub admins (and a hub group) get the admin site with every
permission, lose it when the hub says so, and superusers made here are left alone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from courses import site_admins
from courses.apps import CoursesConfig
from hub.accounts import user_for_hub_identity
from hub.identity import HubIdentity


def sign_in_from_hub(name: str, *, admin: bool = False, groups: tuple[str, ...] = ()):
    return user_for_hub_identity(HubIdentity(name=name, admin=admin, groups=groups))


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def hub_admins_are_staff(settings, db):
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = True
    settings.EXCHANGE_HUB_STAFF_GROUP = ""


def test_a_hub_admin_can_view_and_change_every_model_of_the_admin_site(
    hub_admins_are_staff, course
):
    ada = sign_in_from_hub("ada", admin=True)
    assert ada.is_staff and not ada.is_superuser
    assert ada.groups.filter(name=site_admins.ADMIN_GROUP).exists()
    assert ada.has_perm("courses.change_course") and ada.has_perm("auth.view_user")
    client = admin_client(ada)
    index = client.get("/admin/").content.decode()
    assert "permission to view or edit anything" not in index
    assert client.get("/admin/courses/course/").status_code == 200
    assert client.get(f"/admin/courses/course/{course.pk}/change/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_staff_without_the_group_sees_nothing_in_the_admin_site(db, django_user_model):
    """What a hub admin got before: staff alone opens the site and shows nothing."""
    bare = django_user_model.objects.create(username="bare", is_staff=True)
    client = admin_client(bare)
    assert "permission to view or edit anything" in client.get("/admin/").content.decode()
    assert client.get("/admin/courses/course/").status_code == 403


def test_someone_who_stops_being_a_hub_admin_loses_staff_and_the_group(hub_admins_are_staff):
    sign_in_from_hub("ada", admin=True)
    ada = sign_in_from_hub("ada", admin=False)
    assert not ada.is_staff
    assert not ada.groups.filter(name=site_admins.ADMIN_GROUP).exists()
    assert not ada.has_perm("courses.change_course")


def test_a_hub_group_makes_it_staff_when_named(settings, db):
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = False
    settings.EXCHANGE_HUB_STAFF_GROUP = "exchange-it"
    ivo = sign_in_from_hub("ivo", groups=("students", "exchange-it"))
    assert ivo.is_staff and ivo.has_perm("courses.change_membership")
    # Hub admins are not staff by being admins when only the group setting is on.
    assert not sign_in_from_hub("ada", admin=True).is_staff
    assert not sign_in_from_hub("ivo", groups=("students",)).is_staff


def test_without_either_setting_the_hub_changes_nobodys_staff_status(settings, db):
    settings.EXCHANGE_HUB_ADMINS_ARE_STAFF = False
    settings.EXCHANGE_HUB_STAFF_GROUP = ""
    from django.contrib.auth import get_user_model

    from hub.accounts import link_hub_user

    link_hub_user(get_user_model().objects.create(username="local", is_staff=True))
    assert sign_in_from_hub("local").is_staff
    assert not Group.objects.filter(name=site_admins.ADMIN_GROUP).exists()


def test_superusers_are_left_alone_by_the_hub(hub_admins_are_staff):
    call_command("make_superuser", "root-it")
    user = sign_in_from_hub("root-it", admin=False)
    assert user.is_superuser and user.is_staff


def test_make_superuser_promotes_an_account_a_hub_sign_in_made(hub_admins_are_staff, capsys):
    sign_in_from_hub("ines")  # createsuperuser would now refuse the name
    with pytest.raises(CommandError, match="already taken"):
        call_command("createsuperuser", username="ines", email="", interactive=False)
    call_command("make_superuser", "ines")
    assert "ines is a superuser" in capsys.readouterr().out
    ines = sign_in_from_hub("ines")
    assert ines.is_superuser and ines.is_staff
    assert not ines.has_usable_password()
    assert admin_client(ines).get("/admin/courses/course/").status_code == 200
    call_command("make_superuser", "ines", "--revoke")
    assert "no longer a superuser" in capsys.readouterr().out
    ines.refresh_from_db()
    assert not ines.is_superuser and not ines.is_staff


def test_make_superuser_creates_a_missing_account_without_a_password(db, django_user_model):
    call_command("make_superuser", "newit")
    user = django_user_model.objects.get(username="newit")
    assert user.is_superuser and not user.has_usable_password()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nobody", "--revoke"], "There is no account 'nobody'"), (["  "], "Give the user name")],
)
def test_make_superuser_says_what_is_wrong(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("make_superuser", *args)


def test_new_permissions_reach_the_group_after_migrate(hub_admins_are_staff):
    sign_in_from_hub("ada", admin=True)
    group = Group.objects.get(name=site_admins.ADMIN_GROUP)
    kind = ContentType.objects.get_for_model(Group)
    extra = Permission.objects.create(codename="audit_it", name="Audit IT", content_type=kind)
    assert not group.permissions.filter(pk=extra.pk).exists()
    site_admins.refresh_admin_group_permissions(sender=CoursesConfig)
    assert group.permissions.filter(pk=extra.pk).exists()


def test_refreshing_permissions_without_the_group_does_nothing(db):
    site_admins.refresh_admin_group_permissions()
    assert not Group.objects.filter(name=site_admins.ADMIN_GROUP).exists()
