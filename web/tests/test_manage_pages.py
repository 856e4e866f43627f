"""The assignment page's forms: due date and cutoff, extensions, unrelease. Each write is
the service's (audited), each refusal the service's sentence with its status, nothing
recorded; graders see extensions but cannot change them; dates are read in the zone the
form names."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.test import Client

from courses import deadlines, services
from courses.models import Assignment, AuditEvent, Extension

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MADRID = "Europe/Madrid"


def url(what: str = "") -> str:
    return f"/courses/phys101/assignments/ps1/{what}"


def text(response) -> str:
    return html.unescape(response.content.decode())


def events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_an_instructor_sets_23_59_in_their_zone(client_as, released):
    ines = client_as("ines")
    response = ines.post(
        url("deadlines/"),
        {"tz": MADRID, "due_date": "2026-12-01T23:59", "accept_until": "2026-12-03T12:00"},
    )
    assert response.status_code == 302
    released.refresh_from_db()
    # 23:59 in Madrid in winter is 22:59 UTC, not 23:59 UTC.
    assert released.due_date == dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC)
    assert released.accept_until == dt.datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert events(AuditEvent.Action.DUE_DATE_CHANGED) == 1
    assert events(AuditEvent.Action.CUTOFF_CHANGED) == 1
    # Back on the page, in the same zone, the fields show what was typed.
    ines.cookies["exchange_tz"] = MADRID
    page = ines.get(url()).content.decode()
    assert 'value="2026-12-01T23:59"' in page
    assert 'name="tz" value="Europe/Madrid"' in page
    assert "time zone Europe/Madrid (your browser's)" in html.unescape(page)
    assert "The due date and the cutoff are saved." in page


def test_an_explicit_offset_wins_over_the_forms_zone(client_as, released):
    data = {"tz": MADRID, "due_date": "2030-01-01T12:00+05:00"}
    assert client_as("ines").post(url("deadlines/"), data).status_code == 302
    released.refresh_from_db()
    assert released.due_date == dt.datetime(2030, 1, 1, 7, 0, tzinfo=UTC)


def test_without_the_browsers_zone_the_form_says_it_reads_utc(client_as, released):
    page = text(client_as("ines").get(url()))
    assert 'name="tz" value="UTC"' in page
    assert "time zone UTC (your browser has not said its own)" in page


def test_empty_fields_clear_the_dates(client_as, released):
    deadlines.set_deadlines(
        actor=None, assignment=released, due_date=dt.datetime(2030, 1, 1, tzinfo=UTC)
    )
    response = client_as("ines").post(url("deadlines/"), {"tz": "UTC", "due_date": ""})
    assert response.status_code == 302
    released.refresh_from_db()
    assert released.due_date is None


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        (
            {"tz": "UTC", "due_date": "2030-01-02T00:00", "accept_until": "2030-01-01T00:00"},
            "cannot be before the due date",
        ),
        ({"tz": "UTC", "due_date": "tomorrow"}, "is not a date and time"),
        ({"tz": "Mars/Olympus", "due_date": "2030-01-02T00:00"}, "Unknown time zone"),
    ],
)
def test_a_refused_date_is_the_sentence_and_nothing_changes(client_as, released, data, sentence):
    response = client_as("ines").post(url("deadlines/"), data)
    assert response.status_code == 400
    assert sentence in text(response)
    released.refresh_from_db()
    assert released.due_date is None and released.accept_until is None
    assert not AuditEvent.objects.filter(
        action__in=[AuditEvent.Action.DUE_DATE_CHANGED, AuditEvent.Action.CUTOFF_CHANGED]
    ).exists()


def test_grant_change_and_revoke_an_extension(client_as, released):
    ines = client_as("ines")
    data = {"tz": "America/New_York", "username": "sam", "due_date": "2030-01-05T23:59"}
    assert ines.post(url("extensions/"), data).status_code == 302
    extension = Extension.objects.get(assignment=released, student__username="sam")
    assert extension.due_date == dt.datetime(2030, 1, 6, 4, 59, tzinfo=UTC)
    data["accept_until"] = "2030-01-07T08:00"
    page = ines.post(url("extensions/"), data, follow=True).content.decode()
    assert "The extension of sam is saved." in page
    extension.refresh_from_db()
    assert extension.accept_until == dt.datetime(2030, 1, 7, 13, 0, tzinfo=UTC)
    assert events(AuditEvent.Action.EXTENSION_GRANTED) == 2
    page = ines.post(url("extensions/sam/revoke/"), follow=True).content.decode()
    assert "The extension of sam is revoked." in page
    assert not Extension.objects.exists()
    assert events(AuditEvent.Action.EXTENSION_REVOKED) == 1


def test_refused_extensions_say_why(client_as, released):
    ines = client_as("ines")
    response = ines.post(url("extensions/"), {"tz": "UTC", "username": "sam"})
    assert response.status_code == 400
    assert "An extension needs a due date, a cutoff or both" in text(response)
    response = ines.post(
        url("extensions/"), {"tz": "UTC", "username": "gus", "due_date": "2030-01-01T00:00"}
    )
    assert response.status_code == 404
    assert "'gus' is not a student of course" in text(response)
    response = ines.post(url("extensions/tia/revoke/"))
    assert response.status_code == 404
    assert "'tia' has no extension" in text(response)
    assert not Extension.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="extension").exists()


def test_a_grader_sees_extensions_but_has_no_forms_and_is_refused(client_as, released):
    deadlines.grant_extension(
        actor=None,
        assignment=released,
        username="sam",
        due_date=dt.datetime(2030, 1, 5, tzinfo=UTC),
    )
    gus = client_as("gus")
    page = gus.get(url()).content.decode()
    assert "Extensions" in page and "sam" in page
    assert '<form method="post"' not in page.split("</header>", 1)[1]
    for path, data in [
        ("deadlines/", {"tz": "UTC", "due_date": "2031-01-01T00:00"}),
        ("extensions/", {"tz": "UTC", "username": "tia", "due_date": "2031-01-01T00:00"}),
        ("extensions/sam/revoke/", {}),
        ("unrelease/", {"force": "on"}),
    ]:
        assert gus.post(url(path), data).status_code == 403
    released.refresh_from_db()
    assert released.is_released and released.due_date is None
    assert Extension.objects.count() == 1


def test_students_and_outsiders_cannot_post(client_as, released):
    assert client_as("sam").post(url("unrelease/")).status_code == 403
    assert client_as("olga").post(url("unrelease/")).status_code == 404
    assert client_as(None).post(url("unrelease/")).status_code == 302  # to the login page
    assert Assignment.objects.get(pk=released.pk).is_released


def test_forms_need_the_csrf_token(people, released):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["ines"])
    response = client.post(url("deadlines/"), {"tz": "UTC", "due_date": "2031-01-01T00:00"})
    assert response.status_code == 403
    released.refresh_from_db()
    assert released.due_date is None


def test_unrelease_keeps_the_guard(client_as, people, released):
    services.fetch_assignment(user=people["sam"], assignment=released)
    ines = client_as("ines")
    assert "Fetched by 1 student" in ines.get(url()).content.decode()
    response = ines.post(url("unrelease/"))
    assert response.status_code == 409
    assert "has been fetched by 1 and submitted by 0 students" in text(response)
    assert "tick the box that says so" in text(response)
    assert Assignment.objects.get(pk=released.pk).is_released
    assert events(AuditEvent.Action.UNRELEASED) == 0
    page = ines.post(url("unrelease/"), {"force": "on"}, follow=True).content.decode()
    assert "The assignment is no longer released." in page
    assert not Assignment.objects.get(pk=released.pk).is_released
    assert events(AuditEvent.Action.UNRELEASED) == 1
    # Unreleased, the page says where a release comes from and offers no second unrelease.
    assert ines.post(url("unrelease/")).status_code == 409


def test_pages_show_times_in_the_viewers_zone_with_utc_in_the_tooltip(client_as, released):
    Assignment.objects.filter(pk=released.pk).update(
        due_date=dt.datetime(2030, 7, 1, 21, 59, tzinfo=UTC)
    )
    ines = client_as("ines")
    page = ines.get(url()).content.decode()
    assert "2030-07-01 21:59 UTC" in page
    ines.cookies["exchange_tz"] = MADRID
    page = ines.get(url()).content.decode()
    assert 'title="2030-07-01 21:59 UTC">2030-07-01 23:59 CEST</time>' in page
    # The name percent-encoded, as a browser may store it, is the same zone.
    ines.cookies["exchange_tz"] = "Europe%2FMadrid"
    assert "2030-07-01 23:59 CEST" in ines.get(url()).content.decode()
    # An unknown zone in the cookie is ignored: UTC.
    ines.cookies["exchange_tz"] = "../../etc/passwd"
    assert "2030-07-01 21:59 UTC" in ines.get(url()).content.decode()


def test_the_api_stays_in_utc_whatever_the_cookie(client_as, released):
    Assignment.objects.filter(pk=released.pk).update(
        due_date=dt.datetime(2030, 7, 1, 21, 59, tzinfo=UTC)
    )
    ines = client_as("ines")
    ines.cookies["exchange_tz"] = MADRID
    body = ines.get("/api/v1/courses/phys101/assignments/ps1").json()
    assert body["due_date"] == "2030-07-01 21:59:00.000000 UTC"


def test_the_forms_speak_spanish(client_as, released):
    deadlines.grant_extension(
        actor=None,
        assignment=released,
        username="sam",
        due_date=dt.datetime(2030, 1, 5, tzinfo=UTC),
    )
    ines = client_as("ines")
    page = text(ines.get(url(), HTTP_ACCEPT_LANGUAGE="es"))
    for words in [
        "Fecha límite y cierre",
        "Aceptar entregas hasta (cierre)",
        "Conceder o cambiar una prórroga",
        "Revocar la prórroga de sam",
        "Retirar la publicación",
        "Descargada por 0 estudiantes",
    ]:
        assert words in page
    response = ines.post(url("extensions/sam/revoke/"), HTTP_ACCEPT_LANGUAGE="es", follow=True)
    assert "La prórroga de sam está revocada." in text(response)


def test_a_student_sees_their_own_dates(client_as, released):
    deadlines.set_deadlines(
        actor=None,
        assignment=released,
        due_date=dt.datetime(2030, 1, 1, tzinfo=UTC),
        accept_until=dt.datetime(2030, 1, 2, tzinfo=UTC),
    )
    deadlines.grant_extension(
        actor=None,
        assignment=released,
        username="sam",
        due_date=dt.datetime(2030, 1, 5, tzinfo=UTC),
    )
    for path in [url(), "/courses/phys101/"]:
        sam = text(client_as("sam").get(path))
        assert "Due: <time" in sam and "2030-01-05 00:00 UTC" in sam
        assert "your extension" in sam and "2030-01-01 00:00" not in sam
        tia = text(client_as("tia").get(path))
        assert "2030-01-01 00:00 UTC" in tia and "2030-01-02 00:00 UTC" in tia
        assert "your extension" not in tia and "2030-01-05" not in tia


def files(**named: bytes) -> list:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return [SimpleUploadedFile(name, data) for name, data in named.items()]


def test_release_a_new_assignment_from_the_course_page(client_as, course, people):
    ines = client_as("ines")
    assert 'action="/courses/phys101/release/"' in ines.get("/courses/phys101/").content.decode()
    response = ines.post(
        "/courses/phys101/release/",
        {"code": "ps2", "files": files(**{"ps2.ipynb": b"{}", "data.csv": b"x\n1\n"})},
        follow=True,
    )
    assert "ps2 is released with 2 file(s)." in text(response)
    assignment = Assignment.objects.get(course=course, code="ps2")
    assert assignment.is_released
    paths = sorted(assignment.release.entries.values_list("path", flat=True))
    assert paths == ["data.csv", "ps2.ipynb"]
    assert events(AuditEvent.Action.RELEASED) == 1


@pytest.mark.parametrize(
    ("data", "status", "sentence"),
    [
        ({"code": "ps2"}, 400, "Choose the assignment's files."),
        ({"code": "../x", "files": files(a=b"1")}, 400, "Assignment id"),
    ],
)
def test_a_refused_release_is_the_sentence(client_as, course, people, data, status, sentence):
    response = client_as("ines").post("/courses/phys101/release/", data)
    assert response.status_code == status
    assert sentence in text(response)
    assert not Assignment.objects.exists()


def test_release_again_keeps_the_guard(client_as, people, released):
    services.fetch_assignment(user=people["sam"], assignment=released)
    ines = client_as("ines")
    data = {"code": "ps1", "files": files(**{"ps1.ipynb": b'{"new": 1}'})}
    response = ines.post("/courses/phys101/release/", data)
    assert response.status_code == 409
    assert "has been fetched by 1 and submitted by 0 students" in text(response)
    assert 'href="/courses/phys101/assignments/ps1/"' in text(response)
    released.refresh_from_db()
    assert released.release.entries.count() == 2
    data = {"code": "ps1", "force": "on", "files": files(**{"ps1.ipynb": b'{"new": 1}'})}
    assert ines.post("/courses/phys101/release/", data).status_code == 302
    released.refresh_from_db()
    assert list(released.release.entries.values_list("path", flat=True)) == ["ps1.ipynb"]


def test_graders_cannot_release(client_as, people, released):
    gus = client_as("gus")
    assert 'action="/courses/phys101/release/"' not in gus.get("/courses/phys101/").content.decode()
    data = {"code": "ps9", "files": files(a=b"1")}
    assert gus.post("/courses/phys101/release/", data).status_code == 403
    assert not Assignment.objects.filter(code="ps9").exists()


def test_the_admin_site_reads_dates_in_the_viewers_zone(django_user_model, released):
    ada = Client()
    ada.force_login(
        django_user_model.objects.create(username="root", is_staff=True, is_superuser=True)
    )
    ada.cookies["exchange_tz"] = MADRID
    response = ada.post(
        f"/admin/courses/assignment/{released.pk}/change/",
        {"due_date_0": "2026-12-01", "due_date_1": "23:59:00"},
    )
    assert response.status_code == 302
    released.refresh_from_db()
    assert released.due_date == dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC)
