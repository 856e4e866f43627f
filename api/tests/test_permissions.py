"""The permission matrix: every endpoint x every kind of caller, the status each one gets.

Columns: anonymous, a signed-in non-member (olga), the student who owns the submission
(sam), another student of the course (tia), the grader (gus), the instructor (ines) and a
site admin who is not a member (ada). A non-member gets 404 exactly where a missing course
would give 404; another student gets 404 for sam's submission.
"""

from __future__ import annotations

import pytest

from courses import deadlines, regrades, services
from courses.models import (
    Assignment,
    Course,
    Extension,
    Feedback,
    Membership,
    NotebookScore,
    RegradeRequest,
    Submission,
)
from courses.timestamps import parse_timestamp
from tests.harness.uploads import make_upload, upload_form

ROLES = ["anonymous", "olga", "sam", "tia", "gus", "ines", "ada"]
C = "/api/v1/courses/phys101"
A = f"{C}/assignments/ps1"

NEW_RELEASE = {"ps1.ipynb": b'{"cells": ["v2"]}'}
NEW_SUBMISSION = {"ps1.ipynb": b'{"cells": ["mine"]}'}
NEW_FEEDBACK = {"feedback/ps1.html": b"<p>again</p>"}


def _feedback_batch() -> dict[str, object]:
    """The batch release's form for sam's first submission, as the plugin sends it."""
    import io
    import json

    from nbgrader_exchange.feedback_batch import FeedbackRelease, distinct_files, manifest_of
    from nbgrader_exchange.files import entry_from_bytes
    from nbgrader_exchange.transfer import write_archive

    first = Submission.objects.filter(student__username="sam").order_by("pk").first()
    assert first is not None
    batch = [FeedbackRelease("sam", first.pk, [entry_from_bytes("ps1.html", b"<p>many</p>")])]
    archive = io.BytesIO()
    write_archive(distinct_files(batch), archive)
    return {"manifest": json.dumps(manifest_of(batch)), "archive": io.BytesIO(archive.getvalue())}


