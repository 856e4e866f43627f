"""The admin an IT admin lives in: every page opens, rosters are fixed without SQL, and the
records the exchange writes cannot be edited."""

from __future__ import annotations

from html import unescape

import pytest

from courses import services
from courses.models import AuditEvent, Membership
from tests.harness.uploads import make_upload


@pytest.fixture
def admin_client(client, django_user_model, db):
    admin = django_user_model.objects.create_superuser("it-admin", "it@example.org", "pw-12345678")
    client.force_login(admin)
    return client


@pytest.fixture
def filled(released, people):
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    services.release_feedback(
        actor=people["ines"], submission=submission, upload=make_upload({"f.html": b"ok"})
    )
    return submission


@pytest.mark.parametrize(
    "model", ["course", "membership", "assignment", "submission", "feedback", "auditevent"]
)
def test_every_list_and_detail_page_opens(admin_client, filled, model):
    listing = admin_client.get(f"/admin/courses/{model}/")
    assert listing.status_code == 200
    obj = {
        "course": filled.assignment.course,
        "membership": Membership.objects.first(),
        "assignment": filled.assignment,
        "submission": filled,
        "feedback": filled.feedback,
        "auditevent": AuditEvent.objects.first(),
    }[model]
    detail = admin_client.get(f"/admin/courses/{model}/{obj.pk}/change/")
    assert detail.status_code == 200


def test_submission_page_lists_files_with_sizes(admin_client, filled):
    page = admin_client.get(f"/admin/courses/submission/{filled.pk}/change/").content.decode()
    assert "a.txt" in page and "(1 bytes)" in page


def test_search_and_filter_memberships(admin_client, people):
    page = admin_client.get("/admin/courses/membership/?q=sam&role__exact=student").content
    assert b"sam in phys101 as student" in page
    assert b"tia in phys101" not in page


def test_role_change_action_is_audited(admin_client, people):
    sam = Membership.objects.get(user__username="sam")
    response = admin_client.post(
        "/admin/courses/membership/",
        {"action": "make_grader", "_selected_action": [sam.pk]},
        follow=True,
    )
    assert b"1 memberships set to grader" in response.content
    sam.refresh_from_db()
    assert sam.role == "grader"
    event = AuditEvent.objects.filter(action="roster_changed").first()
    assert event.actor_name == "it-admin" and event.detail["role"] == "grader"


def test_remove_action_keeps_submissions(admin_client, filled):
    sam = Membership.objects.get(user__username="sam")
    admin_client.post(
        "/admin/courses/membership/",
        {"action": "remove_from_course", "_selected_action": [sam.pk]},
    )
    assert not Membership.objects.filter(pk=sam.pk).exists()
    assert filled.__class__.objects.filter(pk=filled.pk).exists()


def test_add_member_through_the_course_page(admin_client, course, people, django_user_model):
    newcomer = django_user_model.objects.create(username="newbie")
    memberships = list(course.memberships.order_by("pk"))
    data = {
        "code": course.code,
        "title": course.title,
        "memberships-TOTAL_FORMS": str(len(memberships) + 1),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, membership in enumerate(memberships):
        data[f"memberships-{index}-id"] = str(membership.pk)
        data[f"memberships-{index}-course"] = str(course.pk)
        data[f"memberships-{index}-user"] = str(membership.user_id)
        data[f"memberships-{index}-role"] = membership.role
    last = len(memberships)
    data[f"memberships-{last}-course"] = str(course.pk)
    data[f"memberships-{last}-user"] = str(newcomer.pk)
    data[f"memberships-{last}-role"] = "student"
    # tia leaves the course in the same save
    tia_index = next(i for i, m in enumerate(memberships) if m.user.username == "tia")
    data[f"memberships-{tia_index}-DELETE"] = "on"
    response = admin_client.post(f"/admin/courses/course/{course.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    usernames = set(course.memberships.values_list("user__username", flat=True))
    assert "newbie" in usernames and "tia" not in usernames
    assert AuditEvent.objects.filter(student_name="newbie", detail__change="added").exists()


def test_exchange_records_are_read_only(admin_client, filled):
    assert admin_client.get("/admin/courses/submission/add/").status_code == 403
    event = AuditEvent.objects.first()
    assert admin_client.post(f"/admin/courses/auditevent/{event.pk}/delete/").status_code == 403


def _user_change_data(user, **changes: str) -> dict[str, str]:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    return {**data, **changes}


@pytest.mark.parametrize("name", [".", ".."])
def test_add_user_refuses_a_name_that_is_not_one_folder(admin_client, django_user_model, name):
    # Django's own rule allows dots; nbgrader would collect into submitted/<name>/.
    form = {"username": name, "usable_password": "false"}
    response = admin_client.post("/admin/auth/user/add/", form)
    assert response.status_code == 200
    assert f"The user name {name!r} cannot be a folder name" in unescape(response.content.decode())
    assert not django_user_model.objects.filter(username=name).exists()
    # The same form makes an ordinary account.
    response = admin_client.post("/admin/auth/user/add/", {**form, "username": "amy.b"})
    assert response.status_code == 302
    assert django_user_model.objects.filter(username="amy.b").exists()


def test_renaming_a_user_to_a_name_that_is_not_one_folder_is_refused(
    admin_client, django_user_model
):
    amy = django_user_model.objects.create(username="amy")
    url = f"/admin/auth/user/{amy.pk}/change/"
    response = admin_client.post(url, _user_change_data(amy, username=".."))
    assert response.status_code == 200
    assert "The user name '..' cannot be a folder name" in unescape(response.content.decode())
    amy.refresh_from_db()
    assert amy.username == "amy"
    # An account made before the rule can still be edited, its name unchanged.
    old = django_user_model.objects.create(username="..")
    response = admin_client.post(
        f"/admin/auth/user/{old.pk}/change/", _user_change_data(old, first_name="Dot")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    old.refresh_from_db()
    assert old.first_name == "Dot"
