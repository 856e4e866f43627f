"""What a person sees when something is wrong: one clear sentence naming the server and what
failed, a non-zero exit, and no traceback (the real nbgrader CLI against a live server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.ports import free_port

from .support import MAX_FILE_SIZE, Actor, Person, plugin_config, write_source

COURSE = "err101"
INES, SAM, OLGA = "err-ines", "err-sam", "err-olga"
# Failing fast keeps the test short; retries themselves are tested in test_client.py.
QUICK = "c.Exchange.retries = 1\nc.Exchange.backoff = 0.05\n"


@pytest.fixture(scope="module")
def people(service, tmp_path_factory) -> dict[str, Any]:
    tokens = service.tokens(INES, SAM, OLGA)
    service.create_course(COURSE, INES, [SAM])
    root = tmp_path_factory.mktemp("errors")
    instructor = Actor(INES, root / INES, plugin_config(service.url, tokens[INES], root / "c"))
    instructor.work.mkdir()
    write_source(instructor.work)
    (instructor.work / "source").rename(instructor.work / "release")
    instructor.run("ReleaseAssignment", COURSE, "ps1")

    def person(name: str, url: str = service.url, token: str | None = None) -> Person:
        return Person(name, root, url, token or tokens[name], extra_config=QUICK)

    return {"url": service.url, "person": person}


def failed(result: Any, *phrases: str) -> str:
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    return result.output


def test_server_down(people):
    url = f"http://127.0.0.1:{free_port()}"
    down = people["person"]("down-sam", url=url, token="nbx_whatever")
    result = down.nbgrader("list", check=False)
    failed(
        result,
        f"Could not list assignments: the exchange server at {url} is not reachable "
        "(connection refused)",
        "nbgrader list failed",
    )


def test_bad_token(people):
    stranger = people["person"]("bad-token", token="nbx_not-a-real-token")
    result = stranger.nbgrader("fetch_assignment", "ps1", "--course", COURSE, check=False)
    failed(
        result,
        f"Could not fetch ps1 from course {COURSE}: the exchange server at {people['url']} "
        "did not accept your token",
        "NBGRADER_EXCHANGE_TOKEN",
    )


def test_student_not_enrolled(people):
    olga = people["person"](OLGA)
    result = olga.nbgrader("fetch_assignment", "ps1", "--course", COURSE, check=False)
    failed(result, f"the exchange server at {people['url']} answered 404", repr(COURSE))


def test_unknown_course(people):
    sam = people["person"](SAM)
    result = sam.nbgrader("submit", "ps1", "--course", "nope101", check=False)
    # Nothing to submit is checked first, as nbgrader does.
    failed(result, "Assignment not found at:")
    (sam.work / "ps1").mkdir(exist_ok=True)
    result = sam.nbgrader("submit", "ps1", "--course", "nope101", check=False)
    failed(result, "Could not submit ps1 to course nope101", "answered 404", "'nope101'")


def test_unknown_assignment(people):
    sam = people["person"](SAM)
    result = sam.nbgrader("fetch_assignment", "ps7", "--course", COURSE, check=False)
    failed(result, f"Could not fetch ps7 from course {COURSE}", "answered 404", "ps7")


def test_file_over_the_servers_limit(people):
    sam = people["person"](SAM)
    sam.nbgrader("fetch_assignment", "ps1", "--course", COURSE, "--replace")
    big = Path(sam.work / "ps1" / "big.bin")
    big.write_bytes(b"\0" * (MAX_FILE_SIZE + 1))
    result = sam.nbgrader("submit", "ps1", "--course", COURSE, check=False)
    failed(result, "answered 413", "big.bin", str(MAX_FILE_SIZE))
    big.unlink()


def test_no_server_configured(people):
    nobody = people["person"]("no-url", token="nbx_unused")
    nobody.env_extra["NBGRADER_EXCHANGE_URL"] = ""
    result = nobody.nbgrader("list", check=False)
    failed(result, "No exchange server is configured", "NBGRADER_EXCHANGE_URL")
