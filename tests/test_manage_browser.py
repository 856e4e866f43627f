"""Each action of the pages clicked in Chromium by an instructor whose browser is in
Europe/Madrid: the due date, the cutoff, an extension granted, changed and revoked, a release
from the course page and again from the assignment page, the release withdrawn (refused while
in use, then forced). Screenshots under test-artifacts/screenshots/manage/."""

from __future__ import annotations

import datetime as dt

import pytest

from courses import deadlines, services
from courses.models import Assignment, AuditEvent, Extension
from tests.harness.uploads import make_upload

from .browser_pages import open_in_zone, shot, signed_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.sqlite_only,  # the pages' logic runs on both databases in web/tests
]

UTC = dt.UTC
ZONE = "Europe/Madrid"


@pytest.fixture
def setup():
    course = services.create_course(code="phys101", title="Physics")
    ines = services.add_member(course=course, username="ines", role="instructor").user
    sam = services.add_member(course=course, username="sam", role="student").user
    services.add_member(course=course, username="tia", role="student")
    assignment = services.release_assignment(
        actor=ines, course=course, code="ps1", upload=make_upload({"ps1.ipynb": b"{}"})
    )
    return {"ines": ines, "sam": sam, "assignment": assignment}


def page_url(live_server) -> str:
    return f"{live_server.url}/courses/phys101/assignments/ps1/"


def test_due_date_typed_in_madrid_is_madrid_time(chromium, live_server, setup):
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        open_in_zone(page, page_url(live_server), ZONE)
        assert "Europe/Madrid" in page.inner_text(".zone-note")
        page.fill("#due_date", "2026-12-01T23:59")
        shot(page, "due-date-1-typed")
        page.click("form[action$='/deadlines/'] button")
        page.wait_for_selector("ul.messages")
        shot(page, "due-date-2-saved")
        due = page.locator(".figures time").nth(1)
        assert due.inner_text() == "2026-12-01 23:59 CET"
        assert due.get_attribute("title") == "2026-12-01 22:59 UTC"
        assert page.input_value("#due_date") == "2026-12-01T23:59"
    assignment = Assignment.objects.get(pk=setup["assignment"].pk)
    assert assignment.due_date == dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC)


def test_cutoff_before_the_due_date_is_refused_then_set(chromium, live_server, setup):
    deadlines.set_deadlines(
        actor=None,
        assignment=setup["assignment"],
        due_date=dt.datetime(2026, 12, 1, 22, 59, tzinfo=UTC),
    )
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        open_in_zone(page, page_url(live_server), ZONE)
        page.fill("#accept_until", "2026-11-30T12:00")
        page.click("form[action$='/deadlines/'] button")
        alert = page.wait_for_selector("[role=alert]")
        assert "cannot be before the due date" in alert.inner_text()
        shot(page, "cutoff-1-refused")
        assert Assignment.objects.get(pk=setup["assignment"].pk).accept_until is None
        page.go_back()
        open_in_zone(page, page_url(live_server), ZONE)
        page.fill("#accept_until", "2026-12-03T09:00")
        page.click("form[action$='/deadlines/'] button")
        page.wait_for_selector("ul.messages")
        shot(page, "cutoff-2-saved")
        assert page.input_value("#accept_until") == "2026-12-03T09:00"
    assignment = Assignment.objects.get(pk=setup["assignment"].pk)
    assert assignment.accept_until == dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def test_grant_and_change_an_extension(chromium, live_server, setup):
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        open_in_zone(page, page_url(live_server), ZONE)
        page.select_option("#ext_student", "sam")
        page.fill("#ext_due_date", "2026-12-08T23:59")
        shot(page, "extension-1-form")
        page.click("form[action$='/extensions/'] button")
        page.wait_for_selector("table.extensions")
        assert "sam has an extension." in page.inner_text("ul.messages")
        row = page.locator("table.extensions tbody tr").first
        assert "sam" in row.inner_text() and "2026-12-08 23:59 CET" in row.inner_text()
        shot(page, "extension-2-granted")
        page.select_option("#ext_student", "sam")
        page.fill("#ext_due_date", "2026-12-09T23:59")
        page.click("form[action$='/extensions/'] button")
        page.wait_for_selector("ul.messages")
        assert "2026-12-09 23:59 CET" in page.inner_text("table.extensions")
        shot(page, "extension-3-changed")
    extension = Extension.objects.get(student=setup["sam"])
    assert extension.due_date == dt.datetime(2026, 12, 9, 22, 59, tzinfo=UTC)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXTENSION_GRANTED).count() == 2


