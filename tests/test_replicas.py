"""Several replicas: two gunicorn servers on different ports, one PostgreSQL, one S3 bucket
(SeaweedFS) and the database cache, drive one course; file bytes go from the object store to
the client through presigned URLs and never through either server."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
import requests

from tests.harness.live import LiveServer, create_course, session
from tests.harness.uploads import multipart_files

pytestmark = pytest.mark.sqlite_only  # brings its own PostgreSQL; once per suite is enough

RELEASE = {"ps1.ipynb": b'{"cells": []}', "data/big.bin": os.urandom(2_000_000)}
REQUEST_LINE = re.compile(r'"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP')


def requests_seen(server: LiveServer) -> list[str]:
    return [match.group(2) for match in REQUEST_LINE.finditer(server.log())]


def requests_logged(server: LiveServer, last: str) -> list[str]:
    """The server's requests once `last` is among them: gunicorn writes a request's access
    line after the answer has gone out, so a client can be ahead of the log."""
    deadline = time.monotonic() + 30
    while last not in (seen := requests_seen(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def download(files: list[dict], store_endpoint: str) -> dict[str, bytes]:
    """What the plugin does: fetch every URL and check each hash."""
    got = {}
    for entry in files:
        assert urlparse(entry["url"]).netloc == urlparse(store_endpoint).netloc, entry["url"]
        response = requests.get(entry["url"], timeout=60)
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
        got[entry["path"]] = response.content
    return got


@pytest.fixture(scope="module")
def replicas(postgres_server, seaweedfs, tmp_path_factory):
    """Two servers on one database and bucket, shared by this module's tests (each test
    uses a course of its own)."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    database = postgres_server.create_database("replicas")
    bucket = seaweedfs.create_bucket(f"replicas-{os.getpid()}")
    shared = {
        **seaweedfs.env(bucket),
        "EXCHANGE_CACHE_URL": "db://",
        "SECRET_KEY": "one-secret-for-every-replica",
    }
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    servers = [
        LiveServer(database_url=database, env=shared, data_dir=tmp_path / name, workers=1)
        for name in ("a", "b")
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_replicas_drive_one_course_and_bytes_bypass_both(replicas, seaweedfs):
    a, b = replicas
    assert a.port != b.port
    tokens = a.tokens({"ada": True, "ines": False, "sam": False, "tia": False})
    ines, sam, tia = (session(tokens[name]) for name in ("ines", "sam", "tia"))
    create_course(
        a,
        code="phys101",
        admin_token=tokens["ada"],
        instructor="ines",
        instructor_token=tokens["ines"],
        students=["sam", "tia"],
    )
    course_b = f"{b.api_url}/courses/phys101"
    course_a = f"{a.api_url}/courses/phys101"
    # The roster written through A is what B answers.
    members = ines.get(f"{course_b}/members", timeout=30).json()
    assert {m["username"] for m in members} == {"ines", "sam", "tia"}

    response = ines.post(
        f"{course_a}/assignments/ps1/release", files=multipart_files(RELEASE), timeout=120
    )
    assert response.status_code == 201, response.text

    release = "/api/v1/courses/phys101/assignments/ps1/release"
    before = {
        a.port: requests_logged(a, release),
        b.port: requests_logged(b, "/api/v1/courses/phys101/members"),
    }
    fetched = sam.get(f"{course_b}/assignments/ps1/release/files", timeout=60)
    assert fetched.status_code == 200, fetched.text
    assert download(fetched.json()["files"], seaweedfs.endpoint) == RELEASE
    # The bytes came from the object store: B answered the manifest only, A nothing.
    after = {
        a.port: requests_seen(a),
        b.port: requests_logged(b, f"{release}/files"),
    }
    assert after[a.port] == before[a.port]
    assert after[b.port][len(before[b.port]) :] == [f"{release}/files"]

    mine = {"ps1.ipynb": b'{"cells": ["sam"]}', "data/big.bin": RELEASE["data/big.bin"]}
    response = sam.post(
        f"{course_a}/assignments/ps1/submissions",
        files=multipart_files(mine, omit=["data/big.bin"]),
        timeout=120,
    )
    assert response.status_code == 201, response.text
    response = tia.post(
        f"{course_b}/assignments/ps1/submissions",
        files=multipart_files({"ps1.ipynb": b"tia"}),
        timeout=120,
    )
    assert response.status_code == 201, response.text

    collected = ines.post(f"{course_b}/assignments/ps1/collect", json={}, timeout=60)
    assert collected.status_code == 200, collected.text
    by_student = {s["student"]: s for s in collected.json()}
    assert set(by_student) == {"sam", "tia"}
    assert download(by_student["sam"]["files"], seaweedfs.endpoint) == mine

    submission_id = by_student["sam"]["id"]
    feedback = {"ps1.html": b"<p>well done</p>"}
    response = ines.post(
        f"{a.api_url}/submissions/{submission_id}/feedback",
        files=multipart_files(feedback),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    got = sam.get(f"{course_b}/assignments/ps1/feedback", timeout=60)
    assert got.status_code == 200, got.text
    (only,) = got.json()
    assert download(only["files"], seaweedfs.endpoint) == feedback

    # No request of either server ever carried file bytes out.
    for server in replicas:
        assert not [path for path in requests_seen(server) if "/files/" in path]
    # The storage checks agree from either replica's point of view.
    assert "0 missing, 0 damaged" in b.manage("verify_storage").stdout


# How long the instructor re-releases while students read and submit; the suite's figure is
# enough to have caught the race every time before the fix (EXCHANGE_RACE_SECONDS for more).
RACE_SECONDS = float(os.environ.get("EXCHANGE_RACE_SECONDS", "20"))


def test_forced_rereleases_while_students_fetch_and_submit_never_answer_500(replicas):
    """An instructor re-releases (forced) and unreleases through both replicas, as fast as
    they answer, while six students read the assignment, fetch it, download a file and
    submit through both. Every answer is a success or a clean 4xx (not released yet), never a
    500: each request sees one assignment with its own release, and a replaced release stays
    readable until gc_blobs."""
    a, b = replicas
    students = [f"racer{i}" for i in range(6)]
    tokens = a.tokens({"ada": True, "rita": False, **dict.fromkeys(students, False)})
    create_course(
        a,
        code="race101",
        admin_token=tokens["ada"],
        instructor="rita",
        instructor_token=tokens["rita"],
        students=students,
    )
    rita = session(tokens["rita"])
    # A new connection per request: each client alternates between the replicas, and a
    # kept-alive connection that a server closed while idle would fail on the client's side.
    rita.headers["Connection"] = "close"

    def assignment(server: LiveServer) -> str:
        return f"{server.api_url}/courses/race101/assignments/ps1"

    def release(server: LiveServer, version: int) -> requests.Response:
        files = {"ps1.ipynb": b'{"version": %d}' % version, "data.csv": b"x\n" * (version + 1)}
        form = multipart_files(files)
        return rita.post(
            f"{assignment(server)}/release", files=form, data={"force": "true"}, timeout=60
        )

    assert release(a, 0).status_code == 201
    seen: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def note(kind: str, response: requests.Response) -> None:
        with lock:
            seen[kind, response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{kind} {response.status_code}: {response.text[:300]}")

    def instructor() -> None:
        version = 0
        while not stop.is_set():
            version += 1
            server = replicas[version % 2]
            if version % 4 == 0:
                note(
                    "unrelease",
                    rita.delete(
                        f"{assignment(server)}/release", params={"force": "true"}, timeout=60
                    ),
                )
            note("release", release(server, version))

    def student(name: str, offset: int) -> None:
        http = session(tokens[name])
        http.headers["Connection"] = "close"
        turn = 0
        while not stop.is_set():
            turn += 1
            server = replicas[(turn + offset) % 2]
            # What the plugin's submit reads first, then a fetch, a download and a submit.
            note("detail", http.get(assignment(server), timeout=60))
            fetched = http.get(f"{assignment(server)}/release/files", timeout=60)
            note("fetch", fetched)
            if fetched.status_code == 200 and turn % 5 == 0:
                entry = fetched.json()["files"][0]
                got = requests.get(entry["url"], timeout=60)
                note("download", got)
                if hashlib.sha256(got.content).hexdigest() != entry["sha256"]:
                    with lock:
                        failures.append(f"download of {entry['path']} differs from its hash")
            if turn % 3 == 0:
                form = multipart_files({"ps1.ipynb": f"{name} {turn}".encode()})
                note(
                    "submit",
                    http.post(f"{assignment(server)}/submissions", files=form, timeout=60),
                )

    def reporting(work: Callable[..., None], *args: object) -> Callable[[], None]:
        """Run a client loop; an exception (no answer at all) is a failure too."""

        def run() -> None:
            try:
                work(*args)
            except Exception as exc:  # reported by the assertion below
                with lock:
                    failures.append(f"{work.__name__}{args}: {exc!r}")

        return run

    threads = [threading.Thread(target=reporting(instructor))] + [
        threading.Thread(target=reporting(student, name, index))
        for index, name in enumerate(students)
    ]
    # Not a vacuous pass: each kind of request succeeds several times (on a slow machine the
    # race runs on past RACE_SECONDS until it has, for at most four times as long).
    wanted = [
        ("release", 201),
        ("unrelease", 204),
        ("detail", 200),
        ("fetch", 200),
        ("download", 200),
        ("submit", 201),
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < RACE_SECONDS * 4 and not failures:
        time.sleep(0.5)
        with lock:
            enough = all(seen[key] >= 3 for key in wanted)
        if enough and time.monotonic() - started >= RACE_SECONDS:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}; all: {dict(seen)}"
    assert all(seen[key] >= 3 for key in wanted), dict(seen)
    assert {status for (_, status) in seen} <= {200, 201, 204, 404}, dict(seen)
    assert "0 missing, 0 damaged" in b.manage("verify_storage").stdout
