"""A gunicorn worker on the embedded default (SQLite, local files) loads no module it does not
use: after serving what students and instructors do (a release and a submission uploaded, a
file list read, files downloaded through signed URLs, an error answered), neither PostgreSQL's
driver, nor boto3, nor drf-spectacular's generator (with DRF's and Django's test modules and
jinja2), nor requests (only a stand-in: ``exchange_site/lean.py``), PyYAML or nh3 is in its
``sys.modules``. Each of them is megabytes in every worker (bench/RESULTS.md, "A small
server" and "Idle RSS after serving requests"). The OpenAPI schema, which does load the
generator, still carries every view's annotations, and its YAML form loads PyYAML. Once
idle, the worker gives its freed heap back (``exchange_site/memory.py``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from exchange_site import memory
from tests.harness.live import LiveServer

pytestmark = pytest.mark.sqlite_only

# Modules a worker on SQLite and local files must not load to serve the API.
NOT_LOADED = [
    "psycopg",
    "django.contrib.postgres.fields",
    "boto3",
    "botocore",
    "storages.backends.s3",
    "drf_spectacular.plumbing",
    "drf_spectacular.openapi",
    "drf_spectacular.views",
    "jinja2",
    "django.test",
    "rest_framework.test",
    "nbconvert",
    "nbformat",
    "nbgrader",
    "requests",
    "urllib3",
    "charset_normalizer",
    "idna",
    "yaml",
    "nh3",
]

# A gunicorn config (given to the server as GUNICORN_CMD_ARGS) whose hooks write the
# worker's loaded modules (a deferred module's stand-in is not loaded) once it has loaded
# the application (``<record>.boot``), and after each request its path, its modules and
# how often it trimmed its heap (whole, by a rename).
HOOK = """
import json, os, sys

def loaded_modules():
    return sorted(
        name for name, module in list(sys.modules.items())
        if module and type(module).__name__ != "Deferred"
    )

def post_worker_init(worker):
    with open({path!r} + ".boot.part", "w") as out:
        json.dump(loaded_modules(), out)
    os.replace({path!r} + ".boot.part", {path!r} + ".boot")

def post_request(worker, req, environ, resp):
    with open({path!r} + ".part", "w") as out:
        trimmer = getattr(sys.modules.get("exchange_site.memory"), "_trimmer", None)
        trims = trimmer.trims if trimmer else 0
        json.dump({{"path": req.path, "modules": loaded_modules(), "trims": trims}}, out)
    os.replace({path!r} + ".part", {path!r})
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """One gunicorn worker (2 threads) that records its modules; the path of the record."""
    root = tmp_path_factory.mktemp("lean")
    record = root / "modules.json"
    (root / "hook.py").write_text(HOOK.format(path=str(record)))
    env = {"GUNICORN_CMD_ARGS": f"--config {root / 'hook.py'}"}
    with LiveServer(workers=1, threads=2, env=env) as server:
        yield server, record


def recorded(record: Path, *, after: str) -> dict:
    """The worker's record once it has recorded its request for ``after`` (the hook runs
    just after the answer is sent)."""
    deadline = time.monotonic() + 30
    while True:
        written = json.loads(record.read_text())
        if written["path"] == after or time.monotonic() > deadline:
            assert written["path"] == after
            return written
        time.sleep(0.05)


def loaded(record: Path, *, after: str) -> set[str]:
    """The worker's modules once it has recorded its request for ``after``."""
    return set(recorded(record, after=after)["modules"])


def test_a_worker_serving_uploads_and_downloads_loads_no_unused_module(worker, tmp_path):
    from nbgrader_exchange.client import ExchangeClient
    from nbgrader_exchange.files import entry_from_bytes
    from tests.harness import live as live_setup

    server, record = worker
    tokens = server.tokens({"ada": True, "ines": False, "sam": False})
    live_setup.create_course(
        server,
        code="c1",
        admin_token=tokens["ada"],
        instructor="ines",
        instructor_token=tokens["ines"],
        students=["sam"],
    )
    release = {"ps1.ipynb": b'{"cells": []}', "data/table.csv": b"a,b\n1,2\n" * 1000}
    assignment = "courses/c1/assignments/ps1"
    with ExchangeClient(server.url, tokens["ines"]) as instructor:
        instructor.upload_bundle(
            f"{assignment}/release",
            [entry_from_bytes(path, data) for path, data in release.items()],
            what="release",
        )
    with ExchangeClient(server.url, tokens["sam"]) as student:
        files = student.get(f"{assignment}/release/files", what="fetch")["files"]
        student.download_bundle(files, tmp_path / "ps1", what="fetch")
        student.upload_bundle(
            f"{assignment}/submissions",
            [entry_from_bytes("ps1.ipynb", b'{"cells": [1]}')],
            what="submit",
        )
    missing = live_setup.session(tokens["sam"]).get(f"{server.api_url}/courses/nope", timeout=30)
    assert missing.status_code == 404
    assert {p: (tmp_path / "ps1" / p).read_bytes() for p in release} == release

    modules = loaded(record, after="/api/v1/courses/nope")
    assert "api.views.assignments" in modules  # the record is the worker's, after requests
    assert sorted(name for name in NOT_LOADED if name in modules) == []


