"""End to end: the real ``nbgrader`` CLI, one instructor and two students, each in their own
directory and HOME, against a live exchange server.

One module-scoped scenario runs the whole course (nbgrader's CLI starts slowly, so the steps
run once and the tests read what happened): release (and --force), fetch (and --replace),
submit (and --strict, and resubmissions), list in every mode, collect (again, --update,
--before-duedate), autograde, generate_feedback, release_feedback, fetch_feedback (also after
the student's local cache is gone), and removal (cached records, submissions on the server,
a release).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from nbgrader.utils import parse_utc

from .support import Person, Result, answer, write_source

COURSE, OTHER = "cli101", "cli202"
INES, SAM, TIA = "cli-ines", "cli-sam", "cli-tia"


def submissions_of(url: str, token: str, **params: str) -> list[dict[str, Any]]:
    """The ps1 submissions the token's owner sees, from the API."""
    response = requests.get(
        f"{url}/api/v1/courses/{COURSE}/assignments/ps1/submissions",
        params=params,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def stamp_of(path: Path) -> str:
    return (path / "timestamp.txt").read_text()


@pytest.fixture(scope="module")
def run(service, tmp_path_factory) -> dict[str, Any]:
    """The whole course, once; returns what each step showed."""
    tokens = service.tokens(INES, SAM, TIA)
    service.create_course(COURSE, INES, [SAM, TIA])
    service.create_course(OTHER, INES, [SAM])
    root = tmp_path_factory.mktemp("cli")
    ines = Person(INES, root, service.url, tokens[INES], course_id=COURSE)
    sam = Person(SAM, root, service.url, tokens[SAM])
    tia = Person(TIA, root, service.url, tokens[TIA])
    r: dict[str, Any] = {"ines": ines, "sam": sam, "tia": tia, "tokens": tokens, "url": service.url}

    # The instructor releases ps1 (and again, with and without --force), and hw2 elsewhere.
    write_source(ines.work)
    ines.nbgrader("generate_assignment", "ps1")
    r["release"] = ines.nbgrader("release_assignment", "ps1")
    r["release again"] = ines.nbgrader("release_assignment", "ps1", check=False)
    r["release forced"] = ines.nbgrader("release_assignment", "ps1", "--force")
    shutil.copytree(ines.work / "release" / "ps1", ines.work / "release" / "hw2")
    ines.nbgrader("release_assignment", "hw2", "--course", OTHER)

    # Sam: both courses listed, fetch, fetch again, --replace a missing file.
    r["sam released"] = sam.list_json()
    sam.nbgrader("fetch_assignment", "ps1", "--course", COURSE)
    r["fetch again"] = sam.nbgrader("fetch_assignment", "ps1", "--course", COURSE, check=False)
    (sam.work / "ps1" / "data.csv").unlink()
    r["fetch replace"] = sam.nbgrader("fetch_assignment", "ps1", "--course", COURSE, "--replace")
    r["data restored"] = (sam.work / "ps1" / "data.csv").read_bytes() == (
        ines.work / "release" / "ps1" / "data.csv"
    ).read_bytes()
    r["sam fetched"] = sam.list_json("--course", COURSE)

    # Sam submits three times (wrong, right, right); Tia tries --strict without the notebook.
    answer(sam.work / "ps1" / "ps1.ipynb", correct=False)
    sam.nbgrader("submit", "ps1", "--course", COURSE)
    answer(sam.work / "ps1" / "ps1.ipynb", correct=True)
    sam.nbgrader("submit", "ps1", "--course", COURSE)
    tia.nbgrader("fetch_assignment", "ps1", "--course", COURSE)
    (tia.work / "ps1" / "ps1.ipynb").rename(tia.work / "ps1" / "draft.ipynb")
    r["strict"] = tia.nbgrader("submit", "ps1", "--course", COURSE, "--strict", check=False)
    (tia.work / "ps1" / "draft.ipynb").rename(tia.work / "ps1" / "ps1.ipynb")
    answer(tia.work / "ps1" / "ps1.ipynb", correct=False)
    tia.nbgrader("submit", "ps1", "--course", COURSE)
    r["sam submissions"] = submissions_of(service.url, tokens[SAM])
    r["sam records"] = sorted(
        (p.name, (p / "timestamp.txt").read_text()) for p in (sam.cache / COURSE).iterdir()
    )
    r["inbound"] = ines.nbgrader("list", "--inbound")
    r["inbound json"] = ines.list_json("--inbound")

    # Collect, again without and with --update, then --before-duedate.
    submitted = ines.work / "submitted"
    r["collect"] = ines.nbgrader("collect", "ps1")
    r["collected first"] = stamp_of(submitted / SAM / "ps1")
    answer(sam.work / "ps1" / "ps1.ipynb", correct=True)
    (sam.work / "ps1" / "notes.txt").write_text("third time lucky\n")
    sam.nbgrader("submit", "ps1", "--course", COURSE)
    r["collect again"] = ines.nbgrader("collect", "ps1")
    r["collected again"] = stamp_of(submitted / SAM / "ps1")
    r["collect update"] = ines.nbgrader("collect", "ps1", "--update")
    r["collected update"] = stamp_of(submitted / SAM / "ps1")
    r["collect update again"] = ines.nbgrader("collect", "ps1", "--update")
    stamps = [parse_utc(s["timestamp"]) for s in submissions_of(service.url, tokens[SAM])]
    due = stamps[0] + (stamps[1] - stamps[0]) / 2
    r["due"] = due
    ines.nbgrader("db", "assignment", "add", "ps1", f"--duedate={due.isoformat()} UTC")
    r["collect before"] = ines.nbgrader("collect", "ps1", "--before-duedate")
    r["collected before"] = stamp_of(submitted / SAM / "ps1")
    r["collected before tia"] = stamp_of(submitted / TIA / "ps1")
    ines.nbgrader("collect", "ps1", "--update")
    r["collected final"] = stamp_of(submitted / SAM / "ps1")
    r["collected files"] = sorted(p.name for p in (submitted / SAM / "ps1").iterdir())

    # Grade and return feedback.
    ines.nbgrader("autograde", "ps1")
    ines.nbgrader("generate_feedback", "ps1")
    r["release feedback"] = ines.nbgrader("release_feedback", "ps1")
    r["sam cached before fetch"] = sam.nbgrader("list", "--cached")
    r["sam fetch feedback"] = sam.nbgrader("fetch_feedback", "ps1", "--course", COURSE)
    r["tia fetch feedback"] = tia.nbgrader("fetch_feedback", "ps1", "--course", COURSE)
    r["sam feedback"] = sorted((sam.work / "ps1" / "feedback").glob("*/*.html"))
    r["tia feedback"] = sorted((tia.work / "ps1" / "feedback").glob("*/*.html"))
    r["sam cached"] = sam.nbgrader("list", "--cached")
    r["sam cached json"] = sam.list_json("--cached")

    # The local cache and the fetched feedback are gone: feedback is still found.
    shutil.rmtree(sam.cache)
    shutil.rmtree(sam.work / "ps1" / "feedback")
    r["fetch without cache"] = sam.nbgrader("fetch_feedback", "ps1", "--course", COURSE)
    r["sam feedback again"] = sorted((sam.work / "ps1" / "feedback").glob("*/*.html"))

    # Removal: the student's records; a student cannot remove on the server, the instructor
    # removes Tia's submissions; then a release.
    r["remove cached"] = sam.nbgrader("list", "--cached", "--remove")
    r["cached after removal"] = sam.list_json("--cached")
    r["sam remove inbound"] = sam.nbgrader(
        "list", "--inbound", "--remove", "--course", COURSE, check=False
    )
    r["sam count before"] = len(submissions_of(service.url, tokens[SAM]))
    r["tia stamps"] = {s["timestamp"] for s in submissions_of(service.url, tokens[TIA])}
    r["remove inbound"] = ines.nbgrader("list", "--inbound", "--remove", "ps1", "--student", TIA)
    r["after inbound removal"] = submissions_of(service.url, tokens[INES])
    r["audit"] = service.server.manage(
        "shell",
        "-c",
        "from courses.models import AuditEvent; print(sorted(set(AuditEvent.objects.filter("
        "action='submission_deleted').values_list('actor_name', 'student_name'))))",
    ).stdout
    r["remove release"] = ines.nbgrader("list", "--remove", "--course", OTHER)
    r["sam after removal"] = sam.list_json()
    return r


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output, result.output


def test_release_refuses_to_overwrite_without_force(run):
    assert run["release"].ok
    assert not run["release again"].ok
    no_traceback(run["release again"])
    assert "Destination already exists, add --force to overwrite: cli101 ps1" in (
        run["release again"].output
    )
    assert run["release forced"].ok
    assert "Overwriting files: cli101 ps1" in run["release forced"].output


def test_a_student_in_two_courses_sees_both_without_a_configured_course(run):
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in run["sam released"]] == [
        (COURSE, "ps1", "released"),
        (OTHER, "hw2", "released"),
    ]
    assert [nb["notebook_id"] for nb in run["sam released"][0]["notebooks"]] == ["ps1"]


