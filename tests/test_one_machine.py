"""docs/one-machine.md, followed to the letter: a real JupyterHub 6.1.1 with
configurable-http-proxy, the exchange as its managed service, JupyterLab servers spawned by
the hub, and the real nbgrader command line in each server's own environment (its own
``JUPYTERHUB_API_TOKEN``, nothing else) for a whole course cycle; then Chromium through the
hub's sign-in: the Formgrader and the Assignments tab inside a hub-spawned Lab, and the
admin site for a hub admin (with a 403 page for someone who is not).

One hub for the module (start-up is the expensive part). Screenshots go to
test-artifacts/one-machine/.
"""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
import requests
from playwright.sync_api import expect

from tests.harness import BIN, REPO
from tests.harness.hub import PROXY
from tests.harness.one_machine import DOC, Recipe, doc_files
from tests.lab import pages
from tests.lab.notebooks import write_source_assignment

pytestmark = [
    pytest.mark.sqlite_only,  # the hub's service keeps its own SQLite database
    pytest.mark.skipif(not PROXY.exists(), reason="needs `make hub-proxy` (npm proxy)"),
]

SCREENSHOTS = REPO / "test-artifacts" / "one-machine"
COURSE, ASSIGNMENT = "phys101", "ps1"
STUDENTS = ("sam", "tia")
SOLUTION = "def add(a, b):\n    return a + b\n"


class Course:
    """The recipe running, with phys101 made by ``exchange-manage`` and three servers."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        recipe.manage("create_course", COURSE, "--title", "Physics 101", "--instructor", "ines")
        # A file next to where the operator runs the wrapper (a relative path).
        (recipe.dir / "students.csv").write_text("id\n" + "\n".join(STUDENTS) + "\n")
        recipe.manage("import_roster", COURSE, "students.csv")
        self.env = recipe.start_servers("ines", *STUDENTS)
        self.course_root = recipe.home("ines") / COURSE

    def nbgrader(self, name: str, *args: str, cwd: Path | None = None) -> str:
        """The real nbgrader CLI as the user's server would run it: its exact environment."""
        result = subprocess.run(
            [str(BIN / "nbgrader"), *args],
            cwd=cwd or self.recipe.home(name),
            env=self.env[name],
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} as {name} failed:\n{output}")
        return output


@pytest.fixture(scope="module")
def course() -> Iterator[Course]:
    with Recipe() as recipe:
        try:
            yield Course(recipe)
        except Exception:  # pragma: no cover - the hub's log tells why
            print(recipe.log()[-8000:])
            raise


@pytest.fixture(scope="module")
def browser(chromium):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return chromium


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# --- the page itself ------------------------------------------------------------------------


def test_the_page_has_every_file_the_test_runs_and_every_path_it_moves():
    files = doc_files(DOC.read_text())
    assert set(files) == {
        "/etc/nbgrader-exchange/env",
        "/usr/local/bin/exchange-manage",
        "/etc/jupyterhub/jupyterhub_config.py",
        "/etc/jupyter/nbgrader_config.py",
        "/etc/jupyter/jupyter_server_config.d/nbgrader_exchange.json",
        "/etc/jupyter/jupyter_server_config.py",
        "/srv/jupyterhub/home/ines/.jupyter/nbgrader_config.py",
    }
    recipe = Recipe()
    try:
        assert recipe.missing_placeholders() == []
    finally:
        recipe.stop()
    config = files["/etc/jupyterhub/jupyterhub_config.py"]
    # The exchange keeps off the hub's and the proxy's ports.
    assert '"url": "http://127.0.0.1:9010"' in config
    assert "127.0.0.1:9010" in files["/etc/jupyter/nbgrader_config.py"]
    for taken in ("8000", "8001", "8081"):
        assert f'"--bind", "127.0.0.1:{taken}"' not in config


def test_a_service_on_the_proxys_port_stops_with_a_sentence_in_the_hubs_log():
    """The mistake of the old recipe: the exchange on the proxy's API port."""
    recipe = Recipe()
    recipe.ports["9010"] = recipe.ports["8001"]
    port = recipe.ports["8001"]
    try:
        # The port is checked first: no need to migrate the database for this one.
        recipe.start(wait=False, migrate=False)
        deadline = time.monotonic() + 120
        while "exited with status 1" not in recipe.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        log = recipe.log()
        assert (
            f"The exchange cannot start: 127.0.0.1:{port} is already in use by another program"
            in log
        )
        assert "Service nbgrader-exchange exited with status 1" in log
        assert "Traceback" not in log
    finally:
        recipe.stop()