def test_a_worker_imports_the_views_before_its_first_request(worker):
    # Django would import them on the worker's first request, 0.2-0.3 s of its CPU: the
    # first release or submit after a start or a restart was that much slower.
    _, record = worker
    at_boot = set(json.loads(record.with_name(record.name + ".boot").read_text()))
    assert {"api.views.assignments", "api.views.uploads", "web.views"} <= at_boot


def test_the_schema_still_carries_every_views_annotations(worker):
    import requests

    server, record = worker
    response = requests.get(f"{server.api_url}/schema/", params={"format": "json"}, timeout=60)
    assert response.status_code == 200
    operations = [
        (method, path, operation)
        for path, methods in response.json()["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) > 30
    # Every operation's summary comes from its view's annotation (none without one).
    assert [(m, p) for m, p, operation in operations if not operation.get("summary")] == []
    download = response.json()["paths"]["/api/v1/files/{signed}"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    assert sorted(download["responses"]) == ["200", "403", "404"]
    # Generating it loaded drf-spectacular's generator: the record shows what a worker loads.
    assert "drf_spectacular.plumbing" in loaded(record, after="/api/v1/schema/")
    assert requests.get(f"{server.api_url}/docs/", timeout=60).status_code == 200
    # The YAML schema loads the deferred PyYAML: the same operations, as YAML.
    as_yaml = requests.get(f"{server.api_url}/schema/", timeout=60)
    assert as_yaml.status_code == 200
    assert as_yaml.text.startswith("openapi: 3")
    assert "/api/v1/files/{signed}:" in as_yaml.text
    assert "yaml" in loaded(record, after="/api/v1/schema/")


def test_an_idle_worker_trims_its_heap(worker):
    import requests

    server, record = worker
    assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200
    before = recorded(record, after="/healthz")["trims"]
    time.sleep(memory.QUIET + 1.5)  # quiet: the worker trims once
    # Another path than the first: the record of this request, not the previous one's.
    assert requests.get(f"{server.api_url}/courses/quiet", timeout=30).status_code in (401, 404)
    assert recorded(record, after="/api/v1/courses/quiet")["trims"] > before


def test_skip_postgres_leaves_postgresql_and_loaded_modules_alone():
    from exchange_site import lean

    postgresql = {"default": {"ENGINE": "django.db.backends.postgresql"}}
    sqlite = {"default": {"ENGINE": "django.db.backends.sqlite3"}}
    saved = sys.modules.pop(lean.POSTGRES_ONLY, None)
    try:
        assert lean.skip_postgres(postgresql) is False
        assert lean.POSTGRES_ONLY not in sys.modules
        assert lean.skip_postgres(sqlite) is True
        with pytest.raises(ImportError):
            __import__(lean.POSTGRES_ONLY)
        assert lean.skip_postgres(sqlite) is False  # marked already: nothing more to do
        assert lean.skip_postgres() is False  # this process's settings: nothing more either
    finally:
        sys.modules.pop(lean.POSTGRES_ONLY, None)
        if saved is not None:
            sys.modules[lean.POSTGRES_ONLY] = saved


S3_HOOK = """
import json, os, sys

def post_request(worker, req, environ, resp):
    backend = sys.modules.get("courses.s3_backend")
    with open({path!r} + ".part", "w") as out:
        json.dump({{"path": req.path, "sessions": len(backend._SESSIONS) if backend else 0}}, out)
    os.replace({path!r} + ".part", {path!r})
"""


def test_a_worker_on_s3_makes_its_client_as_it_starts(seaweedfs, tmp_path):
    """Before any request touches storage, the worker has made its S3 session: the first
    student after a deployment does not wait for boto3 (courses/s3_backend.py)."""
    import requests

    record = tmp_path / "sessions.json"
    (tmp_path / "hook.py").write_text(S3_HOOK.format(path=str(record)))
    env = {
        **seaweedfs.env(),
        "GUNICORN_CMD_ARGS": f"--config {tmp_path / 'hook.py'}",
    }
    with LiveServer(workers=1, threads=2, env=env) as server:
        deadline = time.monotonic() + 30
        while True:
            # A path that reads no file and no storage: only the warm-up can make a session.
            path = f"/api/v1/courses/warm{int(time.monotonic() * 1000)}"
            assert requests.get(f"{server.url}{path}", timeout=30).status_code in (401, 404)
            sessions = recorded_path(record, path)["sessions"]
            if sessions or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert sessions == 1


def recorded_path(record: Path, path: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        if record.exists():
            written = json.loads(record.read_text())
            if written["path"] == path:
                return written
        assert time.monotonic() < deadline, f"no record of {path}"
        time.sleep(0.05)
