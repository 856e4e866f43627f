"""Files inline without base64: a client that accepts ``application/vnd.nbgrader-exchange.inline``
gets the JSON on one line, a newline, then the small files' bytes, each entry saying where its
bytes start (``content_at``); any other client gets JSON with base64 ``content`` as before."""

from __future__ import annotations

import hashlib
import json

import pytest

from api import downloads
from api.spliced_json import INLINE_BYTES_TYPE, Spliced
from courses import services
from courses.models import AuditEvent
from nbgrader_exchange.archive_download import INLINE_ACCEPT
from tests.harness.personas import RELEASED
from tests.harness.uploads import make_upload

ASSIGNMENT = "/api/v1/courses/phys101/assignments/ps1"
SMALL = b"<p>good work, sam</p>\n" * 10
LARGE = b"<p>" + b"x" * 3000 + b"</p>"

# What the plugin sends (its own constants: it imports nothing of the service's): errors are
# JSON, so it accepts JSON too (without it DRF answers 406 Not Acceptable).
ACCEPT = INLINE_ACCEPT
assert ACCEPT.startswith(INLINE_BYTES_TYPE + ",")

# Local files and S3 alike (``make test-s3`` runs these on SeaweedFS too).
pytestmark = pytest.mark.storage


def _split(answer) -> tuple[object, bytes]:
    """The JSON and the bytes after it, as a client reads them."""
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"] == INLINE_BYTES_TYPE
    head, newline, tail = answer.content.partition(b"\n")
    assert newline
    return json.loads(head), tail


def _bytes_of(entry: dict, tail: bytes) -> bytes:
    return tail[entry["content_at"] : entry["content_at"] + entry["size"]]


@pytest.fixture
def released_feedback(people, submission):
    return services.release_feedback(
        actor=people["gus"],
        submission=submission,
        upload=make_upload(
            # The same bytes under two names come once.
            {"feedback/ps1.html": SMALL, "feedback/copy.html": SMALL, "feedback/plots.html": LARGE}
        ),
    )


def test_feedback_comes_as_json_then_the_small_files_bytes(
    people, released_feedback, client_for, monkeypatch
):
    monkeypatch.setattr(downloads, "INLINE_FILE_BYTES", 1000)
    answer = client_for(people["sam"]).get(f"{ASSIGNMENT}/feedback?inline=true", HTTP_ACCEPT=ACCEPT)
    [feedback], tail = _split(answer)
    files = {f["path"]: f for f in feedback["files"]}
    small, copy, large = (files[f"feedback/{n}.html"] for n in ("ps1", "copy", "plots"))
    assert _bytes_of(small, tail) == SMALL and _bytes_of(copy, tail) == SMALL
    assert small["content_at"] == copy["content_at"] and len(tail) == len(SMALL)
    assert small["sha256"] == hashlib.sha256(SMALL).hexdigest()
    for entry in (small, copy):
        assert "content" not in entry and "url" not in entry and "token" not in entry
    assert "content_at" not in large and large["url"].startswith("http")
    assert AuditEvent.objects.filter(action="feedback_fetched").count() == 1
    # The feedback's HTML is in the body as it is: a browser must not sniff it into a page.
    assert answer["X-Content-Type-Options"] == "nosniff"


def test_a_release_comes_as_json_then_the_small_files_bytes(
    people, released, client_for, monkeypatch
):
    monkeypatch.setattr(downloads, "INLINE_FILE_BYTES", 1000)
    answer = client_for(people["sam"]).get(
        f"{ASSIGNMENT}/release/files?inline=true", HTTP_ACCEPT=ACCEPT
    )
    manifest, tail = _split(answer)
    files = {f["path"]: f for f in manifest["files"]}
    assert manifest["assignment_id"] == "ps1"
    assert _bytes_of(files["ps1.ipynb"], tail) == RELEASED["ps1.ipynb"] == tail
    assert "content_at" not in files["data/big.csv"] and files["data/big.csv"]["url"]


def test_many_files_each_have_their_own_bytes(people, submission, client_for):
    files = {f"feedback/{n:03d}.html": f"<p>file {n}</p>\n".encode() * (n + 1) for n in range(60)}
    services.release_feedback(actor=people["gus"], submission=submission, upload=make_upload(files))
    answer = client_for(people["sam"]).get(f"{ASSIGNMENT}/feedback?inline=true", HTTP_ACCEPT=ACCEPT)
    [feedback], tail = _split(answer)
    assert {f["path"]: _bytes_of(f, tail) for f in feedback["files"]} == files


def test_the_json_is_one_line_whatever_indent_is_asked_for(people, released_feedback, client_for):
    # The newline after the JSON is where the bytes begin: an indented document would end
    # sooner than it does.
    answer = client_for(people["sam"]).get(
        f"{ASSIGNMENT}/feedback?inline=true",
        HTTP_ACCEPT=f"application/json; indent=4, {INLINE_BYTES_TYPE}",
    )
    [feedback], tail = _split(answer)
    assert all(_bytes_of(f, tail) for f in feedback["files"])


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "*/*",
        f"{INLINE_BYTES_TYPE};q=0, application/json",
        f"{INLINE_BYTES_TYPE}x, application/json",
    ],
)
def test_any_other_client_gets_json_with_base64(people, released_feedback, client_for, accept):
    answer = client_for(people["sam"]).get(f"{ASSIGNMENT}/feedback?inline=true", HTTP_ACCEPT=accept)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    [feedback] = answer.json()
    assert all("content" in f and "content_at" not in f for f in feedback["files"])


def test_without_inline_or_on_an_error_the_answer_is_json(people, released_feedback, client_for):
    sam = client_for(people["sam"])
    answer = sam.get(f"{ASSIGNMENT}/feedback", HTTP_ACCEPT=ACCEPT)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert all("url" in f for f in answer.json()[0]["files"])
    # An error says what was wrong, in JSON, whatever was accepted.
    answer = sam.get(
        f"{ASSIGNMENT}/feedback?inline=maybe",
        HTTP_ACCEPT=ACCEPT,
    )
    assert answer.status_code == 400 and "inline" in answer.json()["detail"]
    answer = sam.get(
        "/api/v1/courses/phys101/assignments/nope/feedback?inline=true",
        HTTP_ACCEPT=ACCEPT,
    )
    assert answer.status_code == 404 and answer.json()["detail"]


def test_an_answer_with_nothing_inline_is_its_json_and_a_newline():
    spliced = Spliced(raw=True)
    assert spliced.splice(b"[]") == b"[]\n"
    assert spliced.attach(b"abc") == 0 and spliced.attach(b"de") == 3
    assert spliced.splice(b"[1]") == b"[1]\nabcde"
