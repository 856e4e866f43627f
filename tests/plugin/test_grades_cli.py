"""Grades and the roster through the real ``nbgrader`` CLI, against a live server.

The instructor's gradebook has a due date before the release, and the release carries it.
Two students submit twice around a later gradebook due date; one has an extension on the
exchange, so ``collect --before-duedate`` takes her second submission and his first. Collect
writes the roster's names into the gradebook (``nbgrader db student list``); the sync helper
adds the student who submitted nothing. ``autograde`` scores them, ``release_feedback``
carries the scores, the student sees hers, and ``manage.py export_grades --format canvas``
lists them for Canvas.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from typing import Any

import pytest
from nbgrader.utils import parse_utc

from courses.timestamps import format_timestamp
from tests.harness import REPO

from .support import Person, answer, write_source

COURSE = "gr101"
IVY, AMY, BOB, CAL = "gr-ivy", "gr-amy", "gr-bob", "gr-cal"
NAMES = {
    AMY: ("Ada", "Lovelace", "ada@example.org"),
    BOB: ("Bob", "=Tables", "bob@example.org"),
    CAL: ("Cal", "Culus", "cal@example.org"),
}
RELEASE_DUE = "2031-05-01 12:00:00.000000 UTC"


def sync_roster(person: Person, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m nbgrader_exchange.sync_roster`` in the person's course directory (under
    coverage when the tests are measured)."""
    command = [sys.executable, "-m", "nbgrader_exchange.sync_roster", *args]
    env = person.env()
    try:
        import coverage

        current = coverage.Coverage.current()
    except ImportError:  # pragma: no cover
        current = None
    if current is not None:
        env["COVERAGE_FILE"] = str(current.config.data_file)
        command[1:1] = [
            "-m",
            "coverage",
            "run",
            "--parallel-mode",
            f"--rcfile={REPO}/pyproject.toml",
        ]
    done = subprocess.run(
        command,
        cwd=person.work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 or not check, done.stdout
    return done


@pytest.fixture(scope="module")
def run(service, tmp_path_factory) -> dict[str, Any]:
    tokens = service.tokens(IVY, AMY, BOB, CAL)
    service.create_course(COURSE, IVY, [AMY, BOB, CAL])
    for name, (first, last, email) in NAMES.items():
        given = service.api(
            "PUT",
            f"courses/{COURSE}/members/{name}",
            json={"role": "student", "first_name": first, "last_name": last, "email": email},
        )
        assert given.status_code == 200, given.text
    root = tmp_path_factory.mktemp("grades")
    ivy, amy, bob = (
        Person(name, root, service.url, tokens[name], course_id=COURSE) for name in (IVY, AMY, BOB)
    )
    a = f"courses/{COURSE}/assignments/ps1"
    r: dict[str, Any] = {}

    # The gradebook's due date goes out with the release.
    write_source(ivy.work)
    ivy.nbgrader("db", "assignment", "add", "ps1", f"--duedate={RELEASE_DUE}")
    ivy.nbgrader("generate_assignment", "ps1")
    ivy.nbgrader("release_assignment", "ps1")
    r["released"] = service.api("GET", a, tokens[IVY]).json()

    # Two submissions each, wrong then right: which one was collected shows in the score.
    for person in (amy, bob):
        person.nbgrader("fetch_assignment", "ps1")
    for correct in (False, True):
        for person in (amy, bob):
            answer(person.work / "ps1" / "ps1.ipynb", correct=correct)
            person.nbgrader("submit", "ps1")
    subs = service.api("GET", f"{a}/submissions", tokens[IVY]).json()
    stamps = {
        name: sorted(parse_utc(s["timestamp"]) for s in subs if s["student"] == name)
        for name in (AMY, BOB)
    }
    # The gradebook's due date falls between the first and the second submissions; Amy's
    # own due date on the exchange is a week away.
    due = (
        max(stamps[AMY][0], stamps[BOB][0])
        + (min(stamps[AMY][1], stamps[BOB][1]) - max(stamps[AMY][0], stamps[BOB][0])) / 2
    )
    ivy.nbgrader("db", "assignment", "add", "ps1", f"--duedate={due.isoformat()} UTC")
    extended = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7))
    r["extend"] = service.api(
        "PUT", f"{a}/extensions/{AMY}", tokens[IVY], json={"due_date": extended}
    )
    r["stamps"] = stamps

    r["collect"] = ivy.nbgrader("collect", "ps1", "--before-duedate")
    r["collected"] = {
        name: parse_utc((ivy.work / "submitted" / name / "ps1" / "timestamp.txt").read_text())
        for name in (AMY, BOB)
    }
    r["students after collect"] = ivy.nbgrader("db", "student", "list").output
    r["sync"] = sync_roster(ivy).stdout
    r["sync elsewhere"] = sync_roster(ivy, "--course=nope", check=False)
    r["students after sync"] = ivy.nbgrader("db", "student", "list").output

    # Grade, return feedback with the scores, and export them.
    ivy.nbgrader("autograde", "ps1")
    ivy.nbgrader("generate_feedback", "ps1")
    r["release feedback"] = ivy.nbgrader("release_feedback", "ps1")
    r["amy fetch"] = amy.nbgrader("fetch_feedback", "ps1")
    r["amy feedback"] = service.api("GET", f"{a}/feedback", tokens[AMY]).json()
    r["scores"] = service.api("GET", f"{a}/scores", tokens[IVY]).json()
    r["canvas"] = service.server.manage("export_grades", COURSE, "--format", "canvas").stdout
    r["api export"] = service.api("GET", f"courses/{COURSE}/grades?format=canvas", tokens[IVY])
    return r


