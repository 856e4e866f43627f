"""End to end with a real JupyterHub: the exchange runs as a hub-managed service (gunicorn,
whitenoise) behind configurable-http-proxy at /services/nbgrader-exchange/, and Debian's
Chromium, driven by Playwright, signs in through the hub's OAuth.

The hub grants users ``access:services!service=nbgrader-exchange`` and puts it into their
servers' tokens (the ``server`` role), as docs/jupyterhub.md and the chart's NOTES say to.
Screenshots go to test-artifacts/screenshots/pages/.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.harness import REPO
from tests.harness.hub import PROXY, SERVICE_NAME, JupyterHub
from tests.harness.uploads import multipart_files, notebook

ACCESS = f"access:services!service={SERVICE_NAME}"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots" / "pages"
CACHE_SECONDS = 3

pytestmark = [
    pytest.mark.sqlite_only,  # the service keeps its own SQLite database: once is enough
    pytest.mark.skipif(
        not PROXY.exists(), reason="needs `make hub-proxy` (npm configurable-http-proxy)"
    ),
]


def upload(files: dict[str, bytes]) -> dict:
    return {"files": multipart_files(files)}


COURSE_SETUP = """
from courses import services
course = services.create_course(code="phys101", title="Physics 101", instructors=["ines"])
for name, role in [("gus", "grader"), ("sam", "student"), ("tia", "student")]:
    services.add_member(course=course, username=name, role=role)
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


class Exchange:
    """The running hub with a course in the exchange: phys101 with ines (instructor), gus
    (grader), sam and tia (students); ps1 released; sam and tia submitted; feedback for sam."""

    def __init__(self, hub: JupyterHub) -> None:
        self.hub = hub
        self.api = hub.service_url + "api/v1"
        # One process for the course and its people (the commands have their own tests).
        hub.manage("shell", "-c", COURSE_SETUP)
        self.tokens = {name: hub.create_token(name) for name in ("ines", "gus", "sam", "tia")}
        base = f"{self.api}/courses/phys101/assignments/ps1"
        released = requests.post(
            f"{base}/release",
            headers=auth(self.tokens["ines"]),
            data={"due_date": "2030-01-01 00:00:00 UTC"},
            timeout=60,
            **upload({"ps1.ipynb": notebook("Problem set 1")}),
        )
        assert released.status_code == 201, released.text
        self.submissions = {}
        for name in ("sam", "tia"):
            sent = requests.post(
                f"{base}/submissions",
                headers=auth(self.tokens[name]),
                timeout=60,
                **upload({"ps1.ipynb": notebook(f"Answer of {name}"), "notes.txt": b"hi"}),
            )
            assert sent.status_code == 201, sent.text
            self.submissions[name] = sent.json()["id"]
        feedback = requests.post(
            f"{self.api}/submissions/{self.submissions['sam']}/feedback",
            headers=auth(self.tokens["gus"]),
            timeout=60,
            **upload({"ps1.html": b"<html><body><h2>Well done, sam</h2></body></html>"}),
        )
        assert feedback.status_code == 201, feedback.text


@pytest.fixture(scope="module")
def exchange() -> Iterator[Exchange]:
    hub = JupyterHub(
        user_scopes=["self", ACCESS],
        server_scopes=["users:activity!user", "access:servers!server", ACCESS],
        service_scopes=["list:groups", "read:groups"],
        groups={"formgrade-phys101": {"users": ["wes"]}, "nbgrader-phys101": {"users": ["uma"]}},
        exchange_env={
            "EXCHANGE_HUB_TOKEN_CACHE_SECONDS": str(CACHE_SECONDS),
            "EXCHANGE_HUB_ADMINS_ARE_STAFF": "true",
        },
    )
    with hub:
        try:
            yield Exchange(hub)
        except Exception:  # pragma: no cover - the hub's log tells why
            print(hub.log()[-5000:])
            raise


def me(exchange: Exchange, token: str) -> requests.Response:
    return requests.get(f"{exchange.api}/me", headers=auth(token), timeout=30)


# --- hub tokens ---------------------------------------------------------------------------