# name: (method, path, body, format, expected statuses in the order of ROLES)
MATRIX = {
    "me": ("get", "/api/v1/me", None, None, [401, 200, 200, 200, 200, 200, 200]),
    "list courses": ("get", "/api/v1/courses", None, None, [401, 200, 200, 200, 200, 200, 200]),
    "create course": (
        "post",
        "/api/v1/courses",
        {"course_id": "chem1"},
        "json",
        [401, 403, 403, 403, 403, 403, 201],
    ),
    "course": ("get", C, None, None, [401, 404, 200, 200, 200, 200, 200]),
    "delete course": ("delete", C, None, None, [401, 404, 403, 403, 403, 403, 204]),
    "members": ("get", f"{C}/members", None, None, [401, 404, 403, 403, 200, 200, 200]),
    "add member": (
        "put",
        f"{C}/members/newbie",
        {"role": "student"},
        "json",
        [401, 404, 403, 403, 403, 201, 201],
    ),
    "change member": (
        "put",
        f"{C}/members/tia",
        {"role": "grader"},
        "json",
        [401, 404, 403, 403, 403, 200, 200],
    ),
    "remove member": (
        "delete",
        f"{C}/members/tia",
        None,
        None,
        [401, 404, 403, 403, 403, 204, 204],
    ),
    "roster": (
        "post",
        f"{C}/roster",
        {"members": [{"username": "zed"}]},
        "json",
        [401, 404, 403, 403, 403, 200, 200],
    ),
    "assignments": ("get", f"{C}/assignments", None, None, [401, 404, 200, 200, 200, 200, 200]),
    "assignment": ("get", A, None, None, [401, 404, 200, 200, 200, 200, 200]),
    "unreleased assignment": (
        "get",
        f"{C}/assignments/ps2",
        None,
        None,
        [401, 404, 404, 404, 200, 200, 200],
    ),
    "release": (
        "post",
        f"{A}/release",
        lambda: {**upload_form(NEW_RELEASE), "force": "true"},
        "multipart",
        [401, 404, 403, 403, 403, 201, 201],
    ),
    "unrelease": (
        "delete",
        f"{A}/release?force=true",
        None,
        None,
        [401, 404, 403, 403, 403, 204, 204],
    ),
    "fetch": ("get", f"{A}/release/files", None, None, [401, 404, 200, 200, 200, 200, 200]),
    "submit": (
        "post",
        f"{A}/submissions",
        lambda: upload_form(NEW_SUBMISSION),
        "multipart",
        [401, 404, 201, 201, 403, 403, 403],
    ),
    "list submissions": (
        "get",
        f"{A}/submissions",
        None,
        None,
        [401, 404, 200, 200, 200, 200, 200],
    ),
    "collect": ("post", f"{A}/collect", {}, "json", [401, 404, 403, 403, 200, 200, 200]),
    "change deadlines": (
        "patch",
        A,
        {"due_date": "2030-01-01 00:00:00 UTC", "accept_until": "2030-01-02 00:00:00 UTC"},
        "json",
        [401, 404, 403, 403, 403, 200, 200],
    ),
    "extensions": ("get", f"{A}/extensions", None, None, [401, 404, 403, 403, 200, 200, 200]),
    "grant extension": (
        "put",
        f"{A}/extensions/tia",
        {"due_date": "2030-01-01 00:00:00 UTC"},
        "json",
        [401, 404, 403, 403, 403, 201, 201],
    ),
    "revoke extension": (
        "delete",
        f"{A}/extensions/sam",
        None,
        None,
        [401, 404, 403, 403, 403, 204, 204],
    ),
    "fetch feedback": ("get", f"{A}/feedback", None, None, [401, 404, 200, 200, 403, 403, 403]),
    "submission": (
        "get",
        "/api/v1/submissions/{sid}",
        None,
        None,
        [401, 404, 200, 404, 200, 200, 200],
    ),
    "remove submission": (
        "delete",
        "/api/v1/submissions/{sid}",
        None,
        None,
        [401, 404, 403, 404, 403, 204, 204],
    ),
    "download submission": (
        "get",
        "/api/v1/submissions/{sid}/download",
        None,
        None,
        [401, 404, 200, 404, 200, 200, 200],
    ),
    "release feedback": (
        "post",
        "/api/v1/submissions/{sid}/feedback",
        lambda: upload_form(NEW_FEEDBACK),
        "multipart",
        [401, 404, 403, 404, 201, 201, 201],
    ),
    "release feedback with scores": (
        "post",
        "/api/v1/submissions/{sid}/feedback",
        lambda: {
            **upload_form(NEW_FEEDBACK),
            "scores": '[{"notebook": "ps1", "score": 3, "max_score": 5}]',
        },
        "multipart",
        [401, 404, 403, 404, 201, 201, 201],
    ),
    "release feedback to many": (
        "post",
        f"{A}/feedback",
        _feedback_batch,
        "multipart",
        [401, 404, 403, 403, 201, 201, 201],
    ),
    "scores": ("get", f"{A}/scores", None, None, [401, 404, 403, 403, 200, 200, 200]),
    "export grades": ("get", f"{C}/grades", None, None, [401, 404, 403, 403, 403, 200, 200]),
    "submission feedback": (
        "get",
        "/api/v1/submissions/{sid}/feedback",
        None,
        None,
        [401, 404, 200, 404, 200, 200, 200],
    ),
    "course regrades": ("get", f"{C}/regrades", None, None, [401, 404, 200, 200, 200, 200, 200]),
    "assignment regrades": (
        "get",
        f"{A}/regrades?status=open",
        None,
        None,
        [401, 404, 200, 200, 200, 200, 200],
    ),
    "submission regrades": (
        "get",
        "/api/v1/submissions/{sid}/regrades",
        None,
        None,
        [401, 404, 200, 404, 200, 200, 200],
    ),
    "ask for a regrade": (
        "post",
        "/api/v1/submissions/{sid}/regrades",
        {"message": "Question 2 deserves another look."},
        "json",
        [401, 404, 201, 404, 403, 403, 403],
    ),
    "regrade": ("get", "/api/v1/regrades/{rid}", None, None, [401, 404, 200, 404, 200, 200, 200]),
    "answer regrade": (
        "post",
        "/api/v1/regrades/{rid}/answer",
        {"status": "accepted", "answer": "Now 5 of 5."},
        "json",
        [401, 404, 403, 404, 200, 200, 200],
    ),
    "withdraw regrade": (
        "post",
        "/api/v1/regrades/{rid}/withdraw",
        None,
        None,
        [401, 404, 200, 404, 403, 403, 403],
    ),
    "file": ("get", "{file_url}", None, None, [200, 200, 200, 200, 200, 200, 200]),
    "schema": ("get", "/api/v1/schema/", None, None, [200, 200, 200, 200, 200, 200, 200]),
    "docs": ("get", "/api/v1/docs/", None, None, [200, 200, 200, 200, 200, 200, 200]),
}

