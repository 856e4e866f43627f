"""The plugin behaves as nbgrader's own filesystem exchange: the same scenario, run in this
process against both, gives the same ``list`` statuses and the same ``list`` dict shapes; and
the JupyterLab "Assignments" tab's server code lists through the plugin."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.harness import BIN

from .support import Actor, answer, filesystem_config, plugin_config, shape, solution_notebook

COURSE = "parity101"
INSTRUCTOR, SAM, TIA = "parity-ines", "parity-sam", "parity-tia"


def write_release(work: Path) -> None:
    release = work / "release" / "ps1"
    release.mkdir(parents=True)
    nb = solution_notebook()
    nb.cells[1].source = "def squares(n):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    nbformat.write(nb, release / "ps1.ipynb")
    (release / "data.csv").write_text("x,y\n1,1\n")


def statuses(listed: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a person reads in ``nbgrader list``, without timestamps and paths."""
    rows = []
    for item in listed:
        if "submissions" in item:
            for sub in item["submissions"]:
                rows.append(
                    (
                        item["course_id"],
                        item["student_id"],
                        item["assignment_id"],
                        sub["status"],
                        sub.get("has_exchange_feedback"),
                        sub.get("has_local_feedback"),
                        sub.get("feedback_updated"),
                        [nb["notebook_id"] for nb in sub["notebooks"]],
                    )
                )
        else:
            rows.append(
                (
                    item["course_id"],
                    item["assignment_id"],
                    item["status"],
                    [nb["notebook_id"] for nb in item["notebooks"]],
                )
            )
    return rows


def jupyterlab_lists(work: Path, config_text: str) -> dict[str, Any]:
    """What the JupyterLab "Assignments" tab's server code answers in a student's directory."""
    from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

    (work / "nbgrader_config.py").write_text(config_text)
    previous = os.getcwd()
    os.chdir(work)
    try:
        lister = AssignmentList()
        lister.root_dir = str(work)
        return {
            "all": lister.list_assignments(),
            "course": lister.list_assignments(course_id=COURSE),
            "courses": lister.list_courses(),
        }
    finally:
        os.chdir(previous)


def scenario(root: Path, make_config: Any, lab_config: Any = None) -> dict[str, Any]:
    """Release, fetch, submit, collect, feedback, list at each step; returns the lists."""
    people = {}
    for name in (INSTRUCTOR, SAM, TIA):
        work = root / name / "work"
        work.mkdir(parents=True)
        people[name] = Actor(
            name,
            work,
            make_config(name, root / name / "cache"),
            student_id="*" if name == INSTRUCTOR else name,
        )
    ines, sam, tia = people[INSTRUCTOR], people[SAM], people[TIA]
    seen: dict[str, Any] = {}
    write_release(ines.work)
    ines.run("ReleaseAssignment", COURSE, "ps1")
    seen["released"] = sam.run("List")
    sam.run("FetchAssignment", COURSE, "ps1")
    seen["fetched"] = sam.run("List")
    answer(sam.work / "ps1" / "ps1.ipynb")
    sam.run("Submit", COURSE, "ps1")
    tia.run("FetchAssignment", COURSE, "ps1")
    tia.run("Submit", COURSE, "ps1")
    seen["cached"] = sam.run("List", cached=True)
    seen["inbound"] = ines.run("List", COURSE, inbound=True)
    ines.run("Collect", COURSE, "ps1")
    for student in (SAM, TIA):
        submitted = ines.work / "submitted" / student / "ps1"
        feedback = ines.work / "feedback" / student / "ps1"
        feedback.mkdir(parents=True)
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy(submitted / name, feedback / name)
        (feedback / "ps1.html").write_text(f"<html>feedback for {student}</html>")
    ines.run("ReleaseFeedback", COURSE, "ps1")
    seen["feedback ready"] = sam.run("List", cached=True)
    sam.run("FetchFeedback", COURSE, "ps1")
    seen["feedback fetched"] = sam.run("List", cached=True)
    if lab_config is not None:
        seen["lab"] = jupyterlab_lists(sam.work, lab_config(SAM, root / SAM / "cache"))
    seen["inbound after feedback"] = ines.run("List", COURSE, inbound=True)
    seen["sam feedback"] = sorted(
        p.read_text() for p in (sam.work / "ps1" / "feedback").glob("*/ps1.html")
    )
    seen["removed cached"] = sam.run("List", cached=True, remove=True)
    seen["after cached removal"] = sam.run("List", cached=True)
    seen["removed release"] = ines.run("List", COURSE, remove=True)
    os.rename(sam.work / "ps1", sam.work / "ps1-done")
    seen["after release removal"] = sam.run("List")
    return seen


