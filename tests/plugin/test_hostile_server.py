"""Names a server sends become folders on the grader's and the student's machines: a name
that is not one folder (``..``, a slash) is refused and the rest is still done, and nothing
is written outside the folders nbgrader keeps them in. The server is a stand-in answering
what a compromised or buggy exchange could."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.harness.jsonserver import JsonServer, Request

from .support import Actor, plugin_config

COURSE = "hostile101"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
STAMP = "2026-12-01 10:00:00.000000 UTC"


def _entry(path: str, data: bytes, **more: Any) -> dict[str, Any]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **more}


def _submission(number: int, student: str) -> dict[str, Any]:
    return {
        "id": number,
        "student": student,
        "timestamp": STAMP,
        "files": [_entry("ps1.ipynb", NOTEBOOK, url=f"/api/v1/files/{number}")],
    }


# A timestamp that climbs out of nbgrader's cache through the record of a real submission.
CLIMBING = f"{STAMP}/../../../victim"


def _answer(request: Request) -> tuple[int, Any]:
    route = request.route
    if route == "/api/v1/me":
        return 200, {"username": "sam"}
    if route.endswith("/ps1/submissions") and request.method == "POST":
        return 201, {"id": 9, "student": "sam", "timestamp": CLIMBING}
    if route.endswith("/ps1/submissions"):
        record = {"id": 9, "student": "sam", "assignment_id": "ps1", "course_id": COURSE}
        return 200, [{**record, "timestamp": CLIMBING}, {**record, "id": 8, "timestamp": STAMP}]
    if route.endswith(f"/courses/{COURSE}/assignments"):
        return 200, [{"assignment_id": "ps1", "course_id": COURSE}]
    if route.startswith("/api/v1/submissions/"):
        return 200, {"files": [], "feedback_files": []}
    if route.endswith("/assignments/ps1"):
        return 200, {"assignment_id": "ps1", "files": [_entry("ps1.ipynb", NOTEBOOK)]}
    if route.endswith("/collect"):
        return 200, [_submission(1, "../../escaped"), _submission(2, ".."), _submission(3, "sam")]
    if route.startswith("/api/v1/files/"):
        return 200, NOTEBOOK
    if route.endswith("/feedback"):
        html = b"<p>well done</p>"
        files = [_entry("ps1.html", html, content=base64.b64encode(html).decode())]
        return 200, [
            {"id": 1, "timestamp": "../../../escaped", "files": files},
            {"id": 2, "timestamp": STAMP, "files": files},
        ]
    return 200, []


@pytest.fixture
def hostile():
    server = JsonServer(_answer)
    yield server
    server.stop()


def _actor(server: JsonServer, tmp_path: Path, name: str) -> Actor:
    work = tmp_path / "home" / name / "course"
    work.mkdir(parents=True)
    return Actor(name, work, plugin_config(server.url, "nbx_unused", tmp_path / "cache"))


def _everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_collect_refuses_a_student_name_that_is_not_one_folder(hostile, tmp_path, caplog):
    ines = _actor(hostile, tmp_path, "ines")
    caplog.set_level(logging.INFO)
    ines.run("Collect", COURSE, "ps1")
    written = _everything_under(tmp_path / "home")
    assert {p for p in written if "/submitted/" not in p and not p.endswith(".db")} == set()
    assert "ines/course/submitted/sam/ps1/ps1.ipynb" in written
    assert "the student name '../../escaped', which is not a folder name" in caplog.text
    assert "the student name '..', which is not a folder name" in caplog.text


def test_fetch_feedback_refuses_a_timestamp_that_is_not_one_folder(hostile, tmp_path, caplog):
    sam = _actor(hostile, tmp_path, "sam")
    caplog.set_level(logging.INFO)
    sam.run("FetchFeedback", COURSE, "ps1")
    assert _everything_under(tmp_path / "home") == {f"sam/course/ps1/feedback/{STAMP}/ps1.html"}
    assert "'../../../escaped', which is not a folder name" in caplog.text


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    return victim


def test_list_cached_remove_never_empties_a_folder_outside_the_cache(hostile, tmp_path, caplog):
    # The student's real record of the submission at STAMP, as submit writes it.
    (tmp_path / "cache" / COURSE / f"sam+ps1+{STAMP}").mkdir(parents=True)
    victim = _victim(tmp_path)
    sam = _actor(hostile, tmp_path, "sam")
    caplog.set_level(logging.INFO)
    for _ in range(2):
        sam.run("List", COURSE, "ps1", cached=True, remove=True)
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.tex"]
    assert (tmp_path / "cache" / COURSE / f"sam+ps1+{STAMP}" / "removed.txt").is_file()
    assert f"'sam+ps1+{CLIMBING}', which is not a folder name" in caplog.text


def test_submit_keeps_no_record_where_the_servers_timestamp_points(hostile, tmp_path, caplog):
    victim = _victim(tmp_path)
    sam = _actor(hostile, tmp_path, "sam")
    (sam.work / "ps1").mkdir()
    (sam.work / "ps1" / "ps1.ipynb").write_bytes(NOTEBOOK)
    caplog.set_level(logging.INFO)
    sam.run("Submit", COURSE, "ps1")
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.tex"]
    assert "Submitted, but no local record of it is kept" in caplog.text