# --- the course cycle with each server's own token -------------------------------------------


def test_servers_get_their_own_hub_token_and_no_exchange_token(course):
    for name, env in course.env.items():
        assert env["JUPYTERHUB_USER"] == name
        assert env["JUPYTERHUB_API_TOKEN"]
        assert "NBGRADER_EXCHANGE_TOKEN" not in env
    tokens = {env["JUPYTERHUB_API_TOKEN"] for env in course.env.values()}
    assert len(tokens) == 3


def test_the_nbgrader_cycle_runs_with_the_servers_tokens(course):
    root = course.course_root
    write_source_assignment(root, ASSIGNMENT, ASSIGNMENT)
    course.nbgrader("ines", "generate_assignment", ASSIGNMENT, "--force", cwd=root)
    course.nbgrader("ines", "release_assignment", ASSIGNMENT, "--force", cwd=root)

    def fetch(name: str) -> None:
        listed = course.nbgrader(name, "list", "--course", COURSE)
        assert f"{COURSE} {ASSIGNMENT}" in listed
        course.nbgrader(name, "fetch_assignment", ASSIGNMENT, "--course", COURSE)

    each_student(fetch)
    # sam answers; tia hands in the notebook as released.
    notebook_path = course.recipe.home("sam") / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    answer = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = SOLUTION
    nbformat.write(notebook, notebook_path)
    each_student(lambda name: course.nbgrader(name, "submit", ASSIGNMENT, "--course", COURSE))

    collected = course.nbgrader("ines", "collect", ASSIGNMENT, cwd=root)
    assert sorted(p.name for p in (root / "submitted").iterdir()) == sorted(STUDENTS), collected
    course.nbgrader("ines", "autograde", ASSIGNMENT, cwd=root)
    course.nbgrader("ines", "generate_feedback", ASSIGNMENT, cwd=root)
    course.nbgrader("ines", "release_feedback", ASSIGNMENT, cwd=root)

    each_student(
        lambda name: course.nbgrader(name, "fetch_feedback", ASSIGNMENT, "--course", COURSE)
    )
    for name in STUDENTS:
        reports = list((course.recipe.home(name) / ASSIGNMENT / "feedback").glob("*/*.html"))
        assert len(reports) == 1, reports
        score = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", reports[0].read_text())
        assert score is not None
        assert float(score[1]) == (1.0 if name == "sam" else 0.0)

    # The exchange saw the hub users themselves (their servers' tokens), through the proxy.
    me = requests.get(
        course.recipe.service_url + "api/v1/me",
        headers={"Authorization": f"token {course.env['sam']['JUPYTERHUB_API_TOKEN']}"},
        timeout=30,
    )
    assert me.json()["username"] == "sam"
    audit = course.recipe.manage("shell", "-c", AUDIT_QUERY)
    assert "sam submitted" in audit and "tia submitted" in audit and "ines collected" in audit


def each_student(step: Callable[[str], object]) -> None:
    """The students work at the same time, each in their own server's environment."""
    with concurrent.futures.ThreadPoolExecutor(len(STUDENTS)) as pool:
        for result in [pool.submit(step, name) for name in STUDENTS]:
            result.result()


AUDIT_QUERY = (
    "from courses.models import AuditEvent\n"
    "for e in AuditEvent.objects.order_by('at'): print(e.actor_name, e.action)"
)


