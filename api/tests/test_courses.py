"""Courses, members and the bulk roster over the API."""

from __future__ import annotations

import pytest

from api.models import ApiToken
from api.tokens import create_api_token
from courses.models import Assignment, Bundle, Course, Membership, Submission

C = "/api/v1/courses/phys101"


def test_me_lists_memberships_with_roles(people, client_for):
    body = client_for(people["gus"]).get("/api/v1/me").json()
    assert body == {
        "username": "gus",
        "is_staff": False,
        "courses": [{"course_id": "phys101", "title": "Physics", "role": "grader"}],
    }


def test_site_admin_sees_every_course_and_creates_one_with_instructors(
    people, site_admin, client_for
):
    ada = client_for(site_admin)
    response = ada.post(
        "/api/v1/courses",
        {"course_id": "chem1", "title": "Chemistry", "instructors": ["ines", "ivy"]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["course_id"] == "chem1"
    assert response.json()["created"].endswith(" UTC")
    assert [c["course_id"] for c in ada.get("/api/v1/courses").json()] == ["chem1", "phys101"]
    roles = client_for(people["ines"]).get("/api/v1/courses").json()
    assert {c["course_id"]: c["role"] for c in roles} == {
        "chem1": "instructor",
        "phys101": "instructor",
    }


def test_creating_an_existing_or_badly_named_course_is_refused(site_admin, course, client_for):
    ada = client_for(site_admin)
    response = ada.post("/api/v1/courses", {"course_id": "phys101"}, format="json")
    assert (response.status_code, response.json()["error"]) == (409, "conflict")
    response = ada.post("/api/v1/courses", {"course_id": "no spaces"}, format="json")
    assert response.status_code == 400
    response = ada.post("/api/v1/courses", {}, format="json")
    assert response.status_code == 400
    assert "course_id" in response.json()["detail"]


def test_deleting_a_course_removes_its_rows_but_keeps_the_users(
    site_admin, people, released, client_for
):
    from courses.services import submit_assignment
    from tests.harness.uploads import make_upload

    submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"a"})
    )
    assert client_for(site_admin).delete(C).status_code == 204
    assert not Course.objects.exists()
    assert not Assignment.objects.exists() and not Submission.objects.exists()
    assert not Bundle.objects.exists() and not Membership.objects.exists()
    assert client_for(people["sam"]).get("/api/v1/me").json()["courses"] == []


def test_members_are_listed_by_role_then_name(people, client_for):
    members = client_for(people["ines"]).get(f"{C}/members").json()
    assert [(m["role"], m["username"]) for m in members] == [
        ("grader", "gus"),
        ("instructor", "ines"),
        ("student", "sam"),
        ("student", "tia"),
    ]


def test_put_member_adds_then_updates(people, client_for):
    ines = client_for(people["ines"])
    body = {"role": "student", "first_name": "Nia", "email": "nia@example.edu"}
    response = ines.put(f"{C}/members/nia", body, format="json")
    assert response.status_code == 201
    assert response.json() == {
        "username": "nia",
        "role": "student",
        "first_name": "Nia",
        "last_name": "",
        "email": "nia@example.edu",
        "lms_user_id": "",
    }
    response = ines.put(f"{C}/members/nia", {"role": "grader"}, format="json")
    assert (response.status_code, response.json()["role"]) == (200, "grader")


def test_removing_an_unknown_member_or_the_last_instructor_is_refused(people, client_for):
    ines = client_for(people["ines"])
    assert ines.delete(f"{C}/members/nobody").status_code == 404
    response = ines.delete(f"{C}/members/ines")
    assert (response.status_code, response.json()["error"]) == (409, "conflict")


def test_roster_json_with_sync_and_dry_run(people, client_for):
    ines = client_for(people["ines"])
    body = {"members": [{"username": "sam"}, {"username": "uma", "first_name": "Uma"}]}
    response = ines.post(f"{C}/roster", {**body, "sync": True, "dry_run": True}, format="json")
    assert response.json() == {
        "added": ["uma"],
        "updated": [],
        "removed": ["tia"],
        "unchanged": ["sam"],
        "removed_with_submissions": [],
        "dry_run": True,
    }
    assert not Membership.objects.filter(user__username="uma").exists()
    response = ines.post(f"{C}/roster", {**body, "sync": True}, format="json")
    assert response.json()["removed"] == ["tia"]
    assert set(
        Membership.objects.filter(role="student").values_list("user__username", flat=True)
    ) == {"sam", "uma"}


def test_roster_csv_in_nbgrader_format(people, client_for):
    csv = "id,first_name,last_name,email\numa,Uma,Ulm,uma@example.edu\n"
    response = client_for(people["ines"]).generic(
        "POST", f"{C}/roster?role=grader", csv, content_type="text/csv"
    )
    assert response.status_code == 200, response.content
    assert response.json()["added"] == ["uma"]
    assert Membership.objects.get(user__username="uma").role == "grader"


def test_roster_with_bad_rows_changes_nothing(people, client_for):
    before = Membership.objects.count()
    csv = "id,first_name\n,Nobody\nsam,Sam\nsam,Again\n"
    response = client_for(people["ines"]).generic(
        "POST", f"{C}/roster", csv, content_type="text/csv"
    )
    assert (response.status_code, response.json()["error"]) == (400, "bad_roster")
    assert "line 2" in response.json()["detail"]
    assert Membership.objects.count() == before


def test_roster_csv_too_large_is_413(people, client_for, monkeypatch):
    from api.views import roster

    monkeypatch.setattr(roster, "MAX_ROSTER_BYTES", 10)
    response = client_for(people["ines"]).generic(
        "POST", f"{C}/roster", "id\n" + "x\n" * 100, content_type="text/csv"
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_api_token_describes_itself_without_the_token(django_user_model):
    user = django_user_model.objects.create(username="sam")
    token = create_api_token(user=user)
    stored = ApiToken.objects.get()
    assert token not in str(stored)
    assert str(stored).startswith("API token ") and stored.is_revoked is False


@pytest.mark.parametrize("name", ["..", ".", "a\\b", "C:", "0:x", "bell\x07"])
def test_a_user_name_that_cannot_be_a_folder_is_refused_and_nothing_added(people, client_for, name):
    # nbgrader collects a student's files into submitted/<name>/ on the grader's machine.
    ines = client_for(people["ines"])
    before = Membership.objects.count()
    response = ines.post(f"{C}/roster", {"members": [{"username": name}]}, format="json")
    assert (response.status_code, response.json()["error"]) == (400, "bad_roster")
    assert "cannot be a folder name" in response.json()["detail"]
    response = ines.put(f"{C}/members/{name}", {"role": "student"}, format="json")
    assert response.status_code == 400, response.content
    assert "cannot be a folder name" in response.json()["detail"]
    assert Membership.objects.count() == before


def test_a_user_made_before_the_folder_rule_keeps_working(db, django_user_model):
    from courses import services

    old = django_user_model.objects.create(username="..")
    assert services.get_or_create_user("..") == old
