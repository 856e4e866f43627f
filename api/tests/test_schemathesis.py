"""schemathesis against the OpenAPI schema of a live server, as several roles, with a
bounded number of examples per operation: no request may get a 500, and every response
must be one the schema documents.

Each role runs once with the real ids of a course, an assignment, a member and a
submission (so requests reach the operations, not just the 404 of a missing course) and
the instructor once more with generated ids.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness.live import LiveServer
from tests.harness.uploads import multipart_files

# The server brings its own SQLite database: once per suite is enough.
pytestmark = pytest.mark.sqlite_only

# 8 per operation in the suite; EXCHANGE_FUZZ_EXAMPLES=1000 (as for the other fuzz tests)
# searches ten times deeper.
MAX_EXAMPLES = max(8, int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "100")) * 8 // 100)
# No 500s, and every answer is one the schema documents (status, content type, body).
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


@pytest.fixture(scope="module")
def world():
    with LiveServer(workers=2, threads=4) as server:
        tokens = server.tokens(
            {"ada": True, "ines": False, "gus": False, "sam": False, "tia": False}
        )

        def call(who: str, method: str, path: str, **kwargs) -> requests.Response:
            response = requests.request(
                method,
                f"{server.api_url}/{path}",
                headers={"Authorization": f"token {tokens[who]}"},
                timeout=60,
                **kwargs,
            )
            assert response.status_code < 300, response.text
            return response

        call("ada", "POST", "courses", json={"course_id": "phys101", "instructors": ["ines"]})
        for name, role in [("gus", "grader"), ("sam", "student"), ("tia", "student")]:
            call("ines", "PUT", f"courses/phys101/members/{name}", json={"role": role})
        release = multipart_files({"ps1.ipynb": b'{"cells": []}'})
        call("ines", "POST", "courses/phys101/assignments/ps1/release", files=release)
        submission = call(
            "sam",
            "POST",
            "courses/phys101/assignments/ps1/submissions",
            files=multipart_files({"ps1.ipynb": b'{"cells": [1]}'}),
        ).json()
        call(
            "gus",
            "POST",
            f"submissions/{submission['id']}/feedback",
            files=multipart_files({"feedback.html": b"<p>ok</p>"}),
        )
        regrade = call(
            "sam",
            "POST",
            f"submissions/{submission['id']}/regrades",
            json={"message": "Question 1 again, please."},
        ).json()
        yield server, tokens, submission["id"], regrade["id"]


def _run(server: LiveServer, token: str | None, tmp_path: Path, parameters: dict) -> None:
    config = tmp_path / "schemathesis.toml"
    lines = ["[parameters]"] + [f"{key} = {json.dumps(value)}" for key, value in parameters.items()]
    config.write_text("\n".join(lines) + "\n")
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{server.api_url}/schema/?format=json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,fuzzing",
        "--workers",
        "2",
        "--request-timeout",
        "60",
        "--warnings",
        "off",
        "--no-color",
    ]
    if token:
        command += ["--header", f"Authorization: token {token}"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60 * MAX_EXAMPLES + 300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) > 100, result.stdout[-3000:]
    print(f"{generated.group(0)} test cases, no server errors")
    # The status field of gunicorn's access log, not a 500-byte response body.
    assert not re.search(r'HTTP/[\d.]+" 500 ', server.log()), server.log()[-4000:]


# The site admin last: deleting the course ends the other roles' data.
@pytest.mark.parametrize("role", ["anonymous", "sam", "tia", "gus", "ines", "ada"])
def test_no_server_errors_with_real_ids(world, tmp_path, role):
    server, tokens, submission_id, regrade_id = world
    parameters = {
        "regrade_id": regrade_id,
        "course_id": "phys101",
        "assignment_id": "ps1",
        "submission_id": submission_id,
        "username": "tia",
    }
    _run(server, tokens.get(role), tmp_path, parameters)


def test_no_server_errors_with_generated_ids(world, tmp_path):
    server, tokens, _, _ = world
    _run(server, tokens["ines"], tmp_path, {})
