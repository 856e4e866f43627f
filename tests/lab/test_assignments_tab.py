"""JupyterLab in a real browser: the students' Assignments tab and the instructor's formgrader.

An instructor and two students each run their own JupyterLab server (own HOME, port and
token, on 127.0.0.1). Chromium clicks through a whole assignment: the instructor generates
and releases ``ps1`` in the formgrader; each student fetches it in the Assignments tab,
opens the notebook and submits; the instructor collects (the formgrader then counts two
submissions); autograde and generate_feedback run on the command line; the instructor
releases feedback from the formgrader; each student fetches their feedback and opens it.

Every step is saved as a screenshot under ``test-artifacts/lab-screenshots/``.

(nbgrader's own filesystem exchange cannot stand in here as a baseline: it names a student
by the operating-system account, and every server in this test runs under the same one.)
"""

from __future__ import annotations

import concurrent.futures
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.harness import REPO
from tests.harness.lab import LabUser

from . import pages
from .notebooks import write_source_assignment
from .screenshots import Screenshots

pytestmark = [pytest.mark.sqlite_only]

COURSE = "phys101"
OTHER_COURSE = "chem201"
ASSIGNMENT = "ps1"
NOTEBOOK = "ps1"
STUDENTS = ("sam", "tia")
SOLVERS = ("sam",)  # sam answers correctly, tia submits the notebook as released
SOLUTION = "def add(a, b):\n    return a + b"


@dataclass
class Classroom:
    instructor: LabUser
    students: dict[str, LabUser]
    course_root: Path

    @property
    def users(self) -> list[LabUser]:
        return [self.instructor, *self.students.values()]


