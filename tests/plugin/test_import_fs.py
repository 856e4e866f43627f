"""Moving in from nbgrader's filesystem exchange: the real nbgrader CLI fills one (release,
fetch, submit twice, collect, release feedback), ``manage.py import_exchange fs`` imports it,
and the same CLI through this project's plugin then lists, collects and fetches feedback with
the same timestamps and bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from .support import Person, answer, write_source

COURSE = "move101"
INSTRUCTOR = "move-ines"
STUDENTS = ["move-sam", "move-tia"]


def fs_config(root: Path, cache: Path, *, groupshared: bool = False) -> str:
    return (
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {COURSE!r}\n"
        f"c.Exchange.root = {str(root)!r}\n"
        f"c.Exchange.cache = {str(cache)!r}\n"
        "c.Exchange.path_includes_course = False\n"
        f"c.CourseDirectory.groupshared = {groupshared!r}\n"
    )


def person(base: Path, name: str, *, url: str = "", token: str = "") -> Person:
    return Person(
        name=name,
        root=base,
        url=url,
        token=token,
        course_id=COURSE,
    )


def use_filesystem(p: Person, root: Path, **kw: bool) -> None:
    (p.work / "nbgrader_config.py").write_text(fs_config(root, p.root / p.name / "fscache", **kw))


@pytest.fixture(scope="module")
def moved(service, tmp_path_factory):
    """The filesystem exchange filled by nbgrader, what it showed, and the import's output."""
    base = tmp_path_factory.mktemp("fsmove")
    root = base / "exchange"
    root.mkdir()
    os.chmod(root, 0o777)
    ines = person(base / "old", INSTRUCTOR)
    use_filesystem(ines, root, groupshared=True)
    write_source(ines.work)
    ines.nbgrader("generate_assignment", "ps1", "--force")
    ines.nbgrader("release_assignment", "ps1", "--force")
    students = {}
    for name in STUDENTS:
        st = person(base / "old", name)
        use_filesystem(st, root)
        st.nbgrader("fetch_assignment", "ps1")
        answer(st.work / "ps1" / "ps1.ipynb", correct=False)
        # The filesystem exchange names submissions by the OS user unless told.
        st.nbgrader("submit", "ps1", f"--student={name}")
        answer(st.work / "ps1" / "ps1.ipynb", correct=True)
        st.nbgrader("submit", "ps1", f"--student={name}")
        students[name] = st
    ines.nbgrader("collect", "ps1")
    for name in STUDENTS:
        submitted = ines.work / "submitted" / name / "ps1"
        feedback = ines.work / "feedback" / name / "ps1"
        feedback.mkdir(parents=True)
        for extra in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy(submitted / extra, feedback / extra)
        (feedback / "ps1.html").write_text(f"<html>feedback for {name}</html>")
    ines.nbgrader("release_feedback", "ps1")
    for name, st in students.items():
        st.nbgrader("fetch_feedback", "ps1", f"--student={name}")
    old = {
        "inbound": inbound_rows(ines.nbgrader("list", "--inbound").output),
        "submitted": {
            name: (ines.work / "submitted" / name / "ps1").resolve() for name in STUDENTS
        },
        "feedback": {
            name: sorted(
                (p.parent.name, p.read_bytes())
                for p in (students[name].work / "ps1" / "feedback").glob("*/ps1.html")
            )
            for name in STUDENTS
        },
    }
    first = service.server.manage("import_exchange", "fs", str(root), "--instructor", INSTRUCTOR)
    second = service.server.manage("import_exchange", "fs", str(root), "--course", COURSE)
    return {"root": root, "old": old, "first": first.stdout, "second": second.stdout}


@pytest.fixture(scope="module")
def new_people(service, moved, tmp_path_factory):
    base = tmp_path_factory.mktemp("fsnew")
    tokens = service.tokens(INSTRUCTOR, *STUDENTS)
    return {
        name: person(base, name, url=service.url, token=tokens[name])
        for name in [INSTRUCTOR, *STUDENTS]
    }


