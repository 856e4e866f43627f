"""Each role's refusals and corner cases, in this process against the live server: what
nbgrader's own exchange refuses is refused with the same words, and nothing half-done."""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from nbgrader.exchange import ExchangeError

from tests.harness import BIN

from .support import Actor, answer, plugin_config, write_source

COURSE = "roles101"
INES, SAM = "roles-ines", "roles-sam"


@pytest.fixture(scope="module")
def people(service, tmp_path_factory) -> dict[str, Any]:
    tokens = service.tokens(INES, SAM)
    service.create_course(COURSE, INES, [SAM])
    root = tmp_path_factory.mktemp("roles")

    def actor(name: str, **config: Any) -> Actor:
        work = root / name
        work.mkdir(exist_ok=True)
        cfg = plugin_config(service.url, tokens[name], root / f"{name}-cache")
        for key, value in config.items():
            section, trait = key.split("__")
            setattr(getattr(cfg, section), trait, value)
        return Actor(name, work, cfg, student_id="*")

    ines = actor(INES)
    write_source(ines.work)
    shutil.copytree(ines.work / "source" / "ps1", ines.work / "release" / "ps1")
    ines.run("ReleaseAssignment", COURSE, "ps1")
    return {"actor": actor, "ines": ines, "sam": actor(SAM), "root": root}


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}:/usr/bin:/bin")


def test_release_without_generate_says_so(people):
    ines = people["ines"]
    write_source(ines.work, "ps2")
    with pytest.raises(ExchangeError, match="run `nbgrader generate_assignment` first"):
        ines.run("ReleaseAssignment", COURSE, "ps2")
    with pytest.raises(ExchangeError, match=r"Assignment not found at: .*ps9"):
        ines.run("ReleaseAssignment", COURSE, "ps9")


def test_release_needs_a_course(people):
    with pytest.raises(
        ExchangeError, match=r"No course id specified\. Re-run with --course flag\."
    ):
        people["ines"].run("ReleaseAssignment", "", "ps1")


def test_release_respects_max_dir_size_and_max_file_size(people, caplog):
    strict = people["actor"](INES, CourseDirectory__max_dir_size=1)
    with pytest.raises(ExchangeError, match="more than the limit of 1000 bytes"):
        strict.run("ReleaseAssignment", COURSE, "ps1", force=True)
    small = people["actor"](INES, CourseDirectory__max_file_size=1)
    caplog.set_level(logging.DEBUG)
    small.run("ReleaseAssignment", COURSE, "ps1", force=True)
    assert "Ignoring file too large 'data.csv'" in caplog.text
    # Put the whole release back for the other tests.
    people["ines"].run("ReleaseAssignment", COURSE, "ps1", force=True)


def test_collect_with_nothing_submitted_warns(people, caplog):
    people["ines"].run("Collect", COURSE, "ps1", student_id=SAM)
    assert "No submissions of 'ps1' for course 'roles101' to collect" in caplog.text


def test_fetch_feedback_before_any_is_released_warns(people, caplog):
    sam = people["sam"]
    sam.run("FetchFeedback", COURSE, "ps1")
    assert "No feedback available yet for 'roles101/ps1'" in caplog.text


def test_submit_refuses_too_big_a_folder_and_bad_student_ids(people):
    sam = people["sam"]
    sam.run("FetchAssignment", COURSE, "ps1", replace_missing_files=True)
    big = people["actor"](SAM, CourseDirectory__max_dir_size=1)
    with pytest.raises(
        ExchangeError, match=r"Assignment ps1 not submitted: .* more than the limit"
    ):
        big.run("Submit", COURSE, "ps1")
    with pytest.raises(ExchangeError, match="should contain no"):
        sam.run("Submit", COURSE, "ps1", student_id="a+b")
    with pytest.raises(ExchangeError, match="should contain no"):
        sam.run("FetchFeedback", COURSE, "ps1", student_id="a+b")


def test_a_local_disk_problem_is_one_sentence(people):
    blocker = people["root"] / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    sam = people["actor"](SAM, Exchange__assignment_dir=str(blocker))
    with pytest.raises(ExchangeError, match="A local file operation failed"):
        sam.run("FetchAssignment", COURSE, "ps1")