def test_fetch_refuses_a_second_copy_and_replaces_missing_files(run):
    assert not run["fetch again"].ok
    no_traceback(run["fetch again"])
    assert "You already have a copy of the assignment in this directory: ps1" in (
        run["fetch again"].output
    )
    assert "Replacing missing file 'data.csv'" in run["fetch replace"].output
    assert run["data restored"]
    [fetched] = run["sam fetched"]
    assert fetched["status"] == "fetched"
    assert fetched["path"] == str(run["sam"].work / "ps1")


def test_strict_submit_refuses_a_submission_missing_a_notebook(run):
    assert not run["strict"].ok
    no_traceback(run["strict"])
    assert "There are missing notebooks for the submission" in run["strict"].output
    assert "ps1.ipynb: MISSING" in run["strict"].output


def test_submit_writes_the_servers_timestamp_exactly(run):
    server = [s["timestamp"] for s in run["sam submissions"][:2]]
    assert [stamp for _, stamp in run["sam records"]] == server
    assert [name for name, _ in run["sam records"]] == [f"{SAM}+ps1+{stamp}" for stamp in server]
    assert all(stamp.endswith(" UTC") for stamp in server)


def test_list_inbound_shows_every_submission(run):
    lines = [line for line in run["inbound"].output.splitlines() if " ps1 " in line]
    assert len(lines) == 3
    assert sum(f"{COURSE} {SAM} ps1" in line for line in lines) == 2
    assert all(line.endswith("(no feedback available)") for line in lines)
    assert [(g["student_id"], len(g["submissions"])) for g in run["inbound json"]] == [
        (SAM, 2),
        (TIA, 1),
    ]