def test_readyz_through_the_proxy_names_each_part(course):
    ready = requests.get(course.recipe.service_url + "readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}


# --- Chromium through the hub -----------------------------------------------------------------


def hub_sign_in(browser, recipe: Recipe, name: str, url: str):
    """A new browser context signed in as ``name`` through the hub's form, on ``url``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(pages.TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    page.wait_for_url(re.compile(r"/hub/login"))
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", recipe.password)
    page.click("#login_submit")
    return context, page


def test_formgrader_and_assignments_tab_inside_a_hub_spawned_lab(browser, course):
    recipe = course.recipe
    context, page = hub_sign_in(browser, recipe, "ines", f"{recipe.url}/user/ines/lab")
    try:
        page.wait_for_url(re.compile(r"/user/ines/lab"))
        response = page.goto(f"{recipe.url}/user/ines/lab")
        # The recipe's header replaces jupyterhub-singleuser's "frame-ancestors 'none'".
        assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
        expect(pages.nbgrader_menu(page)).to_be_visible()
        grader = pages.open_formgrader(page)
        row = pages.formgrader_row(grader, ASSIGNMENT)
        expect(row.locator("td.status")).to_have_text("released")
        shot(page, "01-formgrader-in-lab")
        pages.open_assignments(page)
        expect(pages.main_tab(page, "Assignments")).to_be_visible()
        for section in pages.SECTIONS:
            expect(pages.section_error(page, section)).to_be_hidden()
        shot(page, "02-instructor-assignments-tab")
    except Exception:
        shot(page, "failure-formgrader")
        raise
    finally:
        context.close()


def test_students_assignments_tab_in_a_hub_spawned_lab(browser, course):
    recipe = course.recipe
    context, page = hub_sign_in(browser, recipe, "tia", f"{recipe.url}/user/tia/lab")
    try:
        page.wait_for_url(re.compile(r"/user/tia/lab"))
        pages.open_lab(page, f"{recipe.url}/user/tia/lab")
        pages.open_assignments(page)
        assert COURSE in pages.course_choices(page)
        expect(pages.assignment_row(page, "fetched", ASSIGNMENT)).to_have_count(1)
        expect(pages.assignment_row(page, "submitted", ASSIGNMENT)).to_have_count(1)
        shot(page, "03-student-assignments-tab")
    except Exception:
        shot(page, "failure-assignments")
        raise
    finally:
        context.close()


def test_a_hub_admin_uses_the_admin_site_and_uploads_a_roster(browser, course):
    recipe = course.recipe
    context, page = hub_sign_in(browser, recipe, "ada", recipe.service_url + "admin/")
    try:
        page.wait_for_url(recipe.service_url + "admin/")
        # Staff with the exchange-admins group: every model is there, not "no permission".
        expect(page.locator("#site-name")).to_be_visible()
        expect(page.locator("#content-main")).not_to_contain_text("permission to view or edit")
        for model in ("course", "membership", "assignment", "submission", "auditevent"):
            expect(page.locator(f"#courses-{model} a").first).to_be_visible()
        expect(page.locator("#auth-user a").first).to_be_visible()
        shot(page, "04-admin-site-hub-admin")

        page.goto(recipe.service_url + "admin/courses/course/")
        page.get_by_role("link", name=COURSE, exact=True).click()
        page.get_by_role("link", name="Upload roster").click()
        page.set_input_files(
            "#id_file",
            files=[{"name": "students.csv", "mimeType": "text/csv", "buffer": ROSTER}],
        )
        page.get_by_role("button", name="Preview").click()
        preview = page.locator("#roster-preview")
        expect(preview).to_contain_text("1 to add, 1 to update, 0 to remove, 1 unchanged.")
        expect(preview.locator("tr.added td")).to_have_text("uma")
        expect(preview.locator("tr.updated td")).to_have_text("sam")
        shot(page, "05-roster-preview")
        assert "uma" not in recipe.manage("export_roster", COURSE)

        page.get_by_role("button", name="Apply these changes").click()
        page.wait_for_url(re.compile(r"/admin/courses/course/\d+/change/"))
        expect(page.locator(".messagelist")).to_contain_text(
            "Roster of phys101 imported: 1 added, 1 updated, 0 removed, 1 unchanged."
        )
        shot(page, "06-roster-applied")
        exported = recipe.manage("export_roster", COURSE)
        assert "uma" in exported and "sam@example.org" in exported
        audit = recipe.manage("shell", "-c", AUDIT_QUERY)
        assert "ada roster_changed" in audit
    except Exception:
        shot(page, "failure-admin")
        raise
    finally:
        context.close()


ROSTER = b"id,first_name,last_name,email\nsam,Sam,Smith,sam@example.org\ntia,,,\numa,Uma,,\n"


def test_a_signed_in_user_who_is_not_staff_gets_a_403_page_not_a_loop(browser, course):
    recipe = course.recipe
    context, page = hub_sign_in(browser, recipe, "sam", recipe.service_url + "admin/")
    try:
        page.wait_for_url(re.compile(r"/admin/login/"))
        expect(page.locator("main")).to_contain_text("You are signed in as sam")
        expect(page.locator("main")).to_contain_text("EXCHANGE_HUB_ADMINS_ARE_STAFF")
        response = page.reload()
        assert response.status == 403
        shot(page, "07-admin-403-for-a-student")
    finally:
        context.close()