def test_feedback_that_matches_no_submission_is_not_released(people, caplog):
    ines, sam = people["ines"], people["sam"]
    answer(sam.work / "ps1" / "ps1.ipynb")
    sam.run("Submit", COURSE, "ps1")
    ines.run("Collect", COURSE, "ps1", update=True)
    submitted = ines.work / "submitted" / SAM / "ps1"
    feedback = ines.work / "feedback" / SAM / "ps1"
    feedback.mkdir(parents=True, exist_ok=True)
    (feedback / "ps1.html").write_text("<p>feedback</p>")

    with pytest.raises(ExchangeError, match="Feedback for roles-sam was not released"):
        ines.run("ReleaseFeedback", COURSE, "ps1")
    assert "Neither timestamp.txt nor submission_secret.txt" in caplog.text

    (feedback / "timestamp.txt").write_text("2001-01-01 00:00:00.000000 UTC")
    with pytest.raises(ExchangeError, match="was not released"):
        ines.run("ReleaseFeedback", COURSE, "ps1")
    assert "has the timestamp 2001-01-01" in caplog.text

    shutil.copy(submitted / "timestamp.txt", feedback / "timestamp.txt")
    (feedback / "submission_secret.txt").write_text("not the secret")
    with pytest.raises(ExchangeError, match="was not released"):
        ines.run("ReleaseFeedback", COURSE, "ps1")
    assert "does not match the submission of roles-sam" in caplog.text

    shutil.copy(submitted / "submission_secret.txt", feedback / "submission_secret.txt")
    ines.run("ReleaseFeedback", COURSE, "ps1")
    sam.run("FetchFeedback", COURSE, "ps1")
    stamp = (submitted / "timestamp.txt").read_text()
    assert (sam.work / "ps1" / "feedback" / stamp / "ps1.html").read_text() == "<p>feedback</p>"

    # Edited feedback released again shows as updated in the student's list.
    (feedback / "ps1.html").write_text("<p>better feedback</p>")
    ines.run("ReleaseFeedback", COURSE, "ps1")
    [group] = sam.run("List", COURSE, cached=True)
    assert [s["feedback_updated"] for s in group["submissions"]] == [True]


def test_release_feedback_with_no_feedback_generated_warns(people, caplog):
    people["ines"].run("ReleaseFeedback", COURSE, "ps7")
    assert "No feedback found in" in caplog.text


def test_list_with_a_course_filter_and_an_assignment_filter(people):
    ines = people["ines"]
    listed = ines.run("List", COURSE, "ps1")
    assert [(a["assignment_id"], a["status"]) for a in listed] == [("ps1", "released")]
    assert ines.run("List", COURSE, "nope") == []
    inbound = ines.run("List", COURSE, "ps1", inbound=True, student_id=SAM)
    assert [g["student_id"] for g in inbound] == [SAM]


def test_an_unreachable_server_fails_the_role_cleanly(people, tmp_path):
    from tests.harness.ports import free_port

    cfg = copy.deepcopy(people["sam"].config)
    cfg.Exchange.url = f"http://127.0.0.1:{free_port()}"
    cfg.Exchange.retries = 0
    with pytest.raises(ExchangeError, match="is not reachable") as caught:
        Actor(SAM, Path(tmp_path), cfg).run("List")
    # The sentence stands alone: no chained exception behind it in logs and dialogs.
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_collect_before_duedate_falls_back_to_the_servers_due_date(people, service):
    from nbgrader.utils import parse_utc

    from nbgrader_exchange.client import ExchangeClient
    from nbgrader_exchange.files import entry_from_bytes

    ines, sam = people["ines"], people["sam"]
    client = ExchangeClient(service.url, ines.config.Exchange.token)
    release = f"courses/{COURSE}/assignments/ps3/release"
    files = [entry_from_bytes("ps3.ipynb", b"{}")]
    client.upload_bundle(release, files)
    sam.run("FetchAssignment", COURSE, "ps3")
    sam.run("Submit", COURSE, "ps3")
    sam.run("Submit", COURSE, "ps3")
    stamps = [s["timestamp"] for s in client.get(f"courses/{COURSE}/assignments/ps3/submissions")]
    first, second = (parse_utc(s) for s in stamps)
    due = first + (second - first) / 2
    client.upload_bundle(
        release, files, fields={"force": "true", "due_date": due.isoformat() + "+00:00"}
    )
    # The instructor's directory has no gradebook: the server's due date decides.
    ines.run("Collect", COURSE, "ps3", before_duedate=True)
    collected = ines.work / "submitted" / SAM / "ps3" / "timestamp.txt"
    assert collected.read_text() == stamps[0]


def test_path_includes_course(people):
    sam = people["actor"](SAM, Exchange__path_includes_course=True)
    sam.run("FetchAssignment", COURSE, "ps1")
    assert (sam.work / COURSE / "ps1" / "ps1.ipynb").is_file()
    [listed] = sam.run("List", COURSE, "ps1")
    assert listed["status"] == "fetched"


def test_release_sends_the_gradebooks_due_date(people, service, tmp_path):
    """A due date set in the gradebook (``nbgrader db assignment add --duedate``) is the one
    the exchange holds after the release, to the microsecond."""
    import datetime as dt

    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    from nbgrader_exchange.client import ExchangeClient

    ines = Actor(INES, tmp_path, people["ines"].config)
    write_source(tmp_path, "ps4")
    shutil.copytree(tmp_path / "source" / "ps4", tmp_path / "release" / "ps4")
    due = dt.datetime(2031, 5, 6, 7, 8, 9, 123456)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", COURSE) as gb:
        gb.update_or_create_assignment("ps4", duedate=due)
    ines.run("ReleaseAssignment", COURSE, "ps4")
    with ExchangeClient(service.url, ines.config.Exchange.token) as client:
        detail = client.get(f"courses/{COURSE}/assignments/ps4")
    assert parse_utc(detail["due_date"]) == due