class ServiceExchange:
    """The exchange service (gunicorn on 127.0.0.1) and this repository's nbgrader plugin.

    Every user's ``nbgrader_config.py`` calls ``configure(c, url=...)``; each user's API
    token (from ``manage.py create_api_token``) reaches their server as
    ``NBGRADER_EXCHANGE_TOKEN``, the way JupyterHub hands ``JUPYTERHUB_API_TOKEN`` to a
    single-user server.
    """

    name = "service"

    def __init__(self, root: Path) -> None:
        pytest.importorskip("nbgrader_exchange", reason="the nbgrader plugin is not installed")
        from tests.harness.live import LiveServer

        (root / "service").mkdir()
        self.server = LiveServer(data_dir=root / "service").start()
        self.tokens = self.server.tokens(
            {"admin": True, **dict.fromkeys(("ines", "olaf", *STUDENTS), False)}
        )
        admin = self.tokens.pop("admin")
        for course, instructor in ((COURSE, "ines"), (OTHER_COURSE, "olaf")):
            self._api(
                "POST", "courses", admin, json={"course_id": course, "instructors": [instructor]}
            )
            for student in STUDENTS:
                self._api(
                    "PUT",
                    f"courses/{course}/members/{student}",
                    self.tokens[instructor],
                    json={"role": "student"},
                )

    def _api(self, method: str, path: str, token: str, **kwargs) -> None:
        response = requests.request(
            method,
            f"{self.server.api_url}/{path}",
            headers={"Authorization": f"token {token}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 300, response.text

    def setup(self, user: LabUser, course_root: Path | None = None) -> None:
        """Write the user's ``nbgrader_config.py`` and enable the plugin's Lab extension."""
        user.prepare()
        user.extra_env["NBGRADER_EXCHANGE_TOKEN"] = self.tokens[user.name]
        user.extra_env["PYTHONPATH"] = str(REPO)
        lines = [
            "from nbgrader_exchange import configure\n",
            "c = get_config()  # noqa: F821\n",
            f"configure(c, url={self.server.url!r})\n",
        ]
        if course_root is not None:
            lines.append(f"c.CourseDirectory.root = {str(course_root)!r}\n")
            lines.append(f"c.CourseDirectory.course_id = {course_root.name!r}\n")
        user.write_nbgrader_config("".join(lines))
        server_config = {"ServerApp": {"jpserver_extensions": {"nbgrader_exchange.lab": True}}}
        (user.config_dir / "jupyter_server_config.json").write_text(json.dumps(server_config))

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def service(tmp_path):
    backend = ServiceExchange(tmp_path)
    yield backend
    backend.stop()


def start_all(users: list[LabUser]) -> None:
    for user in users:
        user.start(wait=False)
    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        list(pool.map(LabUser.wait_ready, users))


def release_from_cli(user: LabUser, course_root: Path, assignment: str) -> None:
    write_source_assignment(course_root, assignment, assignment)
    user.nbgrader("generate_assignment", assignment, cwd=course_root)
    user.nbgrader("release_assignment", assignment, cwd=course_root)


@pytest.fixture
def classroom(service, tmp_path, lab_log_dir) -> Classroom:
    """Three running JupyterLab servers, and a second course with a released assignment."""
    homes = tmp_path / "home"
    instructor = LabUser("ines", homes / "ines", lab_log_dir)
    course_root = instructor.home / COURSE
    service.setup(instructor, course_root)
    write_source_assignment(course_root, ASSIGNMENT, NOTEBOOK)

    students = {}
    for name in STUDENTS:
        students[name] = LabUser(name, homes / name, lab_log_dir)
        service.setup(students[name])

    # A second course, released from the command line, so that the students' course list
    # holds more than one course.
    other = LabUser("olaf", homes / "olaf", lab_log_dir)
    service.setup(other, other.home / OTHER_COURSE)
    release_from_cli(other, other.home / OTHER_COURSE, "lab1")

    room = Classroom(instructor, students, course_root)
    try:
        start_all(room.users)
        yield room
    finally:
        for user in room.users:
            user.stop()


def test_assignment_round_trip_by_clicking(
    chromium, classroom: Classroom, screenshots: Screenshots
) -> None:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(pages.TIMEOUT_MS)
    try:
        _round_trip(context, classroom, screenshots)
    except Exception:
        for page in context.pages:
            screenshots.take(page, "failure")
        raise
    finally:
        context.close()


def _round_trip(context, room: Classroom, shots: Screenshots) -> None:
    # The instructor generates and releases ps1 in the formgrader.
    teacher = context.new_page()
    pages.open_lab(teacher, room.instructor.lab_url)
    grader = pages.open_formgrader(teacher)
    row = pages.formgrader_row(grader, ASSIGNMENT)
    expect(row.locator("td.status")).to_have_text("draft")
    shots.take(teacher, "instructor formgrader manage assignments")
    pages.formgrader_action(
        grader, ASSIGNMENT, "assign", lambda: shots.take(teacher, "instructor generated ps1")
    )
    pages.formgrader_action(
        grader, ASSIGNMENT, "release", lambda: shots.take(teacher, "instructor released ps1")
    )
    status = pages.formgrader_row(grader, ASSIGNMENT).locator("td.status")
    expect(status).to_have_text("released")
    # Unrelease (the same column, now an "x") and release again.
    pages.formgrader_action(
        grader, ASSIGNMENT, "release", lambda: shots.take(teacher, "instructor unreleased ps1")
    )
    expect(status).to_have_text("draft")
    pages.formgrader_action(grader, ASSIGNMENT, "release")
    expect(status).to_have_text("released")
    shots.take(teacher, "instructor sees ps1 released")

    # The instructor's Course List offers this server's formgrader for the course.
    pages.run_menu_command(teacher, "nbgrader:open-course-list")
    course_entry = teacher.locator("#formgrader_list .list_item", has_text=COURSE)
    expect(course_entry).to_be_visible()
    expect(course_entry).to_contain_text("local")
    shots.take(teacher, "instructor course list")
    pages.main_tab(teacher, "Formgrader").click()

    # Each student sees ps1, fetches it, opens the notebook and submits.
    student_pages = {}
    submitted_at: dict[str, str] = {}
    for name, student in room.students.items():
        page = context.new_page()
        student_pages[name] = page
        pages.open_lab(page, student.lab_url)
        pages.open_assignments(page)
        assert set(pages.course_choices(page)) == {COURSE, OTHER_COURSE}
        pages.select_course(
            page, COURSE, lambda page=page, name=name: shots.take(page, f"{name} courses")
        )
        released = pages.assignment_row(page, "released", ASSIGNMENT)
        expect(released).to_have_count(1)
        expect(released.locator(".item_course")).to_have_text(COURSE)
        shots.take(page, f"{name} sees ps1 released")

        pages.click_row_button(page, "released", ASSIGNMENT, "Fetch")
        expect(pages.assignment_row(page, "fetched", ASSIGNMENT)).to_have_count(1)
        assert (student.home / ASSIGNMENT / f"{NOTEBOOK}.ipynb").is_file()
        shots.take(page, f"{name} fetched ps1")

        pages.open_fetched_notebook(page, COURSE, ASSIGNMENT, NOTEBOOK)
        expect(page.locator(".jp-NotebookPanel:visible")).to_contain_text("def add(a, b):")
        if name in SOLVERS:
            pages.answer_cell(page, 1, SOLUTION)
            shots.take(page, f"{name} answered and saved")
        else:
            shots.take(page, f"{name} opened the notebook")

        pages.main_tab(page, "Assignments").click()
        pages.click_row_button(page, "fetched", ASSIGNMENT, "Submit")
        expect(pages.assignment_row(page, "submitted", ASSIGNMENT)).to_have_count(1)
        expect(pages.submissions(page, COURSE, ASSIGNMENT)).to_have_count(1)
        submitted_at[name] = pages.submissions(page, COURSE, ASSIGNMENT).inner_text().strip()
        shots.take(page, f"{name} submitted ps1")

    # The instructor collects: the formgrader counts two submissions.
    pages.reload_manage_assignments(teacher, grader)
    pages.formgrader_action(
        grader, ASSIGNMENT, "collect", lambda: shots.take(teacher, "instructor collected")
    )
    expect(pages.formgrader_row(grader, ASSIGNMENT).locator("td.num-submissions")).to_have_text("2")
    shots.take(teacher, "instructor sees 2 submissions")
    for name in STUDENTS:
        assert (room.course_root / "submitted" / name / ASSIGNMENT / "timestamp.txt").is_file()

    # Autograding and generating feedback on the command line.
    room.instructor.nbgrader("autograde", ASSIGNMENT, cwd=room.course_root)
    room.instructor.nbgrader("generate_feedback", ASSIGNMENT, cwd=room.course_root)

    # The instructor releases feedback from the formgrader.
    pages.reload_manage_assignments(teacher, grader)
    pages.formgrader_action(
        grader,
        ASSIGNMENT,
        "release-feedback",
        lambda: shots.take(teacher, "instructor released feedback"),
    )

    # Each student fetches their feedback and opens it.
    for name, page in student_pages.items():
        page.bring_to_front()
        pages.refresh_assignments(page)
        pages.select_course(page, COURSE)
        submission = pages.submissions(page, COURSE, ASSIGNMENT)
        expect(submission).to_contain_text("feedback available to fetch")
        shots.take(page, f"{name} sees feedback available")

        pages.click_row_button(page, "submitted", ASSIGNMENT, "Fetch Feedback")
        view = pages.submissions(page, COURSE, ASSIGNMENT).get_by_text("(view feedback)")
        expect(view).to_be_visible()
        shots.take(page, f"{name} fetched feedback")

        view.click()
        listing = page.locator(".jp-DirListing-item", has_text=f"{NOTEBOOK}.html")
        expect(listing).to_be_visible()
        listing.dblclick()
        report = page.frame_locator(".jp-HTMLViewer iframe")
        score = "1.0 / 1.0" if name in SOLVERS else "0.0 / 1.0"
        expect(report.locator("body")).to_contain_text(
            f"{NOTEBOOK} (Score: {score})", timeout=pages.TIMEOUT_MS
        )
        shots.take(page, f"{name} opened their feedback")
        # Their own feedback, for their own submission: the folder is its timestamp.
        feedback = list((room.students[name].home / ASSIGNMENT / "feedback").glob("*/*.html"))
        assert [path.parent.name for path in feedback] == [submitted_at[name]]


@pytest.fixture
def stranded_student(service, tmp_path, lab_log_dir) -> LabUser:
    """A student whose Lab is running, with ps1 fetched and ps2 released but not fetched."""
    homes = tmp_path / "home"
    instructor = LabUser("ines", homes / "ines", lab_log_dir)
    course_root = instructor.home / COURSE
    service.setup(instructor, course_root)
    release_from_cli(instructor, course_root, "ps1")
    release_from_cli(instructor, course_root, "ps2")
    student = LabUser("sam", homes / "sam", lab_log_dir)
    service.setup(student)
    student.nbgrader("fetch_assignment", "ps1", "--course", COURSE)
    try:
        start_all([student])
        yield student
    finally:
        student.stop()


def test_assignments_tab_explains_that_the_exchange_is_down(
    chromium, service, stranded_student: LabUser, screenshots: Screenshots
) -> None:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(pages.TIMEOUT_MS)
    page = context.new_page()
    try:
        pages.open_lab(page, stranded_student.lab_url)
        pages.open_assignments(page)
        expect(pages.assignment_row(page, "released", "ps2")).to_have_count(1)
        expect(pages.assignment_row(page, "fetched", "ps1")).to_have_count(1)
        screenshots.take(page, "sam sees ps1 fetched and ps2 released")

        service.stop()
        unreachable = f"the exchange server at {service.server.url} is not reachable"

        # Submit: nbgrader's "Invalid Submission" dialog carries the sentence.
        pages.assignment_row(page, "fetched", "ps1").locator(
            ".item_status button", has_text="Submit"
        ).click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Assignment not submitted")
        expect(dialog).to_contain_text(unreachable)
        expect(dialog).not_to_contain_text("Traceback")
        screenshots.take(page, "submit while the exchange is down")
        dialog.locator("button", has_text="Ok").click()
        expect(dialog).to_have_count(0)

        # Fetch: the tab says what failed instead of listing again as if nothing happened.
        pages.assignment_row(page, "released", "ps2").locator(
            ".item_status button", has_text="Fetch"
        ).click()
        pages.wait_loaded(page)
        error = pages.section_error(page, "released")
        expect(error).to_be_visible()
        expect(error).to_contain_text("Could not fetch")
        expect(error).to_contain_text(unreachable)
        screenshots.take(page, "fetch while the exchange is down")

        # Refresh: the course list and every section explain, nothing spins.
        pages.refresh_assignments(page)
        expect(page.locator("#course_list_default")).to_have_text("Error fetching courses!")
        for section in pages.SECTIONS:
            error = pages.section_error(page, section)
            expect(error).to_be_visible()
            expect(error).to_contain_text(unreachable)
            expect(error).not_to_contain_text("Traceback")
            expect(error).not_to_contain_text("exchange directory")
            expect(page.locator(f"#{section}_assignments_list_loading")).to_be_hidden()
        assert pages.rows(page, "released").count() == 0
        screenshots.take(page, "assignments tab while the exchange is down")
    except Exception:
        screenshots.take(page, "failure")
        raise
    finally:
        context.close()
