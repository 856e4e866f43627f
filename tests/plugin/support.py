"""People, a course and the real nbgrader CLI, for the plugin's end-to-end tests and the demo.

Each person has their own working directory and HOME (so their own nbgrader cache and
Jupyter data), their own API token, and runs the real ``nbgrader`` in a process of its own
(``run_nbgrader``: a child of the session's fork server in the tests). Under coverage, that
process is measured too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import requests

from tests.harness.forkserver import clean_environment, run_nbgrader
from tests.harness.live import LiveServer

COURSE = "phys101"

PLUGIN_CONFIG = """\
from nbgrader_exchange import configure

configure(c)
"""


def solution_notebook() -> nbformat.NotebookNode:
    """An instructor's notebook: one autograded answer and its test."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    answer = nbformat.v4.new_code_cell(
        "def squares(n):\n"
        '    """The squares of 1..n."""\n'
        "    ### BEGIN SOLUTION\n"
        "    return [i * i for i in range(1, n + 1)]\n"
        "    ### END SOLUTION\n"
    )
    answer.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "squares",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    test = nbformat.v4.new_code_cell("assert squares(3) == [1, 4, 9]\n")
    test.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "test_squares",
        "locked": True,
        "points": 1,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# Problem set 1"), answer, test]
    return nb


def write_source(course_dir: Path, assignment: str = "ps1", data_size: int = 2000) -> None:
    """``source/<assignment>/`` with the notebook and a data file students hand back unchanged."""
    source = course_dir / "source" / assignment
    source.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_notebook(), source / f"{assignment}.ipynb")
    (source / "data.csv").write_text("x,y\n" + "1,1\n" * (data_size // 4))


RIGHT = "return [i * i for i in range(1, n + 1)]"
WRONG = "return []"


def answer(notebook: Path, correct: bool = True) -> None:
    """Fill in (or change) the released notebook's answer, as a student would."""
    text = notebook.read_text()
    body = RIGHT if correct else WRONG
    for old in ("raise NotImplementedError()", RIGHT, WRONG):
        text = text.replace(old, body)
    notebook.write_text(text)


@dataclass
class Result:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Person:
    """Someone with a working directory, a HOME, a token, and the nbgrader CLI."""

    name: str
    root: Path
    url: str
    token: str
    course_id: str | None = None
    extra_config: str = ""
    env_extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        config = PLUGIN_CONFIG
        if self.course_id:
            config += f"c.CourseDirectory.course_id = {self.course_id!r}\n"
        (self.work / "nbgrader_config.py").write_text(config + self.extra_config)

    @property
    def home(self) -> Path:
        return self.root / self.name / "home"

    @property
    def work(self) -> Path:
        return self.root / self.name / "work"

    @property
    def cache(self) -> Path:
        return self.home / ".local" / "share" / "jupyter" / "nbgrader_cache"

    def env(self) -> dict[str, str]:
        env = clean_environment(
            HOME=str(self.home),
            NBGRADER_EXCHANGE_URL=self.url,
            NBGRADER_EXCHANGE_TOKEN=self.token,
        )
        env.update(self.env_extra)
        return env

    def nbgrader(self, *args: str, check: bool = True, timeout: float = 300) -> Result:
        """Run ``nbgrader <args>`` in this person's working directory."""
        result = Result(*run_nbgrader(list(args), env=self.env(), cwd=self.work, timeout=timeout))
        if check and not result.ok:
            raise AssertionError(
                f"nbgrader {' '.join(args)} failed as {self.name}:\n{result.output}"
            )
        return result

    def list_json(self, *args: str) -> list[dict[str, Any]]:
        """``nbgrader list --json <args>``, parsed."""
        output = self.nbgrader("list", "--json", *args).output
        start = output.index("[")
        return json.loads(output[start : output.rindex("]") + 1])


# --- in-process: the exchange classes as nbgrader's applications call them -------------------


@dataclass
class Actor:
    """Runs exchange roles in this process, in a working directory, with a config.

    ``config`` is built by ``make_config`` (the plugin's or nbgrader's own filesystem
    exchange), so the same scenario runs against both.
    """

    name: str
    work: Path
    config: Any
    student_id: str = "*"

    def run(self, role: str, course: str | None = None, assignment: str = "", **traits: Any) -> Any:
        import copy

        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange import ExchangeFactory

        cfg = copy.deepcopy(self.config)
        if course is not None:
            cfg.CourseDirectory.course_id = course
        cfg.CourseDirectory.assignment_id = assignment
        cfg.CourseDirectory.student_id = traits.pop("student_id", self.student_id)
        section = {
            "List": "ExchangeList",
            "Collect": "ExchangeCollect",
            "ReleaseAssignment": "ExchangeReleaseAssignment",
            "FetchAssignment": "ExchangeFetchAssignment",
            "Submit": "ExchangeSubmit",
        }.get(role)
        for key, value in traits.items():
            assert section is not None, f"{role} takes no options"
            setattr(getattr(cfg, section), key, value)
        previous = os.getcwd()
        os.chdir(self.work)
        try:
            cfg.CourseDirectory.root = str(self.work)
            coursedir = CourseDirectory(config=cfg)
            authenticator = Authenticator(config=cfg)
            exchange = getattr(ExchangeFactory(config=cfg), role)(
                coursedir=coursedir, authenticator=authenticator, config=cfg
            )
            return exchange.start()
        finally:
            os.chdir(previous)


def plugin_config(url: str, token: str, cache: Path) -> Any:
    from traitlets.config import Config

    from nbgrader_exchange import configure

    cfg = Config()
    configure(cfg, url=url, token=token, cache=str(cache))
    return cfg


def filesystem_config(root: Path, cache: Path) -> Any:
    from traitlets.config import Config

    cfg = Config()
    cfg.Exchange.root = str(root)
    cfg.Exchange.cache = str(cache)
    return cfg


def shape(value: Any) -> Any:
    """The keys of nested dicts and lists, without the values: what a UI reads."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


# Small enough that a test can go over it, large enough for notebooks and feedback.
MAX_FILE_SIZE = 2_000_000


@dataclass
class Service:
    """The live server, and how to set up courses on it."""

    server: LiveServer
    admin_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def tokens(self, *usernames: str) -> dict[str, str]:
        """A new API token for each user (created if missing), in one manage.py run."""
        return self.server.tokens(usernames)

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return requests.request(
            method, f"{self.server.api_url}/{path}", headers=headers, timeout=60, **kwargs
        )

    def create_course(self, course_id: str, instructor: str, students: list[str]) -> None:
        created = self.api(
            "POST", "courses", json={"course_id": course_id, "instructors": [instructor]}
        )
        assert created.status_code == 201, created.text
        for student in students:
            added = self.api(
                "PUT", f"courses/{course_id}/members/{student}", json={"role": "student"}
            )
            assert added.status_code in (200, 201), added.text
