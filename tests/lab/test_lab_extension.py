"""``nbgrader_exchange.lab``: the Assignments tab's server side, called as JupyterLab calls it.

The manager must answer exactly what nbgrader's own ``AssignmentList`` answers when all goes
well (the tab's JavaScript reads those dicts), and say what went wrong, in the plugin's words,
when it does not. The browser tests show the same in Chromium; these run in-process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from nbgrader.server_extensions.assignment_list.handlers import AssignmentList
from traitlets.config import LoggingConfigurable

from tests.harness import REPO
from tests.harness.forkserver import run_nbgrader
from tests.harness.ports import free_port

from .notebooks import write_source_assignment

lab = pytest.importorskip("nbgrader_exchange.lab", reason="the nbgrader plugin is not installed")

pytestmark = [pytest.mark.sqlite_only]

COURSE = "phys101"
CONFIG = "from nbgrader_exchange import configure\nc = get_config()  # noqa: F821\nconfigure(c)\n"


class Person:
    """A user with a working directory, a HOME and a token, running the real nbgrader CLI."""

    def __init__(self, root: Path, name: str, url: str, token: str) -> None:
        self.name = name
        self.home = root / name
        self.work = self.home / "work"
        self.work.mkdir(parents=True)
        (self.work / "nbgrader_config.py").write_text(CONFIG)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")},
            "HOME": str(self.home),
            "JUPYTER_CONFIG_DIR": str(self.home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(self.home / ".local/share/jupyter"),
            "NBGRADER_EXCHANGE_URL": url,
            "NBGRADER_EXCHANGE_TOKEN": token,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PYTHONPATH": str(REPO),
        }

    def nbgrader(self, *args: str) -> None:
        status, output = run_nbgrader(list(args), env=self.env, cwd=self.work)
        assert status == 0, f"nbgrader {args} failed:\n{output}"

    def manager(self, monkeypatch, cls=lab.ExchangeAssignmentList) -> AssignmentList:
        """The tab's manager as the student's Jupyter server holds it (cwd = its root)."""
        for key in ("HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR"):
            monkeypatch.setenv(key, self.env[key])
        for key in ("NBGRADER_EXCHANGE_URL", "NBGRADER_EXCHANGE_TOKEN"):
            monkeypatch.setenv(key, self.env[key])
        monkeypatch.chdir(self.work)
        manager = cls()
        manager.root_dir = str(self.work)
        return manager


@pytest.fixture(scope="module")
def classroom(tmp_path_factory) -> Iterator[dict[str, Person]]:
    """A live service; ines releases ps1 and ps2; sam fetches ps1 and submits it."""
    from tests.harness.live import LiveServer

    root = tmp_path_factory.mktemp("lab-extension")
    (root / "service").mkdir()
    with LiveServer(data_dir=root / "service") as server:
        tokens = server.tokens({"admin": True, "ines": False, "sam": False})
        admin = tokens.pop("admin")
        headers = {"Authorization": f"token {admin}"}
        api = server.api_url
        created = requests.post(
            f"{api}/courses", json={"course_id": COURSE, "instructors": ["ines"]}, headers=headers
        )
        assert created.status_code == 201, created.text
        added = requests.put(
            f"{api}/courses/{COURSE}/members/sam", json={"role": "student"}, headers=headers
        )
        assert added.status_code in (200, 201), added.text
        people = {name: Person(root, name, server.url, token) for name, token in tokens.items()}
        ines, sam = people["ines"], people["sam"]
        (ines.work / "nbgrader_config.py").write_text(
            CONFIG + f"c.CourseDirectory.course_id = {COURSE!r}\n"
        )
        for assignment in ("ps1", "ps2"):
            write_source_assignment(ines.work, assignment, assignment)
            ines.nbgrader("generate_assignment", assignment)
            ines.nbgrader("release_assignment", assignment)
        sam.nbgrader("fetch_assignment", "ps1", "--course", COURSE)
        sam.nbgrader("submit", "ps1", "--course", COURSE)
        yield people


def test_answers_what_nbgraders_own_manager_answers(classroom, monkeypatch) -> None:
    sam = classroom["sam"]
    ours = sam.manager(monkeypatch)
    theirs = sam.manager(monkeypatch, cls=AssignmentList)
    for course in (None, COURSE):
        answer = ours.list_assignments(course_id=course)
        assert answer["success"], answer
        assert answer == theirs.list_assignments(course_id=course)
    assert ours.list_courses() == theirs.list_courses() == {"success": True, "value": [COURSE]}
    statuses = {(a["assignment_id"], a["status"]) for a in ours.list_assignments()["value"]}
    assert statuses == {("ps1", "fetched"), ("ps2", "released"), ("ps1", "submitted")}


def test_a_failed_fetch_is_shown_once_instead_of_the_list(classroom, monkeypatch) -> None:
    manager = classroom["sam"].manager(monkeypatch)
    failed = manager.fetch_assignment(COURSE, "ps9")
    assert not failed["success"]
    shown = manager.list_assignments(course_id=COURSE)
    assert shown == {"success": False, "value": failed["value"]}
    assert "ps9" in shown["value"] and "Traceback" not in shown["value"]
    # The next refresh lists again.
    assert manager.list_assignments(course_id=COURSE)["success"]


def test_fetch_and_fetch_feedback_that_work_leave_the_list_alone(classroom, monkeypatch) -> None:
    manager = classroom["sam"].manager(monkeypatch)
    assert manager.fetch_assignment(COURSE, "ps2") == {"success": True}
    assert manager.fetch_feedback(COURSE, "ps1") == {"success": True}
    answer = manager.list_assignments(course_id=COURSE)
    assert ("ps2", "fetched") in {(a["assignment_id"], a["status"]) for a in answer["value"]}


def test_a_failed_submit_says_why_in_lines_the_dialog_can_show(classroom, monkeypatch) -> None:
    manager = classroom["sam"].manager(monkeypatch)
    answer = manager.submit_assignment(COURSE, "ps7")
    assert not answer["success"]
    assert "Traceback" not in answer["value"]
    assert "ps7" in answer["value"]
    assert max(len(line) for line in answer["value"].splitlines()) <= 76


@pytest.fixture
def down(tmp_path, monkeypatch) -> Person:
    """A student whose exchange server is not running."""
    person = Person(tmp_path, "sam", f"http://127.0.0.1:{free_port()}", "nbx_unused")
    (person.work / "nbgrader_config.py").write_text(CONFIG + "c.Exchange.retries = 0\n")
    (person.work / "ps1").mkdir()
    (person.work / "ps1" / "ps1.ipynb").write_text("{}")
    return person


def test_server_down_is_explained_not_blamed_on_a_directory(down, monkeypatch) -> None:
    ours = down.manager(monkeypatch)
    for answer in (ours.list_assignments(course_id=COURSE), ours.list_courses()):
        assert not answer["success"]
        assert "is not reachable" in answer["value"]
        assert down.env["NBGRADER_EXCHANGE_URL"] in answer["value"]
    submitted = ours.submit_assignment(COURSE, "ps1")
    assert "is not reachable" in " ".join(submitted["value"].split())
    # What nbgrader's own manager says in the same situation (why this extension exists).
    theirs = down.manager(monkeypatch, cls=AssignmentList)
    assert "exchange directory does not exist" in theirs.list_assignments(COURSE)["value"]


def test_unexpected_errors_keep_their_traceback(down, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(lab, "CourseDirectory", broken)
    manager = down.manager(monkeypatch)
    for answer in (manager.list_assignments(COURSE), manager.submit_assignment(COURSE, "ps1")):
        assert not answer["success"]
        assert "Traceback" in answer["value"] and "injected failure" in answer["value"]


class _Server(LoggingConfigurable):
    """The parts of Jupyter Server's ServerApp that the extension touches."""

    def __init__(self, root_dir: str) -> None:
        super().__init__()
        self.root_dir = root_dir
        self.web_app = type("WebApp", (), {"settings": {"assignment_list_manager": object()}})()


def test_loading_the_extension_replaces_nbgraders_manager(tmp_path) -> None:
    assert lab._jupyter_server_extension_points() == [{"module": "nbgrader_exchange.lab"}]
    server = _Server(str(tmp_path))
    lab._load_jupyter_server_extension(server)
    manager = server.web_app.settings["assignment_list_manager"]
    assert isinstance(manager, lab.ExchangeAssignmentList)
    assert manager.root_dir == str(tmp_path)