CELLS = [
    pytest.param(name, role, statuses[index], id=f"{name}-{role}")
    for name, (_, _, _, _, statuses) in MATRIX.items()
    for index, role in enumerate(ROLES)
]


@pytest.fixture
def world(people, site_admin, released, unreleased, submission, feedback, client_for):
    users = {**people, "ada": site_admin, "anonymous": None}
    fetched = client_for(people["ines"]).get(f"{A}/release/files").json()
    deadlines.grant_extension(
        actor=None,
        assignment=released,
        username="sam",
        due_date=parse_timestamp("2031-01-01 00:00:00 UTC"),
    )
    # A second returned submission of sam's, with an open regrade request to answer or
    # withdraw; the first has none, so sam may ask on it.
    second = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(NEW_SUBMISSION)
    )
    services.release_feedback(
        actor=people["gus"], submission=second, upload=make_upload(NEW_FEEDBACK)
    )
    regrade = regrades.request_regrade(student=people["sam"], submission=second, message="q1")
    return {
        "users": users,
        "sid": submission.pk,
        "rid": regrade.pk,
        "file_url": fetched["files"][0]["url"],
    }


def _counts() -> tuple[object, ...]:
    return (
        Course.objects.count(),
        Membership.objects.count(),
        Assignment.objects.filter(release__isnull=False).count(),
        Submission.objects.count(),
        Feedback.objects.count(),
        Extension.objects.count(),
        NotebookScore.objects.count(),
        *RegradeRequest.objects.order_by("pk").values_list("status", "answer"),
        *Assignment.objects.order_by("pk").values_list("due_date", "accept_until"),
    )


@pytest.mark.parametrize(("endpoint", "role", "expected"), CELLS)
def test_permission_matrix(world, client_for, endpoint, role, expected):
    method, path, body, fmt, _ = MATRIX[endpoint]
    url = path.format(sid=world["sid"], rid=world["rid"], file_url=world["file_url"])
    kwargs = {}
    if body is not None:
        kwargs["data"] = body() if callable(body) else body
        kwargs["format"] = fmt
    before = _counts()
    response = getattr(client_for(world["users"][role]), method)(url, **kwargs)
    assert response.status_code == expected, (
        response.content[:300] if not response.streaming else response.status_code
    )
    if expected >= 400:
        assert response.json()["error"]
        assert response.json()["detail"]
        assert _counts() == before, "a refused request changed something"
    if expected == 401:
        assert response["WWW-Authenticate"] == "token"


def test_matrix_covers_every_api_route():
    from django.urls import get_resolver

    api = get_resolver().url_patterns
    routes = set()
    for pattern in api:
        if str(pattern.pattern) == "api/v1/":
            routes = {str(p.pattern) for p in pattern.url_patterns}
    covered = {
        "me",
        "courses",
        "courses/<str:course_id>",
        "courses/<str:course_id>/members",
        "courses/<str:course_id>/members/<str:username>",
        "courses/<str:course_id>/roster",
        "courses/<str:course_id>/grades",
        "courses/<str:course_id>/assignments",
        "courses/<str:course_id>/assignments/<str:assignment_id>",
        "courses/<str:course_id>/assignments/<str:assignment_id>/release",
        "courses/<str:course_id>/assignments/<str:assignment_id>/release/files",
        "courses/<str:course_id>/assignments/<str:assignment_id>/submissions",
        "courses/<str:course_id>/assignments/<str:assignment_id>/collect",
        "courses/<str:course_id>/assignments/<str:assignment_id>/extensions",
        "courses/<str:course_id>/assignments/<str:assignment_id>/extensions/<str:username>",
        "courses/<str:course_id>/assignments/<str:assignment_id>/feedback",
        "courses/<str:course_id>/assignments/<str:assignment_id>/scores",
        "submissions/<int:submission_id>",
        "submissions/<int:submission_id>/download",
        "submissions/<int:submission_id>/feedback",
        "courses/<str:course_id>/regrades",
        "courses/<str:course_id>/assignments/<str:assignment_id>/regrades",
        "submissions/<int:submission_id>/regrades",
        "regrades/<int:regrade_id>",
        "regrades/<int:regrade_id>/answer",
        "regrades/<int:regrade_id>/withdraw",
        "files/<str:signed>",
        "schema/",
        "docs/",
    }
    assert routes == covered
