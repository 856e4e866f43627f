"""The deadline policy and removal through the real ``nbgrader`` CLI, against a live server.

One instructor sets a due date and a cutoff that have both passed (without a re-release) and
gives one student an extension; ``list`` shows each student their own due date; the student
without one is refused in one sentence and nothing is recorded; the one with it submits on
time. At the end of the term ``manage.py purge`` removes the submissions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from courses.timestamps import format_timestamp

from .support import Person, answer, write_source

COURSE = "dl101"
IVY, SUE, STU = "dl-ivy", "dl-sue", "dl-stu"


@pytest.fixture(scope="module")
def run(service, tmp_path_factory) -> dict[str, Any]:
    tokens = service.tokens(IVY, SUE, STU)
    service.create_course(COURSE, IVY, [SUE, STU])
    root = tmp_path_factory.mktemp("deadlines")
    ivy, sue, stu = (
        Person(name, root, service.url, tokens[name], course_id=COURSE) for name in (IVY, SUE, STU)
    )
    r: dict[str, Any] = {}
    write_source(ivy.work)
    ivy.nbgrader("generate_assignment", "ps1")
    ivy.nbgrader("release_assignment", "ps1")
    for person in (sue, stu):
        person.nbgrader("fetch_assignment", "ps1")
        answer(person.work / "ps1" / "ps1.ipynb")

    # Dates changed after the release, no re-release: both passed; Stu gets a week more.
    now = dt.datetime.now(dt.timezone.utc)
    r["due"], r["cutoff"], r["extended"] = (
        format_timestamp(now - dt.timedelta(hours=2)),
        format_timestamp(now - dt.timedelta(hours=1)),
        format_timestamp(now + dt.timedelta(days=7)),
    )
    a = f"courses/{COURSE}/assignments/ps1"
    r["patch"] = service.api(
        "PATCH", a, tokens[IVY], json={"due_date": r["due"], "accept_until": r["cutoff"]}
    )
    r["extend"] = service.api(
        "PUT", f"{a}/extensions/{STU}", tokens[IVY], json={"due_date": r["extended"]}
    )

    r["sue list"] = sue.nbgrader("list").output
    r["stu list"] = stu.nbgrader("list").output
    r["sue submit"] = sue.nbgrader("submit", "ps1", check=False)
    r["sue records"] = list((sue.cache / COURSE).glob("*")) if (sue.cache / COURSE).exists() else []
    r["stu submit"] = stu.nbgrader("submit", "ps1", check=False)
    r["submissions"] = service.api("GET", f"{a}/submissions", tokens[IVY]).json()
    r["events"] = service.server.manage(
        "shell",
        "-c",
        "from courses.models import AuditEvent; print(sorted(AuditEvent.objects.filter("
        f"course__code={COURSE!r}).values_list('action', flat=True).distinct()))",
    ).stdout

    # The end of the term.
    r["purge dry"] = service.server.manage("purge", COURSE, "--dry-run").stdout
    r["after dry"] = service.api("GET", f"{a}/submissions", tokens[IVY]).json()
    r["purge"] = service.server.manage("purge", COURSE, "--assignment", "ps1").stdout
    r["after purge"] = service.api("GET", f"{a}/submissions", tokens[IVY]).json()
    return r


def test_dates_change_without_a_re_release(run):
    assert run["patch"].status_code == 200, run["patch"].text
    assert run["patch"].json()["accept_until"] == run["cutoff"]
    assert run["extend"].status_code == 201, run["extend"].text


def test_list_shows_each_students_own_due_date(run):
    assert f"{COURSE} ps1 (due {run['due']}) (accepted until {run['cutoff']})" in run["sue list"]
    # Stu's cutoff moved with the extended due date.
    expected = f"{COURSE} ps1 (due {run['extended']}) (accepted until {run['extended']})"
    assert expected in run["stu list"]


def test_a_submit_after_the_cutoff_is_refused_in_one_sentence_and_nothing_recorded(run):
    refused = run["sue submit"]
    assert not refused.ok
    assert "Traceback" not in refused.output
    assert (
        f"answered 403: Assignment 'ps1' of course '{COURSE}' stopped accepting submissions "
        f"at {run['cutoff']}; only an instructor of the course can extend the cutoff for you."
    ) in refused.output
    assert run["sue records"] == []
    assert SUE not in {s["student"] for s in run["submissions"]}


def test_the_student_with_an_extension_submits_on_time(run):
    assert run["stu submit"].ok, run["stu submit"].output
    [submission] = run["submissions"]
    assert (submission["student"], submission["late"]) == (STU, False)
    assert "'submitted'" in run["events"]
    assert "'extension_granted'" in run["events"]
    assert "'cutoff_changed'" in run["events"]


def test_purge_ends_the_term_with_a_summary(run):
    assert run["purge dry"].startswith(
        f"Dry run: would delete 1 submission(s) of 1 student(s) to 1 assignment(s) in {COURSE}"
    )
    assert len(run["after dry"]) == 1
    assert run["purge"].startswith(
        f"Deleted 1 submission(s) of 1 student(s) to 1 assignment(s) in assignment ps1 of {COURSE}"
    )
    assert run["after purge"] == []
