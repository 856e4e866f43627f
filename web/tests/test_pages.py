"""What the pages show: figures on the course page, a row per student with filters, the
zip of latest submissions, a submission with its notebook rendered in a sandbox, a student's
own view, the audit trail, and every URL under the JupyterHub service prefix."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from courses import services

from .support import wait_for_preview

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's visible text, tags dropped, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", body)


def test_my_courses_lists_each_course_with_my_role(work, client_as):
    assert "phys101 Physics grader" in text(client_as("gus").get("/"))
    assert "phys101 Physics student" in text(client_as("sam").get("/"))
    assert "not in any course" in text(client_as("olga").get("/"))
    assert "(as administrator)" in text(client_as("ada").get("/"))


def test_course_page_shows_roster_counts_and_assignment_figures(work, client_as):
    page = text(client_as("ines").get("/courses/phys101/"))
    assert "1 instructor" in page and "1 grader" in page and "2 students" in page
    # ps1: fetched by 1 (sam), submitted by 2, late 1 (sam), feedback on 1 submission.
    row = re.search(r"ps1 (.*?) UTC (.*?) UTC (\d+) (\d+) (\d+) (\d+)", page)
    assert row is not None, page
    assert row.groups()[2:] == ("1", "2", "1", "1")
    assert "Audit trail" in page
    assert "Audit trail" not in text(client_as("gus").get("/courses/phys101/"))


def test_unreleased_assignment_is_listed_for_instructors_only(work, client_as, course, people):
    from courses.models import Assignment

    Assignment.objects.create(course=course, code="draft")
    assert "draft not released" in text(client_as("ines").get("/courses/phys101/"))
    assert "draft" not in text(client_as("sam").get("/courses/phys101/"))
    assert client_as("sam").get("/courses/phys101/assignments/draft/").status_code == 404


def test_assignment_page_has_a_row_per_student_with_latest_count_late_feedback(work, client_as):
    page = text(client_as("gus").get("/courses/phys101/assignments/ps1/"))
    sam = re.search(r"sam (\S+ \S+) UTC late (\d+) (\w+)", page)
    assert sam is not None, page
    assert sam.group(2) == "2" and sam.group(3) == "released"
    tia = re.search(r"tia (\S+ \S+) UTC on time (\d+) not yet", page)
    assert tia is not None and tia.group(2) == "1"
    assert "2 of 2 students" in page


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("all", {"sam", "tia", "newbie"}),
        ("submitted", {"sam", "tia"}),
        ("missing", {"newbie"}),
        ("late", {"sam"}),
        ("on_time", {"tia"}),
        ("feedback", {"sam"}),
        ("no_feedback", {"tia"}),
        ("nonsense", {"sam", "tia", "newbie"}),
    ],
)
def test_assignment_filters(work, client_as, course, status, shown):
    services.add_member(course=course, username="newbie", role="student")
    response = client_as("ines").get("/courses/phys101/assignments/ps1/", {"status": status})
    rows = re.findall(r"<tr>\s*<td>(\w+)", response.content.decode())
    assert set(rows) == shown


def test_assignment_filter_by_name(work, client_as):
    response = client_as("ines").get("/courses/phys101/assignments/ps1/", {"q": "TI"})
    assert re.findall(r"<tr>\s*<td>(\w+)", response.content.decode()) == ["tia"]
    assert "1 of 2 students" in text(response)


def test_download_all_latest_is_one_zip_by_student_and_is_recorded(work, client_as):
    from courses.models import AuditEvent

    response = client_as("ines").get("/courses/phys101/assignments/ps1/latest.zip")
    assert response["Content-Type"] == "application/zip"
    assert 'filename="phys101-ps1-latest.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["sam/ps1.ipynb", "tia/notes.txt", "tia/ps1.ipynb"]
    assert b"second try" in archive.read("sam/ps1.ipynb")
    assert AuditEvent.objects.filter(action="collected", actor_name="ines").exists()


def test_submission_page_lists_files_and_renders_notebooks_in_a_sandbox(work, client_as):
    sub = work["tia"]
    response = client_as("ines").get(f"/submissions/{sub.pk}/")
    page = text(response)
    assert "ps1 by tia" in page
    assert re.search(r"notes\.txt 9 bytes download", page)
    html = response.content.decode()
    assert "No feedback has been released" in page
    # The notebook's preview is made outside the request: meanwhile the page says so and
    # refreshes; then the frame shows it.
    assert "The preview of this notebook is being made" in page
    assert '<meta http-equiv="refresh" content="5">' in html
    url = f"/submissions/{sub.pk}/submission/view/ps1.ipynb"
    wait_for_preview(client_as("ines"), url)
    html = client_as("ines").get(f"/submissions/{sub.pk}/").content.decode()
    assert f'<iframe sandbox title="ps1.ipynb" loading="lazy" src="{url}">' in html
    assert 'http-equiv="refresh"' not in html

    view = client_as("ines").get(url)
    assert view["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert view["X-Frame-Options"] == "SAMEORIGIN"
    body = b"".join(view.streaming_content).decode()
    assert "Tia&#39;s answer" in body or "Tia's answer" in body
    assert "42" in body
    assert (
        "https://"
        not in re.sub(r"<a [^>]*>", "", body.split("<body")[0]).replace("https://jupyter.org", "")
        or "cdn" not in body
    )
    assert not re.search(r'src="https?://', body)


def test_text_files_are_shown_escaped(work, client_as):
    sub = work["tia"]
    view = client_as("tia").get(f"/submissions/{sub.pk}/submission/view/notes.txt")
    assert "&lt;b&gt;hi&lt;/b&gt;" in view.content.decode()


def test_feedback_html_is_shown_sandboxed(work, client_as):
    sub = work["sam_late"]
    page = client_as("sam").get(f"/submissions/{sub.pk}/")
    assert f"/submissions/{sub.pk}/feedback/view/ps1.html" in page.content.decode()
    view = client_as("sam").get(f"/submissions/{sub.pk}/feedback/view/ps1.html")
    assert "Well done, Sam" in view.content.decode()
    assert "sandbox" in view["Content-Security-Policy"]


def test_missing_files_and_feedback_are_404(work, client_as):
    ines = client_as("ines")
    tia = work["tia"].pk
    assert ines.get(f"/submissions/{tia}/feedback/view/ps1.html").status_code == 404
    assert ines.get(f"/submissions/{tia}/submission/view/nope.ipynb").status_code == 404
    assert ines.get(f"/submissions/{tia}/other/view/ps1.ipynb").status_code == 404


def test_file_download_is_the_exact_bytes(work, client_as):
    sub = work["tia"]
    response = client_as("tia").get(f"/submissions/{sub.pk}/submission/files/notes.txt")
    assert b"".join(response.streaming_content) == b"<b>hi</b>"
    assert response["Content-Length"] == "9"
    assert 'filename="notes.txt"' in response["Content-Disposition"]


def test_submission_zip(work, client_as):
    sub = work["tia"]
    response = client_as("tia").get(f"/submissions/{sub.pk}/download")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["notes.txt", "ps1.ipynb"]


def test_student_sees_own_submissions_with_feedback(work, client_as):
    page = text(client_as("sam").get("/courses/phys101/"))
    assert "My submissions" in page
    assert page.count(" UTC") >= 3  # due date and two submissions
    assert "feedback released" in page and "no feedback yet" in page
    assert "tia" not in page
    page = text(client_as("sam").get("/courses/phys101/assignments/ps1/"))
    assert "feedback released" in page and "tia" not in page


def test_student_keeps_seeing_an_unreleased_assignment_they_submitted_to(work, client_as, people):
    services.unrelease_assignment(actor=people["ines"], assignment=work["assignment"], force=True)
    page = text(client_as("sam").get("/courses/phys101/"))
    assert "ps1" in page and "feedback released" in page
    assert "ps1" not in text(client_as("olga").get("/"))


def test_student_without_submissions_is_told_so(work, client_as, course):
    services.add_member(course=course, username="newbie", role="student")
    client = client_as(None)
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="newbie"))
    assert "You have not submitted this assignment." in text(client.get("/courses/phys101/"))


def test_empty_course_says_so(client_as, course, people):
    assert "No assignments yet" in text(client_as("ines").get("/courses/phys101/"))
    assert "No assignments have been released" in text(client_as("sam").get("/courses/phys101/"))


def test_audit_trail_lists_events_newest_first_and_pages(work, client_as, people, course):
    page = text(client_as("ines").get("/courses/phys101/audit/"))
    order = [
        m.group(1)
        for m in re.finditer(r"UTC \w+ (feedback released|submitted|fetched|released)", page)
    ]
    assert order == [
        "feedback released",
        "submitted",
        "submitted",
        "submitted",
        "fetched",
        "released",
    ]
    for n in range(60):
        services.add_member(course=course, username=f"s{n}", role="student")
    first = client_as("ines").get("/courses/phys101/audit/")
    assert "Page 1 of 2" in text(first) and "?page=2" in first.content.decode()
    second = text(client_as("ines").get("/courses/phys101/audit/", {"page": 2}))
    assert "Page 2 of 2" in second and "Newer" in second


def test_pages_work_under_the_service_prefix(work, client_as, settings):
    settings.EXCHANGE_URL_PREFIX = "/services/nbgrader-exchange"
    ines = client_as("ines")
    response = ines.get("/services/nbgrader-exchange/courses/phys101/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/services/nbgrader-exchange/courses/phys101/assignments/ps1/"' in html
    assert 'action="/services/nbgrader-exchange/logout/"' in html
    anonymous = client_as(None).get("/services/nbgrader-exchange/courses/phys101/")
    assert anonymous["Location"] == (
        "/services/nbgrader-exchange/login/?next=/services/nbgrader-exchange/courses/phys101/"
    )
    # Health probes reach the pod without the prefix.
    assert client_as(None).get("/healthz").status_code == 200
    assert client_as(None).get("/services/nbgrader-exchange/healthz").status_code == 200
    assert client_as(None).get("/services/nbgrader-exchangeX/healthz").status_code == 404
    root = client_as(None).get("/services/nbgrader-exchange")
    assert root.status_code == 302
