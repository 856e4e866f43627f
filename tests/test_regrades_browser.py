"""A regrade request through the pages in Chromium: sam asks on his returned submission,
ines finds it on the course page and answers it, sam sees the answer. Screenshots of each
step go to test-artifacts/regrades/."""

from __future__ import annotations

import pytest
from django.test import Client

from courses import services
from courses.models import RegradeRequest
from tests.harness import REPO
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = REPO / "test-artifacts" / "regrades"


def _signed_in(chromium, live_server, settings, user):
    client = Client()
    client.force_login(user)
    context = chromium.new_context(locale="en-US")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context


def test_student_asks_instructor_answers_student_reads(chromium, live_server, settings):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    course = services.create_course(code="phys101", title="Physics")
    ines = services.add_member(course=course, username="ines", role="instructor").user
    sam = services.add_member(course=course, username="sam", role="student").user
    assignment = services.release_assignment(
        actor=ines, course=course, code="ps1", upload=make_upload({"ps1.txt": b"Q1, Q2"})
    )
    # Plain text files: no notebook preview (and no render worker) on these pages.
    submission = services.submit_assignment(
        student=sam, assignment=assignment, upload=make_upload({"answers.txt": b"42, 7"})
    )
    services.release_feedback(
        actor=ines, submission=submission, upload=make_upload({"feedback.txt": b"Q2: 0/5"})
    )

    student = _signed_in(chromium, live_server, settings, sam)
    teacher = _signed_in(chromium, live_server, settings, ines)
    try:
        page = student.new_page()
        page.goto(f"{live_server.url}/submissions/{submission.pk}/")
        page.get_by_label("What should be looked at again, and why?").fill(
            "Question 2: my answer 7 is what the solution gives."
        )
        page.screenshot(path=str(SCREENSHOTS / "1-student-asks.png"), full_page=True)
        page.get_by_role("button", name="Ask for a regrade").click()
        page.wait_for_url(f"**/submissions/{submission.pk}/#regrades")
        assert page.get_by_text("Waiting for an answer.").is_visible()
        assert page.get_by_role("button", name="Ask for a regrade").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "2-student-waits.png"), full_page=True)

        [request] = RegradeRequest.objects.all()
        staff = teacher.new_page()
        staff.goto(f"{live_server.url}/courses/phys101/")
        assert staff.get_by_role("heading", name="Regrade requests waiting for an answer")
        staff.screenshot(path=str(SCREENSHOTS / "3-course-page-open-request.png"), full_page=True)
        staff.get_by_role("link", name=f"Answer request {request.pk}").click()
        staff.wait_for_url(f"**/regrades/{request.pk}/")
        assert "my answer 7" in staff.inner_text("main")
        staff.get_by_label("Accept: the grade changes").check()
        staff.get_by_label("Answer to the student").fill("You are right: Q2 is 5/5 now.")
        staff.screenshot(path=str(SCREENSHOTS / "4-instructor-answers.png"), full_page=True)
        staff.get_by_role("button", name="Send the answer").click()
        staff.wait_for_load_state()
        assert staff.locator(".tag.regrade-accepted").inner_text() == "accepted"
        staff.goto(f"{live_server.url}/courses/phys101/")
        assert staff.get_by_text("No regrade requests are waiting.").is_visible()

        page.reload()
        assert page.get_by_text("You are right: Q2 is 5/5 now.").is_visible()
        assert page.get_by_text("Answer from ines").is_visible()
        page.screenshot(path=str(SCREENSHOTS / "5-student-reads-answer.png"), full_page=True)
    finally:
        student.close()
        teacher.close()
    request.refresh_from_db()
    assert (request.status, request.answered_by) == ("accepted", ines)