def test_release_sends_the_gradebooks_due_date(run):
    assert run["released"]["due_date"] == RELEASE_DUE


def test_collect_before_duedate_uses_each_students_own_due_date(run):
    assert run["extend"].status_code == 201, run["extend"].text
    # Amy has an extension: her second submission, before her own due date.
    assert run["collected"][AMY] == run["stamps"][AMY][1]
    # Bob has none: his first, before the gradebook's due date.
    assert run["collected"][BOB] == run["stamps"][BOB][0]


def test_collect_writes_the_roster_names_into_the_gradebook(run):
    listed = run["students after collect"]
    assert f"{AMY} (Lovelace, Ada) -- ada@example.org" in listed
    assert f"{BOB} (=Tables, Bob) -- bob@example.org" in listed
    # Cal submitted nothing: collect leaves him out, the sync helper writes him.
    assert CAL not in listed
    assert f"{CAL} (Culus, Cal) -- cal@example.org" in run["students after sync"]
    assert "Wrote 3 student(s) of gr101 into the gradebook" in run["sync"]
    refused = run["sync elsewhere"]
    assert refused.returncode == 1
    assert "answered 404" in refused.stdout and "Traceback" not in refused.stdout


def test_release_feedback_carries_the_scores(run):
    by_student = {row["student"]: row for row in run["scores"]}
    assert (by_student[AMY]["score"], by_student[AMY]["max_score"]) == (1.0, 1.0)
    assert (by_student[BOB]["score"], by_student[BOB]["max_score"]) == (0.0, 1.0)
    assert by_student[AMY]["scores"] == [{"notebook": "ps1", "score": 1.0, "max_score": 1.0}]
    [mine] = run["amy feedback"]
    assert (mine["score"], mine["max_score"]) == (1.0, 1.0)
    assert "Score for the submission at" in run["amy fetch"].output
    assert "1 / 1" in run["amy fetch"].output


def test_export_grades_canvas_lists_the_scores(run):
    rows = list(csv.reader(io.StringIO(run["canvas"])))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ps1"]
    assert rows[1] == ["Points Possible", "", "", "", "", "1"]
    by_login = {row[3]: (row[0], row[5]) for row in rows[2:]}
    assert by_login == {
        AMY: ("Lovelace, Ada", "1"),
        BOB: ("'=Tables, Bob", "0"),
        CAL: ("Culus, Cal", ""),
    }
    assert run["api export"].status_code == 200
    assert run["api export"].text == run["canvas"]