def test_revoke_an_extension(chromium, live_server, setup):
    deadlines.grant_extension(
        actor=setup["ines"],
        assignment=setup["assignment"],
        username="sam",
        due_date=dt.datetime(2026, 12, 8, 22, 59, tzinfo=UTC),
    )
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        open_in_zone(page, page_url(live_server), ZONE)
        shot(page, "revoke-1-before")
        page.get_by_role("button", name="Revoke the extension of sam").click()
        page.wait_for_selector("ul.messages")
        assert "The extension of sam is revoked." in page.inner_text("ul.messages")
        assert page.locator("table.extensions").count() == 0
        shot(page, "revoke-2-revoked")
    assert not Extension.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXTENSION_REVOKED).count() == 1


def test_unrelease_is_refused_while_in_use_then_forced(chromium, live_server, setup):
    services.fetch_assignment(user=setup["sam"], assignment=setup["assignment"])
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        open_in_zone(page, page_url(live_server), ZONE)
        assert "Fetched by 1 student" in page.inner_text("#release-heading + p")
        page.click("form[action$='/unrelease/'] button")
        alert = page.wait_for_selector("[role=alert]")
        assert "has been fetched by 1 and submitted by 0 students" in alert.inner_text()
        shot(page, "unrelease-1-refused")
        assert Assignment.objects.get(pk=setup["assignment"].pk).is_released
        page.click("text=Back to the assignment")
        page.check("#force")
        shot(page, "unrelease-2-forced")
        page.click("form[action$='/unrelease/'] button")
        page.wait_for_selector("ul.messages")
        assert "The assignment is no longer released." in page.inner_text("ul.messages")
        assert "Not released." in page.inner_text("section.manage:last-of-type")
        shot(page, "unrelease-3-done")
    assert not Assignment.objects.get(pk=setup["assignment"].pk).is_released


def test_release_from_the_course_page_then_again(chromium, live_server, setup, tmp_path):
    first = tmp_path / "ps2.ipynb"
    first.write_bytes(b'{"cells": []}')
    second = tmp_path / "data.csv"
    second.write_bytes(b"x\n1\n")
    with signed_in(chromium, live_server, setup["ines"], timezone_id=ZONE) as page:
        page.goto(f"{live_server.url}/courses/phys101/")
        page.fill("#release_code", "ps2")
        page.set_input_files("#release_files", [str(first), str(second)])
        shot(page, "release-1-chosen")
        page.click("form.release button")
        page.wait_for_selector("ul.messages")
        assert "ps2 is released with 2 file(s)." in page.inner_text("ul.messages")
        assert page.url.endswith("/courses/phys101/assignments/ps2/")
        shot(page, "release-2-released")
        page.set_input_files("#release_files", [str(first)])
        page.click("form.release button")
        page.wait_for_selector("ul.messages")
        shot(page, "release-3-again")
    ps2 = Assignment.objects.get(code="ps2")
    assert list(ps2.release.entries.values_list("path", flat=True)) == ["ps2.ipynb"]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RELEASED).count() == 3


def test_a_students_first_visit_shows_their_zone(chromium, live_server, setup):
    """No form, no cookie yet: the script rewrites the times; the next page comes from the
    server in the browser's zone. The tooltip keeps UTC either way."""
    deadlines.set_deadlines(
        actor=None,
        assignment=setup["assignment"],
        due_date=dt.datetime(2026, 12, 2, 4, 59, tzinfo=UTC),
    )
    with signed_in(chromium, live_server, setup["sam"], timezone_id="America/New_York") as page:
        page.goto(page_url(live_server))
        due = page.locator("main time").first
        page.wait_for_function(
            "() => document.querySelector('main time').dataset.zone === 'America/New_York'"
        )
        assert due.inner_text() == "2026-12-01 23:59 EST"
        assert due.get_attribute("title") == "2026-12-02 04:59 UTC"
        shot(page, "zone-1-first-visit")
        page.reload()
        assert "2026-12-01 23:59 EST" in page.inner_text("main")
        assert page.locator("main time").first.get_attribute("data-zone") == "America/New_York"