def test_a_users_hub_token_authenticates_api_calls(exchange):
    response = me(exchange, exchange.tokens["ines"])
    assert response.status_code == 200
    assert response.json()["courses"] == [
        {"course_id": "phys101", "title": "Physics 101", "role": "instructor"}
    ]


def test_a_single_user_servers_token_submits_when_the_hub_grants_access(exchange):
    env = exchange.hub.start_server("tia")
    # Her server runs in a home of the hub's own, not in /tmp/tia.
    assert (exchange.hub.homes_dir / "tia").is_dir()
    token = env["JUPYTERHUB_API_TOKEN"]
    whoami = requests.get(f"{exchange.hub.api_url}/user", headers=auth(token), timeout=30)
    assert ACCESS in whoami.json()["scopes"]
    sent = requests.post(
        f"{exchange.api}/courses/phys101/assignments/ps1/submissions",
        headers=auth(token),
        timeout=60,
        **upload({"ps1.ipynb": notebook("tia from her server")}),
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["student"] == "tia"


def test_a_token_without_access_to_the_service_is_refused_with_the_reason(exchange):
    token = exchange.hub.create_token("sam", scopes=["read:users:name!user"])
    response = me(exchange, token)
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert detail.startswith("JupyterHub did not give this token access to the exchange")
    assert ACCESS in detail and "user and server roles (hub.loadRoles" in detail


def test_a_token_revoked_in_the_hub_stops_working_after_the_cache_time(exchange):
    token = exchange.hub.create_token("gus")
    assert me(exchange, token).status_code == 200
    exchange.hub.revoke_token("gus", token)
    revoked_at = time.monotonic()
    deadline = revoked_at + CACHE_SECONDS + 5
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = me(exchange, token).status_code
        time.sleep(0.25)
    assert status == 401
    assert time.monotonic() - revoked_at <= CACHE_SECONDS + 5


def test_static_files_and_links_are_served_under_the_prefix(exchange):
    page = requests.get(exchange.hub.service_url + "login/", timeout=30, allow_redirects=False)
    # With the hub configured, signing in starts at the hub's OAuth.
    assert page.status_code == 302
    start = requests.get(
        exchange.hub.service_url + "auth/login/jupyterhub/", timeout=30, allow_redirects=False
    )
    authorize = urlsplit(start.headers["Location"])
    assert authorize.path == "/hub/api/oauth2/authorize"
    assert parse_qs(authorize.query)["redirect_uri"] == [f"/services/{SERVICE_NAME}/oauth_callback"]
    css = requests.get(exchange.hub.service_url + "static/web/site.css", timeout=30)
    assert css.status_code == 200 and "font" in css.text
    assert requests.get(exchange.hub.service_url + "healthz", timeout=30).status_code == 200


def test_sync_hub_groups_applies_the_hubs_groups_to_rosters(exchange):
    output = exchange.hub.manage("sync_hub_groups")
    assert "uma is now student in phys101." in output
    assert "wes is now instructor in phys101." in output
    members = requests.get(
        f"{exchange.api}/courses/phys101/members", headers=auth(exchange.tokens["ines"]), timeout=30
    ).json()
    assert {m["username"]: m["role"] for m in members}["wes"] == "instructor"


# --- a browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(chromium):
    """The session's Chromium (tests/conftest.py); a fresh screenshot folder."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return chromium


def signed_in(browser, exchange: Exchange, name: str, path: str = "", **context_args):
    """A new browser context signed in as ``name`` through the hub, on ``path``."""
    context = browser.new_context(**context_args)
    page = context.new_page()
    page.goto(exchange.hub.service_url + path)
    # Not signed in: the exchange sends the browser to the hub, the hub to its login form.
    page.wait_for_url(re.compile(r"/hub/login"))
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", exchange.hub.password)
    page.click("#login_submit")
    page.wait_for_url(exchange.hub.service_url + path + "**")
    return context, page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_instructor_signs_in_through_the_hub_and_walks_course_assignment_submission(
    browser, exchange
):
    context, page = signed_in(browser, exchange, "ines", "courses/phys101/")
    assert page.url == exchange.hub.service_url + "courses/phys101/"
    assert page.locator("h1").inner_text().startswith("phys101")
    assert "3 students" in page.inner_text(".figures")  # sam, tia, and uma from the hub group
    shot(page, "course")

    page.click("text=ps1")
    page.wait_for_url("**/assignments/ps1/")
    rows = page.locator("table.students tbody tr")
    assert rows.count() == 3
    assert "not submitted" in rows.nth(2).inner_text()
    shot(page, "assignment")

    with page.expect_download() as download_info:
        page.click("text=Download all latest submissions (zip)")
    download = download_info.value
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    assert sorted(archive.namelist()) == [
        "sam/notes.txt",
        "sam/ps1.ipynb",
        "tia/ps1.ipynb",  # tia's latest came from her server, with one file
    ] or sorted(archive.namelist()) == [
        "sam/notes.txt",
        "sam/ps1.ipynb",
        "tia/notes.txt",
        "tia/ps1.ipynb",
    ]

    page.click("table.students tbody tr:first-child td:nth-child(2) a")
    page.wait_for_url("**/submissions/*/")
    # The notebook's preview is made by a render worker: the page says so and refreshes
    # itself (every 5 s) until the preview is there.
    page.wait_for_selector("iframe[title='ps1.ipynb']", timeout=180_000)
    frame = page.frame_locator("iframe[title='ps1.ipynb']")
    assert "Answer of sam" in frame.locator("h1").first.inner_text()
    assert "42" in frame.locator("body").inner_text()
    page.locator("iframe[title='ps1.ipynb']").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "submission-notebook.png"))
    feedback = page.frame_locator("iframe[title='ps1.html']")
    assert "Well done, sam" in feedback.locator("h2").inner_text()
    shot(page, "submission")

    page.goto(exchange.hub.service_url + "courses/phys101/audit/")
    assert "submitted" in page.inner_text("table")
    shot(page, "audit")
    context.close()


def test_the_hub_home_link_and_sign_out(browser, exchange):
    context, page = signed_in(browser, exchange, "gus")
    assert page.get_attribute("text=Back to JupyterHub", "href") == "/hub/home"
    page.click("text=Sign out")
    page.wait_for_url("**/logged-out/")
    assert "signed out" in page.inner_text("main")
    context.close()


def test_student_sees_own_work_on_a_phone_and_not_another_students(browser, exchange):
    phone = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}
    context, page = signed_in(browser, exchange, "sam", "courses/phys101/", **phone)
    assert "My submissions" in page.inner_text("main")
    assert "feedback released" in page.inner_text("main")
    # Nothing wider than the screen but the tables, which scroll inside their box.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    shot(page, "student-course-phone")

    own = page.goto(exchange.hub.service_url + f"submissions/{exchange.submissions['sam']}/")
    assert own.status == 200
    other = page.goto(exchange.hub.service_url + f"submissions/{exchange.submissions['tia']}/")
    assert other.status == 404
    shot(page, "student-other-404")
    assert page.goto(exchange.hub.service_url + "courses/phys101/audit/").status == 403
    shot(page, "student-audit-403")
    context.close()


def test_instructor_pages_fit_a_phone(browser, exchange):
    phone = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}
    context, page = signed_in(
        browser, exchange, "ines", "courses/phys101/assignments/ps1/", **phone
    )
    assert page.locator("table.students tbody tr").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "assignment-phone")
    page.goto(exchange.hub.service_url + "courses/phys101/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()


def test_spanish_browser_gets_the_spanish_pages(browser, exchange):
    context, page = signed_in(
        browser,
        exchange,
        "ines",
        "courses/phys101/",
        locale="es-ES",
        extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"},
    )
    assert page.locator("html").get_attribute("lang") == "es"
    main = page.inner_text("main")
    assert "Tareas" in main and "3 estudiantes" in main
    assert "Volver a JupyterHub" in page.inner_text("header")
    shot(page, "course-es")
    context.close()


def test_hub_admin_is_staff_and_opens_the_admin_site(browser, exchange):
    context, page = signed_in(browser, exchange, "ada", "admin/")
    assert page.url == exchange.hub.service_url + "admin/"
    assert page.locator("#site-name").count() == 1
    shot(page, "admin")
    context.close()