def test_collect_takes_the_latest_and_updates_only_with_update(run):
    stamps = [s["timestamp"] for s in submissions_of(run["url"], run["tokens"][SAM])]
    assert "Collecting submission: cli-sam ps1" in run["collect"].output
    assert run["collected first"] == stamps[1]
    assert "Submission already exists, use --update to update: cli-sam ps1" in (
        run["collect again"].output
    )
    assert run["collected again"] == stamps[1]
    assert "Updating submission: cli-sam ps1" in run["collect update"].output
    assert run["collected update"] == stamps[2]
    assert "No newer submission to collect: cli-sam ps1" in run["collect update again"].output
    assert run["collected files"] == [
        "data.csv",
        "notes.txt",
        "ps1.ipynb",
        "submission_secret.txt",
        "timestamp.txt",
    ]


def test_collect_before_duedate_takes_the_last_submission_before_it(run):
    stamps = [s["timestamp"] for s in submissions_of(run["url"], run["tokens"][SAM])]
    assert run["collected before"] == stamps[0]
    assert parse_utc(run["collected before"]) <= run["due"]
    # Tia only submitted after the due date: her last submission is taken.
    assert parse_utc(run["collected before tia"]) > run["due"]
    assert run["collected final"] == stamps[2]


def test_feedback_reaches_each_student_for_the_right_submission(run):
    assert "Feedback released to: cli-sam" in run["release feedback"].output
    assert "(feedback ready to be fetched)" in run["sam cached before fetch"].output
    [sam_html] = run["sam feedback"]
    [tia_html] = run["tia feedback"]
    assert sam_html.parent.name == run["collected final"]
    assert "Score: 1.0 / 1.0" in sam_html.read_text()
    assert "Score: 0.0 / 1.0" in tia_html.read_text()
    assert tia_html.parent.name == run["collected before tia"]
    # Read before the removal at the end of the scenario takes Tia's submissions away.
    assert {p.parent.name for p in run["tia feedback"]} <= run["tia stamps"]
    lines = run["sam cached"].output.splitlines()
    assert sum(line.endswith("(feedback already fetched)") for line in lines) == 1
    assert sum(line.endswith("(no feedback available)") for line in lines) == 2


def test_list_cached_json_has_the_jupyterlab_keys(run):
    [group] = run["sam cached json"]
    assert set(group) == {"course_id", "student_id", "assignment_id", "status", "submissions"}
    for submission in group["submissions"]:
        assert {
            "course_id",
            "student_id",
            "assignment_id",
            "timestamp",
            "status",
            "path",
            "notebooks",
            "has_local_feedback",
            "has_exchange_feedback",
            "feedback_updated",
            "local_feedback_path",
        } == set(submission)
        for notebook in submission["notebooks"]:
            assert set(notebook) == {
                "notebook_id",
                "path",
                "has_local_feedback",
                "has_exchange_feedback",
                "local_feedback_path",
                "feedback_updated",
            }


def test_fetch_feedback_works_when_the_local_cache_is_gone(run):
    assert run["fetch without cache"].ok
    [html] = run["sam feedback again"]
    assert html.parent.name == run["collected final"]
    assert "Score: 1.0 / 1.0" in html.read_text()


def test_removal_of_cached_records_and_of_a_release(run):
    assert "Removing submitted assignments:" in run["remove cached"].output
    assert run["cached after removal"] == []
    assert not run["sam remove inbound"].ok
    no_traceback(run["sam remove inbound"])
    assert (
        "As student you may not remove submissions from cli101" in run["sam remove inbound"].output
    )
    assert run["remove inbound"].ok
    assert "Removing submitted assignments:" in run["remove inbound"].output
    assert f"{COURSE} {TIA} ps1" in run["remove inbound"].output
    left = run["after inbound removal"]
    assert {s["student"] for s in left} == {SAM}
    assert len(left) == run["sam count before"]
    assert f"[('{INES}', '{TIA}')]" in run["audit"]
    assert "Removing released assignments:" in run["remove release"].output
    assert [(a["course_id"], a["assignment_id"]) for a in run["sam after removal"]] == [
        (COURSE, "ps1")
    ]