def inbound_rows(output: str) -> list[str]:
    """The submissions ``nbgrader list --inbound`` prints: course, student, assignment, time."""
    return sorted(re.findall(rf"{COURSE} \S+ ps1 \S+ \S+ UTC", output))


def test_first_import_reports_what_it_added(moved):
    assert f"Imported {COURSE} (new course):" in moved["first"]
    assert "4 submissions added" in moved["first"]
    assert "2 feedback added" in moved["first"]
    assert "1 releases added" in moved["first"]
    assert "2 students added" in moved["first"] and "1 instructors added" in moved["first"]
    assert "skipped" not in moved["first"]


def test_second_import_adds_nothing(moved):
    assert "nothing new" in moved["second"]
    assert "4 submissions unchanged" in moved["second"]
    assert "0 bytes added" in moved["second"]


def test_plugin_lists_the_same_submissions_with_the_same_timestamps(moved, new_people):
    listed = inbound_rows(new_people[INSTRUCTOR].nbgrader("list", "--inbound").output)
    assert listed == moved["old"]["inbound"]
    assert len(listed) == 4


def test_plugin_collects_the_same_bytes(moved, new_people):
    ines = new_people[INSTRUCTOR]
    ines.nbgrader("collect", "ps1")
    for name in STUDENTS:
        old_dir = moved["old"]["submitted"][name]
        new_dir = ines.work / "submitted" / name / "ps1"
        for name_ in ("timestamp.txt", "ps1.ipynb", "data.csv", "submission_secret.txt"):
            assert (new_dir / name_).read_bytes() == (old_dir / name_).read_bytes(), name_


def test_students_fetch_the_same_feedback(moved, new_people):
    for name in STUDENTS:
        st = new_people[name]
        st.nbgrader("fetch_feedback", "ps1")
        got = sorted(
            (p.parent.name, p.read_bytes())
            for p in (st.work / "ps1" / "feedback").glob("*/ps1.html")
        )
        assert got == moved["old"]["feedback"][name]
        assert got


def test_students_see_the_release(new_people):
    listed = new_people[STUDENTS[0]].nbgrader("list").output
    assert re.search(rf"{COURSE} ps1", listed), listed


def test_corrupted_entries_are_skipped_with_their_reason(service, moved):
    inbound = moved["root"] / COURSE / "inbound"
    bad_stamp = inbound / "move-sam+ps1+2026-01-01 00:00:00.000000 UTC+zz"
    bad_stamp.mkdir()
    (bad_stamp / "timestamp.txt").write_text("yesterday")
    dangling = inbound / "move-tia+ps1+2026-01-02 00:00:00.000000 UTC+yy"
    dangling.mkdir()
    (dangling / "timestamp.txt").write_text("2026-01-02 00:00:00.000000 UTC")
    (dangling / "ps1.ipynb").symlink_to(dangling / "gone.ipynb")
    (inbound / "stray-file").write_text("x")
    try:
        out = service.server.manage("import_exchange", "fs", str(moved["root"])).stdout
    finally:
        shutil.rmtree(bad_stamp)
        shutil.rmtree(dangling)
        (inbound / "stray-file").unlink()
    assert "skipped 3:" in out
    assert f"{bad_stamp}: timestamp.txt: 'yesterday' is not a time" in out
    assert f"{dangling}: cannot read" in out
    assert "No such file or directory" in out
    assert f"{inbound / 'stray-file'}: not a submission" in out
    assert "nothing new" in out


def test_dry_run_changes_nothing(service, moved):
    out = service.server.manage("import_exchange", "fs", str(moved["root"]), "--dry-run").stdout
    assert "Would import (dry run, nothing changed)" in out
    assert json.dumps(moved["second"]) != "" and "0 bytes added" in out