@pytest.fixture(scope="module")
def runs(service, tmp_path_factory) -> dict[str, dict[str, Any]]:
    tokens = service.tokens(INSTRUCTOR, SAM, TIA)
    service.create_course(COURSE, INSTRUCTOR, [SAM, TIA])

    def plugin(name: str, cache: Path) -> Any:
        return plugin_config(service.url, tokens[name], cache)

    def lab_config(name: str, cache: Path) -> str:
        return (
            "from nbgrader_exchange import configure\n"
            f"configure(c, url={service.url!r}, token={tokens[name]!r}, cache={str(cache)!r})\n"
        )

    fs_root = tmp_path_factory.mktemp("exchange")

    def filesystem(name: str, cache: Path) -> Any:
        return filesystem_config(fs_root, cache)

    with pytest.MonkeyPatch.context() as mp:
        # nbgrader's gradebook runs the alembic command it installs next to Python.
        mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        return {
            "filesystem": scenario(tmp_path_factory.mktemp("fs"), filesystem),
            "plugin": scenario(tmp_path_factory.mktemp("plugin"), plugin, lab_config),
        }


STEPS = [
    "released",
    "fetched",
    "cached",
    "inbound",
    "feedback ready",
    "feedback fetched",
    "inbound after feedback",
    "removed cached",
    "after cached removal",
    "removed release",
    "after release removal",
]


@pytest.mark.parametrize("step", STEPS)
def test_list_statuses_match_the_filesystem_exchange(runs, step):
    assert statuses(runs["plugin"][step]) == statuses(runs["filesystem"][step])


@pytest.mark.parametrize("step", STEPS)
def test_list_dicts_have_the_filesystem_exchanges_keys(runs, step):
    assert shape(runs["plugin"][step]) == shape(runs["filesystem"][step])


def test_statuses_walk_through_the_whole_cycle(runs):
    seen = runs["plugin"]
    assert [row[2] for row in statuses(seen["released"])] == ["released"]
    assert [row[2] for row in statuses(seen["fetched"])] == ["fetched"]
    assert statuses(seen["feedback ready"])[0][3:7] == ("submitted", True, False, False)
    assert statuses(seen["feedback fetched"])[0][3:7] == ("submitted", True, True, False)
    assert seen["sam feedback"] == [f"<html>feedback for {SAM}</html>"]
    assert seen["after release removal"] == []


def test_jupyterlab_assignment_list_shows_a_students_assignments_through_the_plugin(runs):
    lab = runs["plugin"]["lab"]
    assert lab["courses"] == {"success": True, "value": [COURSE]}
    for answer_ in (lab["all"], lab["course"]):
        assert answer_["success"], answer_
        released = [a for a in answer_["value"] if "submissions" not in a]
        submitted = [a for a in answer_["value"] if "submissions" in a]
        assert [(a["assignment_id"], a["status"]) for a in released] == [("ps1", "fetched")]
        # Paths of fetched assignments come back relative to the notebook server's root.
        assert released[0]["path"] == "ps1"
        assert released[0]["notebooks"] == [{"notebook_id": "ps1", "path": "ps1/ps1.ipynb"}]
        [group] = submitted
        assert (group["student_id"], group["status"]) == (SAM, "submitted")
        [submission] = group["submissions"]
        assert submission["has_local_feedback"] and submission["has_exchange_feedback"]
        assert not submission["feedback_updated"]
        assert submission["local_feedback_path"] == f"ps1/feedback/{submission['timestamp']}"
