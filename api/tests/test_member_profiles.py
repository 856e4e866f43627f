"""Profiles belong to their owners: what one course calls a person (names, email) is that
course's own, so the instructor of chem200 cannot rename a phys101 student or the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from courses import roster, services
from courses.models import AuditEvent, Membership

User = get_user_model()
PHYS = "/api/v1/courses/phys101"
CHEM = "/api/v1/courses/chem200"


@pytest.fixture
def chem200(people, site_admin):
    """A second course whose instructor (cleo) is no member of phys101; sam has a name there."""
    services.add_member(
        course=people["sam"].memberships.get().course,
        username="sam",
        role="student",
        first_name="Sam",
        last_name="Smith",
        email="sam@phys.example.edu",
    )
    course = services.create_course(code="chem200", instructors=["cleo"])
    User.objects.filter(pk=site_admin.pk).update(
        first_name="Ada", last_name="Admin", email="ada@example.edu"
    )
    return course


HOSTILE = {
    "first_name": '=HYPERLINK("http://evil.example")',
    "last_name": "X",
    "email": "attacker@evil.example",
}


def phys_roster(client_for, people) -> dict[str, dict]:
    members = client_for(people["ines"]).get(f"{PHYS}/members").json()
    return {m["username"]: m for m in members}


@pytest.mark.parametrize("victim", ["sam", "ada"])
def test_another_courses_instructor_cannot_rename_a_person_through_put_member(
    chem200, people, client_for, victim
):
    cleo = client_for(User.objects.get(username="cleo"))
    before = User.objects.values("first_name", "last_name", "email").get(username=victim)
    response = cleo.put(f"{CHEM}/members/{victim}", {"role": "student", **HOSTILE}, format="json")
    assert response.status_code == 201
    # chem200's roster shows what chem200 said ...
    assert {k: response.json()[k] for k in HOSTILE} == HOSTILE
    # ... and nothing else changed: the account, phys101's roster.
    assert User.objects.values("first_name", "last_name", "email").get(username=victim) == before
    if victim == "sam":
        assert phys_roster(client_for, people)["sam"]["first_name"] == "Sam"
        assert phys_roster(client_for, people)["sam"]["email"] == "sam@phys.example.edu"


def test_another_courses_roster_import_cannot_rename_a_person(chem200, people, client_for):
    cleo = client_for(User.objects.get(username="cleo"))
    csv = (
        "id,first_name,last_name,email\n"
        "sam,Mallory,Evil,attacker@evil.example\nada,Mallory,Evil,attacker@evil.example\n"
    )
    response = cleo.generic("POST", f"{CHEM}/roster", csv, content_type="text/csv")
    assert response.status_code == 200, response.content
    assert User.objects.get(username="ada").email == "ada@example.edu"
    assert User.objects.get(username="sam").first_name == ""
    assert phys_roster(client_for, people)["sam"]["last_name"] == "Smith"
    chem = {m.user.username: m for m in Membership.objects.filter(course=chem200)}
    assert chem["sam"].first_name == "Mallory"


def test_a_course_renames_its_own_member_with_an_audit_event(chem200, people, client_for):
    ines = client_for(people["ines"])
    response = ines.put(
        f"{PHYS}/members/sam", {"role": "student", "first_name": "Samuel"}, format="json"
    )
    assert (response.status_code, response.json()["first_name"]) == (200, "Samuel")
    assert response.json()["last_name"] == "Smith"  # empty: kept as it was
    event = AuditEvent.objects.filter(detail__change="details", actor_name="ines").get()
    assert (event.student_name, event.detail["fields"]) == ("sam", ["first_name"])
    # An import that says the same again changes nothing and records nothing.
    summary = roster.import_roster(
        course=people["ines"].memberships.get().course,
        rows=[{"username": "sam", "first_name": "Samuel"}],
        actor=people["ines"],
    )
    assert summary.unchanged == ["sam"]
    assert AuditEvent.objects.filter(detail__change="details", actor_name="ines").count() == 1


def test_a_new_account_starts_with_the_names_it_was_added_with(people, client_for):
    ines = client_for(people["ines"])
    ines.put(f"{PHYS}/members/nia", {"role": "student", "first_name": "Nia"}, format="json")
    assert User.objects.get(username="nia").first_name == "Nia"


def test_the_assignment_page_shows_the_courses_own_name(chem200, people, released, client):
    services.add_member(
        course=chem200, username="sam", role="student", first_name="Other", actor=None
    )
    client.force_login(people["ines"])
    page = client.get("/courses/phys101/assignments/ps1/").content.decode()
    assert "Sam Smith" in page and "Other" not in page


def test_the_upgrade_copies_each_accounts_names_onto_its_memberships(people):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("courses.migrations.0002_membership_names")
    User.objects.filter(username="sam").update(first_name="Sam", email="sam@example.edu")
    Membership.objects.update(first_name="", last_name="", email="")
    migration.copy_user_names(apps, None)
    sam = Membership.objects.get(user__username="sam")
    assert (sam.first_name, sam.email) == ("Sam", "sam@example.edu")
    assert Membership.objects.get(user__username="tia").first_name == ""
