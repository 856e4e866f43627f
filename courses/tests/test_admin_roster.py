"""The course's "Upload roster" page in the admin site: a preview that changes nothing,
then Apply through the same import as ``manage.py import_roster``, audited."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from courses import admin_roster
from courses.models import AuditEvent, Membership

NBGRADER_CSV = b"id,first_name,last_name,email\nsam,Sam,Smith,sam@example.org\numa,Uma,,\n"
CANVAS_CSV = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,ps1 (123)\n"
    "    Points Possible,,,,,10\n"
    '"Smith, Sam",1,S1,sam,Sec 1,9\n'
    '"Vega, Val",2,S2,val,Sec 1,7\n'
).encode()


@pytest.fixture
def it_client(client, django_user_model, db):
    client.force_login(django_user_model.objects.create_superuser("it", "", "pw-12345678"))
    return client


def url(course) -> str:
    return f"/admin/courses/course/{course.pk}/roster/"


def members(course) -> dict[str, str]:
    return {
        m.user.username: m.role
        for m in Membership.objects.filter(course=course).select_related("user")
    }


def upload(content: bytes, name: str = "roster.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_the_course_page_links_to_the_roster_upload(it_client, course):
    page = it_client.get(f"/admin/courses/course/{course.pk}/change/").content.decode()
    assert f'href="{url(course)}"' in page and "Upload roster" in page


def test_preview_lists_adds_updates_and_removals_and_changes_nothing(it_client, course, people):
    before = members(course)
    events = AuditEvent.objects.count()
    response = it_client.post(
        url(course),
        {
            "file": upload(NBGRADER_CSV),
            "format": "auto",
            "role": "student",
            "sync": "on",
            "preview": "Preview",
        },
    )
    assert response.status_code == 200
    summary = response.context["summary"]
    assert summary.added == ["uma"]
    assert summary.updated == ["sam"]  # names and email are new
    assert summary.removed == ["tia"]
    page = response.content.decode()
    assert "Preview: nothing has changed yet" in page
    assert "1 to add, 1 to update, 1 to remove, 0 unchanged." in page
    assert members(course) == before
    assert AuditEvent.objects.count() == events
    # The Apply form carries the same file and options.
    form = response.context["form"]
    assert form["text"].value() == NBGRADER_CSV.decode()
    assert form["sync"].value() is True


def test_apply_imports_through_the_roster_service_and_is_audited(it_client, course, people):
    response = it_client.post(
        url(course),
        {
            "text": NBGRADER_CSV.decode(),
            "format": "nbgrader",
            "role": "student",
            "sync": "on",
            "apply": "Apply these changes",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/admin/courses/course/{course.pk}/change/"
    assert "Roster of phys101 imported: 1 added, 1 updated, 1 removed, 0 unchanged." in (
        response.content.decode()
    )
    assert members(course) == {
        "ines": "instructor",
        "gus": "grader",
        "sam": "student",
        "uma": "student",
    }
    changes = AuditEvent.objects.filter(action=AuditEvent.Action.ROSTER_CHANGED, actor_name="it")
    assert changes.count() >= 2


def test_a_canvas_export_as_graders_without_removals(it_client, course, people):
    response = it_client.post(
        url(course),
        {"file": upload(CANVAS_CSV), "format": "auto", "role": "grader", "apply": "Apply"},
    )
    assert response.status_code == 302
    roles = members(course)
    assert roles["val"] == "grader" and roles["sam"] == "grader" and roles["tia"] == "student"


def test_bad_rows_are_listed_with_their_lines_and_nothing_changes(it_client, course, people):
    before = members(course)
    bad = b"id,email\nsam,not-an-email\n,x@example.org\n"
    response = it_client.post(
        url(course),
        {"file": upload(bad), "format": "auto", "role": "student", "apply": "Apply"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The roster has 2 bad row(s); nothing was changed." in page
    assert "line 2:" in page and "line 3:" in page
    assert members(course) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose a roster file."),
        ({"file": upload(b"\xff\xfe\x00bad")}, "not UTF-8 text"),
        ({"file": upload(b"name,mail\nsam,x\n")}, "Cannot tell the roster format"),
    ],
)
def test_what_cannot_be_read_is_said_in_a_sentence(it_client, course, data, message):
    response = it_client.post(
        url(course), {"format": "auto", "role": "student", "preview": "Preview", **data}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["summary"] is None


def test_a_file_larger_than_a_roster_is_refused(it_client, course, monkeypatch):
    monkeypatch.setattr(admin_roster, "MAX_ROSTER_BYTES", 10)
    response = it_client.post(
        url(course),
        {"file": upload(NBGRADER_CSV), "format": "auto", "role": "student", "preview": "P"},
    )
    assert "larger than" in response.content.decode()


def test_staff_who_may_not_change_courses_get_403(client, django_user_model, course):
    client.force_login(django_user_model.objects.create(username="viewer", is_staff=True))
    assert client.get(url(course)).status_code == 403


def test_an_unknown_course_is_404(it_client, db):
    assert it_client.get("/admin/courses/course/999999/roster/").status_code == 404
