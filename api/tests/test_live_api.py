"""Every endpoint over real HTTP against gunicorn on 127.0.0.1, started and stopped by the
test: files go up as multipart tar.gz, come down through signed URLs in parallel, and every
downloaded byte is checked against its hash."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness.live import LiveServer
from tests.harness.uploads import manifest_of, tar_gz

# The server brings its own SQLite database: once per suite is enough.
pytestmark = pytest.mark.sqlite_only

# Over FILE_UPLOAD_MAX_MEMORY_SIZE (2 MiB), so the upload is spooled to a temporary file.
BIG = os.urandom(3 * 1024 * 1024 + 17)
RELEASE = {
    "ps1/ps1.ipynb": b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    "ps1/data/big.bin": BIG,
    "ps1/data/empty.txt": b"",
}


@pytest.fixture(scope="module")
def server():
    with LiveServer(workers=2, threads=4) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server):
    return server.tokens(
        {"ada": True, **dict.fromkeys(("ines", "gus", "sam", "tia", "olga"), False)}
    )


class Client:
    """requests with a user's token and the API's base URL."""

    def __init__(self, server: LiveServer, token: str | None) -> None:
        self.base = server.api_url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"token {token}"

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base}/{path}", timeout=60, **kwargs)


def upload(files: dict[str, bytes], *, omit: tuple[str, ...] = (), **fields) -> dict:
    sent = {path: data for path, data in files.items() if path not in omit}
    return {
        "files": {
            "manifest": (None, json.dumps(manifest_of(files)), "application/json"),
            "archive": ("upload.tar.gz", tar_gz(sent), "application/gzip"),
        },
        "data": fields,
    }


def download_all(files: list[dict]) -> dict[str, bytes]:
    """Fetch every signed URL in parallel, without credentials, and check size and hash."""

    def get(entry: dict) -> tuple[str, bytes]:
        response = requests.get(entry["url"], timeout=60)
        assert response.status_code == 200, (entry["path"], response.text[:200])
        assert int(response.headers["Content-Length"]) == entry["size"]
        assert len(response.content) == entry["size"]
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
        return entry["path"], response.content

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(get, files))


def test_every_endpoint_over_http(server, tokens):
    ada, ines, gus, sam, tia, olga = (
        Client(server, tokens[name]) for name in ("ada", "ines", "gus", "sam", "tia", "olga")
    )
    anonymous = Client(server, None)

    # Who am I, and the errors of the service itself.
    response = anonymous("GET", "me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "token"
    assert response.json()["error"] == "not_authenticated"
    assert ines("GET", "me").json() == {"username": "ines", "is_staff": False, "courses": []}
    response = ines("GET", "no/such/thing")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert response.headers["Content-Type"] == "application/json"

    # Courses and rosters.
    response = ada(
        "POST",
        "courses",
        json={"course_id": "phys101", "title": "Physics", "instructors": ["ines"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["course_id"] == "phys101"
    assert ines("GET", "courses").json() == [
        {"course_id": "phys101", "title": "Physics", "role": "instructor"}
    ]
    assert ines("GET", "courses/phys101").json()["role"] == "instructor"
    assert olga("GET", "courses/phys101").status_code == 404
    assert ines("PUT", "courses/phys101/members/sam", json={"role": "student"}).status_code == 201
    assert ines("PUT", "courses/phys101/members/gus", json={"role": "grader"}).status_code == 201
    response = ines(
        "POST",
        "courses/phys101/roster",
        data="id,first_name,last_name,email\ntia,Tia,Tran,tia@example.edu\nsam,Sam,,\n",
        headers={"Content-Type": "text/csv"},
        params={"role": "student"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["tia"]
    members = {m["username"]: m for m in gus("GET", "courses/phys101/members").json()}
    assert members["tia"] == {
        "username": "tia",
        "role": "student",
        "first_name": "Tia",
        "last_name": "Tran",
        "email": "tia@example.edu",
        "lms_user_id": "",
    }
    assert ines("PUT", "courses/phys101/members/olga", json={"role": "student"}).status_code == 201
    assert ines("DELETE", "courses/phys101/members/olga").status_code == 204

    # Release, with a due date in nbgrader's format.
    form = upload(RELEASE, due_date="2030-01-01 12:00:00.000000 UTC")
    response = ines("POST", "courses/phys101/assignments/ps1/release", **form)
    assert response.status_code == 201, response.text
    released = response.json()
    assert released["due_date"] == "2030-01-01 12:00:00.000000 UTC"
    assert {f["path"] for f in released["files"]} == set(RELEASE)
    listed = sam("GET", "courses/phys101/assignments").json()
    assert [a["assignment_id"] for a in listed] == ["ps1"]
    assert "fetched_count" not in listed[0]
    detail = ines("GET", "courses/phys101/assignments/ps1").json()
    assert detail["file_count"] == 3 and detail["fetched_count"] == 0

    # Fetch: the manifest with signed URLs, every byte checked.
    fetched = sam("GET", "courses/phys101/assignments/ps1/release/files").json()
    assert download_all(fetched["files"]) == RELEASE
    assert ines("GET", "courses/phys101/assignments/ps1").json()["fetched_count"] == 1

    # Submit: the unchanged big file is not sent again.
    mine = {**RELEASE, "ps1/ps1.ipynb": b'{"cells": ["sam"]}'}
    form = upload(mine, omit=("ps1/data/big.bin", "ps1/data/empty.txt"))
    response = sam("POST", "courses/phys101/assignments/ps1/submissions", **form)
    assert response.status_code == 201, response.text
    first = response.json()
    response = sam(
        "POST", "courses/phys101/assignments/ps1/submissions", **upload(mine, omit=tuple(mine))
    )
    assert response.status_code == 201, response.text
    second = response.json()
    assert second["timestamp"] > first["timestamp"]
    assert second["timestamp"].endswith(" UTC") and second["late"] is False
    theirs = {"ps1/ps1.ipynb": b'{"cells": ["tia"]}'}
    assert (
        tia("POST", "courses/phys101/assignments/ps1/submissions", **upload(theirs)).status_code
        == 201
    )
    assert len(sam("GET", "courses/phys101/assignments/ps1/submissions").json()) == 2
    assert (
        tia("GET", "courses/phys101/assignments/ps1/submissions", params={"student": "sam"}).json()
        == []
    )
    latest = gus(
        "GET", "courses/phys101/assignments/ps1/submissions", params={"latest": "true"}
    ).json()
    assert [(s["student"], s["id"]) for s in latest] == [
        ("sam", second["id"]),
        ("tia", latest[1]["id"]),
    ]

    # Collect: files with URLs, every byte checked.
    collected = gus("POST", "courses/phys101/assignments/ps1/collect", json={"latest": True}).json()
    by_student = {s["student"]: s for s in collected}
    assert download_all(by_student["sam"]["files"]) == mine
    assert download_all(by_student["tia"]["files"]) == theirs
    one = sam("GET", f"submissions/{second['id']}").json()
    assert download_all(one["files"]) == mine
    assert tia("GET", f"submissions/{second['id']}").status_code == 404

    # The whole submission as one zip.
    response = ines("GET", f"submissions/{second['id']}/download")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        root = names[0].split("/")[0]
        assert root.startswith("phys101-ps1-sam-")
        assert {name[len(root) + 1 :]: archive.read(name) for name in names} == mine

    # Feedback: released by the grader, fetched by the student.
    notes = {"ps1/feedback.html": b"<p>well done</p>", "ps1/ps1.ipynb": mine["ps1/ps1.ipynb"]}
    response = gus(
        "POST", f"submissions/{second['id']}/feedback", **upload(notes, omit=("ps1/ps1.ipynb",))
    )
    assert response.status_code == 201, response.text
    assert (
        sam("GET", f"submissions/{second['id']}/feedback").json()["submission_id"] == second["id"]
    )
    mine_feedback = sam("GET", "courses/phys101/assignments/ps1/feedback").json()
    assert [f["timestamp"] for f in mine_feedback] == [second["timestamp"]]
    assert download_all(mine_feedback[0]["files"]) == notes
    assert (
        download_all(ines("GET", f"submissions/{second['id']}/feedback").json()["files"]) == notes
    )
    assert tia("GET", "courses/phys101/assignments/ps1/feedback").json() == []
    assert sam("GET", "courses/phys101/assignments/ps1/submissions").json()[1]["has_feedback"]

    # A broken signature is refused.
    bad = fetched["files"][0]["url"][:-3] + "xyz"
    assert requests.get(bad, timeout=30).status_code == 404

    # Re-release refused while in use, then forced; unrelease; delete the course.
    response = ines(
        "POST", "courses/phys101/assignments/ps1/release", **upload(RELEASE, omit=tuple(RELEASE))
    )
    assert (response.status_code, response.json()["error"]) == (409, "in_use")
    form = upload(RELEASE, omit=tuple(RELEASE), force="true")
    assert ines("POST", "courses/phys101/assignments/ps1/release", **form).status_code == 201
    assert (
        ines(
            "DELETE", "courses/phys101/assignments/ps1/release", params={"force": "true"}
        ).status_code
        == 204
    )
    assert sam("GET", "courses/phys101/assignments").json() == []
    assert ines("DELETE", "courses/phys101").status_code == 403
    assert ada("DELETE", "courses/phys101").status_code == 204
    assert ines("GET", "courses/phys101").status_code == 404


def test_schema_and_docs_page_work_offline(server):
    response = requests.get(f"{server.api_url}/schema/", params={"format": "json"}, timeout=30)
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions" in schema["paths"]
    page = requests.get(f"{server.api_url}/docs/", timeout=30)
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:]]
    local = [asset for asset in assets if "drf_spectacular_sidecar" in asset]
    assert local, assets
    for asset in local:
        assert asset.startswith("/"), asset  # served by the service, not a CDN
        assert requests.get(server.url + asset, timeout=30).status_code == 200


def test_oversized_upload_is_refused_with_413(tmp_path):
    with LiveServer(workers=1, threads=2, env={"EXCHANGE_MAX_BUNDLE_SIZE": "1000"}) as live:
        admin = Client(live, live.create_api_token("ada", staff=True))
        assert admin("POST", "courses", json={"course_id": "c1"}).status_code == 201
        form = upload({"a.bin": b"\0" * 5000})
        response = admin("POST", "courses/c1/assignments/a1/release", **form)
        assert (response.status_code, response.json()["error"]) == (413, "too_large")
        # A body announced over the limit (plus room for the form) is refused unread.
        files = {"manifest": (None, "[]"), "archive": ("a.tar.gz", b"\0" * (17 * 1024 * 1024))}
        response = admin("POST", "courses/c1/assignments/a1/release", files=files)
        assert (response.status_code, response.json()["error"]) == (413, "too_large")
        assert "bytes of files" in response.json()["detail"]
        assert admin("GET", "courses/c1/assignments").json() == []
