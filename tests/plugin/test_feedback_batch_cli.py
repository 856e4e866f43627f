"""``nbgrader release_feedback`` to several students in batches, through the real CLI.

Five students hand in ps1 with a ``submission_secret.txt`` (as nbgrader 0.9.3+ does); the
instructor collects, autogrades, generates feedback and releases it with two students per
request. One student's local secret does not match: only that student fails, with today's
sentence. The same release against a server without the batch endpoint (a proxy answering
405, as an older server does, and listing no secrets) goes one student at a time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.jsonserver import JsonServer, Request
from tests.harness.uploads import multipart_files

from .support import RIGHT, Person, write_source

COURSE = "fb101"
IVY = "fb-ivy"
STUDENTS = [f"fb-s{i}" for i in range(1, 6)]
TAMPERED = STUDENTS[-1]
BATCH = "c.Exchange.feedback_batch_students = 2\n"


def _hand_in(service: Any, token: str, student: str, release: Path) -> dict[str, Any]:
    notebook = (release / "ps1.ipynb").read_text().replace("raise NotImplementedError()", RIGHT)
    files = {
        "ps1.ipynb": notebook.encode(),
        "data.csv": (release / "data.csv").read_bytes(),
        "submission_secret.txt": f"secret of {student}\n".encode(),
    }
    response = service.api(
        "POST",
        f"courses/{COURSE}/assignments/ps1/submissions",
        token,
        files=multipart_files(files),
    )
    assert response.status_code == 201, response.text
    return response.json()


def _older_server(upstream: str) -> JsonServer:
    """A server without the batch endpoint: 405 for it, and no secrets in the listing."""

    def respond(request: Request) -> tuple[int, bytes, dict[str, str]]:
        if request.method == "POST" and request.route.endswith("/assignments/ps1/feedback"):
            return 405, b'{"error": "method_not_allowed", "detail": "Method not allowed."}', {}
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        answer = requests.request(
            request.method, upstream + request.path, data=request.body, headers=headers, timeout=60
        )
        body = answer.content
        if request.method == "GET" and request.route.endswith("/submissions"):
            rows = answer.json()
            for row in rows:
                del row["submission_secret_sha256"]
            body = json.dumps(rows).encode()
        return answer.status_code, body, {"Content-Type": answer.headers["Content-Type"]}

    return JsonServer(respond)


FORWARDED = {"authorization", "content-type", "accept"}


@pytest.fixture(scope="module")
def run(service, tmp_path_factory) -> dict[str, Any]:
    tokens = service.tokens(IVY, *STUDENTS)
    service.create_course(COURSE, IVY, STUDENTS)
    root = tmp_path_factory.mktemp("feedback-batch")
    ivy = Person(IVY, root, service.url, tokens[IVY], course_id=COURSE, extra_config=BATCH)
    write_source(ivy.work)
    ivy.nbgrader("generate_assignment", "ps1")
    ivy.nbgrader("release_assignment", "ps1")
    r: dict[str, Any] = {
        "submitted": {
            s: _hand_in(service, tokens[s], s, ivy.work / "release" / "ps1") for s in STUDENTS
        }
    }
    ivy.nbgrader("collect", "ps1")
    ivy.nbgrader("autograde", "ps1")
    ivy.nbgrader("generate_feedback", "ps1")
    (ivy.work / "feedback" / TAMPERED / "ps1" / "submission_secret.txt").write_text("forged\n")

    log_before = len(service.server.log())
    r["release"] = ivy.nbgrader("release_feedback", "ps1", check=False)
    r["requests"] = re.findall(r'"(GET|POST) (/api/v1/\S+) HTTP', service.server.log()[log_before:])
    r["feedback"] = {
        s: service.api("GET", f"courses/{COURSE}/assignments/ps1/feedback", tokens[s]).json()
        for s in STUDENTS
    }

    with _older_server(service.url) as older:
        old_ivy = Person(IVY, root, older.url, tokens[IVY], course_id=COURSE, extra_config=BATCH)
        r["release to older"] = old_ivy.nbgrader("release_feedback", "ps1", check=False)
        r["older requests"] = [(q.method, q.route) for q in older.requests]
    r["feedback again"] = {
        s: service.api("GET", f"courses/{COURSE}/assignments/ps1/feedback", tokens[s]).json()
        for s in STUDENTS
    }
    return r


def test_feedback_goes_in_batches_without_a_read_per_student(run):
    released = [s for s in STUDENTS if s != TAMPERED]
    # The listing, then two requests of two students each.
    assert run["requests"] == [
        ("GET", f"/api/v1/courses/{COURSE}/assignments/ps1/submissions"),
        ("POST", f"/api/v1/courses/{COURSE}/assignments/ps1/feedback"),
        ("POST", f"/api/v1/courses/{COURSE}/assignments/ps1/feedback"),
    ]
    for student in released:
        [feedback] = run["feedback"][student]
        assert feedback["submission_id"] == run["submitted"][student]["id"]
        assert [f["path"] for f in feedback["files"]] == ["ps1.html"]
        assert feedback["score"] == 1.0
        assert f"Feedback released to: {student} (submission {feedback['submission_id']})" in (
            run["release"].output
        )
        assert f"Releasing feedback for student '{student}'" in run["release"].output


def test_a_student_whose_secret_does_not_match_fails_alone(run):
    assert not run["release"].ok
    assert run["feedback"][TAMPERED] == []
    assert "The submission_secret.txt in" in run["release"].output
    assert f"Feedback for {TAMPERED} was not released" in run["release"].output


def test_an_older_server_gets_one_upload_per_student(run):
    released = [s for s in STUDENTS if s != TAMPERED]
    ids = [run["submitted"][s]["id"] for s in STUDENTS]
    requests_sent = run["older requests"]
    assert requests_sent[0] == ("GET", f"/api/v1/courses/{COURSE}/assignments/ps1/submissions")
    # Without secrets in the listing, each submission's files are read to check them.
    assert [q for q in requests_sent if q[0] == "GET"][1:] == [
        ("GET", f"/api/v1/submissions/{pk}") for pk in ids
    ]
    assert ("POST", f"/api/v1/courses/{COURSE}/assignments/ps1/feedback") in requests_sent
    assert [
        q for q in requests_sent if q[1].startswith("/api/v1/submissions/") and q[0] == "POST"
    ] == [("POST", f"/api/v1/submissions/{run['submitted'][s]['id']}/feedback") for s in released]
    output = run["release to older"].output
    assert f"Feedback for {TAMPERED} was not released" in output
    for student in released:
        assert f"Feedback released to: {student}" in output
        [feedback] = run["feedback again"][student]
        assert feedback["released_at"] > run["feedback"][student][0]["released_at"]
