"""Every page and form, for an instructor, a grader, a student and nobody signed in, checked in
Chromium by axe-core (npm, installed by `make axe-core`): no WCAG 2.1 A or AA violation.

The pages are seen as their people see them: an assignment with an extension and submissions
(one late, one with feedback), the audit trail, a form's refusal and its success message, the
403 and 404 pages, the sign-in pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from courses import deadlines, grades, regrades, services
from tests.harness import REPO
from tests.harness.uploads import make_upload

from .browser_pages import signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
UTC = dt.UTC


@pytest.fixture
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: make axe-core (make test does it)")
    return Path(AXE).read_text()


@pytest.fixture
def term():
    """phys101: ines instructor, gus grader, sam and tia students; ps1 released with a due
    date and a cutoff, tia's extension, sam's submission late with feedback and a score, tia's
    on time; ps2 not released."""
    course = services.create_course(code="phys101", title="Physics")
    people = {
        name: services.add_member(
            course=course, username=name, role=role, first_name=name.title(), last_name="Doe"
        ).user
        for name, role in [
            ("ines", "instructor"),
            ("gus", "grader"),
            ("sam", "student"),
            ("tia", "student"),
        ]
    }
    ines = people["ines"]
    files = {"ps1.py": b"print(42)\n", "README.txt": b"Answer every question.\n"}
    ps1 = services.release_assignment(
        actor=ines, course=course, code="ps1", upload=make_upload(files)
    )
    services.release_assignment(actor=ines, course=course, code="ps2", upload=make_upload(files))
    ps2 = services.unrelease_assignment(actor=ines, assignment=course.assignments.get(code="ps2"))
    services.fetch_assignment(user=people["tia"], assignment=ps1)
    tia = services.submit_assignment(
        student=people["tia"], assignment=ps1, upload=make_upload({"ps1.py": b"x = 1\n"})
    )
    deadlines.set_deadlines(
        actor=ines,
        assignment=ps1,
        due_date=tia.timestamp + dt.timedelta(seconds=1),
        accept_until=dt.datetime(2099, 1, 1, tzinfo=UTC),
    )
    deadlines.grant_extension(
        actor=ines,
        assignment=ps1,
        username="tia",
        due_date=dt.datetime(2099, 1, 1, tzinfo=UTC),
    )
    sam = services.submit_assignment(
        student=people["sam"], assignment=ps1, upload=make_upload({"ps1.py": b"x = 2\n"})
    )
    deadlines.set_deadlines(actor=ines, assignment=ps1, due_date=tia.timestamp)
    services.release_feedback(
        actor=ines,
        submission=sam,
        upload=make_upload({"ps1.txt": b"Well done.\n"}),
        scores=grades.check_scores([{"notebook": "ps1", "score": 7.5, "max_score": 10}]),
    )
    # Regrade requests: sam's open, tia's answered.
    services.release_feedback(
        actor=ines, submission=tia, upload=make_upload({"ps1.txt": b"Good.\n"})
    )
    open_request = regrades.request_regrade(
        student=people["sam"], submission=sam, message="Question 2 was right."
    )
    answered = regrades.request_regrade(
        student=people["tia"], submission=tia, message="Please look at question 3."
    )
    regrades.answer_regrade(
        actor=people["gus"], request=answered, status="declined", answer="3 is wrong."
    )
    return {
        "people": people,
        "ps1": ps1,
        "ps2": ps2,
        "sam": sam,
        "tia": tia,
        "open": open_request.pk,
        "answered": answered.pk,
    }


def violations(page, axe_source: str) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations of the page as it is, one line each."""
    page.evaluate(axe_source)
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: tags},
                iframes: false,  // a frame shows a submitted file, not one of the pages
            });
            return result.violations.map(v => ({
                id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" ")),
            }));
        }""",
        TAGS,
    )
    return [f"{page.url}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in found]


def check(page, axe_source: str, urls: list[str], base: str) -> list[str]:
    found: list[str] = []
    for url in urls:
        page.goto(base + url)
        page.wait_for_load_state("load")
        found += violations(page, axe_source)
    return found


def test_pages_of_nobody_signed_in(chromium, live_server, axe_source, term):
    with signed_in(chromium, live_server, None) as page:
        found = check(
            page, axe_source, ["/login/", "/logged-out/", "/login-failed/"], live_server.url
        )
        # The login form refused.
        page.goto(live_server.url + "/login/")
        page.fill("input[name=username]", "nobody")
        page.fill("input[name=password]", "wrong")
        page.click("form.login button")
        page.wait_for_load_state("load")
        found += violations(page, axe_source)
    assert found == []


def test_pages_of_an_instructor(chromium, live_server, axe_source, term):
    assignment = "/courses/phys101/assignments/ps1/"
    urls = [
        "/",
        "/courses/phys101/",
        assignment,
        assignment + "?status=late&q=sam",
        "/courses/phys101/assignments/ps2/",
        "/courses/phys101/audit/",
        f"/submissions/{term['sam'].pk}/",
        f"/submissions/{term['tia'].pk}/",
        "/courses/nope/",  # the 404 page
        "/courses/phys101/regrades/",
        "/courses/phys101/regrades/?status=all",
        f"/regrades/{term['open']}/",  # the answer form
        f"/regrades/{term['answered']}/",
    ]
    with signed_in(chromium, live_server, term["people"]["ines"]) as page:
        found = check(page, axe_source, urls, live_server.url)
        page.goto(live_server.url + assignment)
        assert "7.5 / 10" in page.inner_text("table.students")  # the scores column, checked
        page.goto(f"{live_server.url}/regrades/{term['open']}/")
        assert page.locator("form.regrade textarea").count() == 1  # the answer form, checked
        # A form refused (the service's sentence), then one done (the message on the page).
        page.goto(live_server.url + assignment)
        page.wait_for_selector("input[name=tz][value='Europe/Madrid']", state="attached")
        page.fill("#accept_until", "2000-01-01T00:00")
        page.click("form[action$='/deadlines/'] button")
        page.wait_for_selector("[role=alert]")
        found += violations(page, axe_source)
        page.goto(live_server.url + assignment)
        page.select_option("#ext_student", "sam")
        page.fill("#ext_due_date", "2099-01-01T00:00")
        page.click("form[action$='/extensions/'] button")
        page.wait_for_selector("ul.messages")
        found += violations(page, axe_source)
    assert found == []


def test_pages_of_an_instructor_in_spanish(chromium, live_server, axe_source, term):
    with signed_in(chromium, live_server, term["people"]["ines"], locale="es-ES") as page:
        found = check(page, axe_source, ["/courses/phys101/assignments/ps1/"], live_server.url)
        assert page.get_attribute("html", "lang") == "es"
    assert found == []


def test_pages_of_a_grader(chromium, live_server, axe_source, term):
    urls = [
        "/",
        "/courses/phys101/",
        "/courses/phys101/assignments/ps1/",
        "/courses/phys101/assignments/ps2/",
        f"/submissions/{term['sam'].pk}/",
        "/courses/phys101/audit/",  # the 403 page
        "/admin/",  # the admin site refused
        "/courses/phys101/regrades/",
        f"/regrades/{term['open']}/",
    ]
    with signed_in(chromium, live_server, term["people"]["gus"]) as page:
        found = check(page, axe_source, urls, live_server.url)
    assert found == []


def test_pages_of_a_student(chromium, live_server, axe_source, term):
    urls = [
        "/",
        "/courses/phys101/",
        "/courses/phys101/assignments/ps1/",
        f"/submissions/{term['sam'].pk}/",
        f"/submissions/{term['tia'].pk}/",  # not theirs: 404
        "/courses/phys101/audit/",  # 403
        "/courses/phys101/regrades/",
        f"/regrades/{term['open']}/",  # their open request, the withdraw form
    ]
    with signed_in(chromium, live_server, term["people"]["sam"]) as page:
        found = check(page, axe_source, urls, live_server.url)
    # tia's request was answered: her submission page asks again, the ask page too.
    again = [f"/submissions/{term['tia'].pk}/", f"/submissions/{term['tia'].pk}/regrade/"]
    again.append(f"/regrades/{term['answered']}/")
    with signed_in(chromium, live_server, term["people"]["tia"]) as page:
        found += check(page, axe_source, again, live_server.url)
        page.goto(f"{live_server.url}/submissions/{term['tia'].pk}/regrade/")
        assert page.locator("textarea").count() == 1  # the ask form, checked
    assert found == []


def test_axe_finds_what_it_is_asked_to(chromium, live_server, axe_source):
    """The check can fail: an image without a text alternative and a field without a label
    are violations."""
    with signed_in(chromium, live_server, None) as page:
        page.goto(live_server.url + "/logged-out/")
        page.evaluate(
            "document.querySelector('main').insertAdjacentHTML('beforeend',"
            ' \'<img src="x.png"><input type="text">\')'
        )
        found = violations(page, axe_source)
    assert any("image-alt" in line for line in found)
    assert any("label" in line for line in found)
