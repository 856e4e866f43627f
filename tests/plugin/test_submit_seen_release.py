"""``nbgrader submit`` after ``nbgrader fetch_assignment``: the release as the student saw it
(``nbgrader_exchange/seen_release.py``) says which files need not be sent, so the submit is
one request; a release changed since, a missing or damaged record and ``--strict`` ask the
server (the real plugin against a live server)."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from nbgrader.exchange.abc import ExchangeError

from nbgrader_exchange import exchange as exchange_module
from nbgrader_exchange import seen_release
from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.files import entry_from_bytes

from .support import Actor, plugin_config

COURSE = "seen101"
INES = "seen-ines"
DATA = 600_000  # larger than everything else a submission sends, together
_numbers = itertools.count()


class Sizing(ExchangeClient):
    """The real client, noting each request's method, path and body size."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, int]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        body = kwargs.get("body")
        self.sent.append((method, path.split("?")[0], len(body) if body is not None else 0))
        return super().request(method, path, **kwargs)


def _notebook(text: str) -> bytes:
    cells = [{"cell_type": "code", "source": text, "metadata": {}, "outputs": []}]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


@pytest.fixture
def course(service) -> dict[str, Any]:
    """A course of its own for each test (one student), with ps1 released."""
    number = next(_numbers)
    code, student = f"{COURSE}x{number}", f"seen-s{number}"
    tokens = service.tokens(INES, student)
    service.create_course(code, INES, [student])
    ines = ExchangeClient(service.url, tokens[INES])
    files = {"ps1.ipynb": _notebook("x = 1"), "data/big.bin": os.urandom(DATA)}

    def release(files: dict[str, bytes]) -> None:
        ines.upload_bundle(
            f"courses/{code}/assignments/ps1/release",
            [entry_from_bytes(path, data) for path, data in files.items()],
            what="release",
            fields={"force": "true"},
        )

    release(files)
    return {
        "code": code,
        "student": student,
        "token": tokens[student],
        "ines": ines,
        "files": files,
        "release": release,
        "url": service.url,
    }


@pytest.fixture
def sam(course, tmp_path, monkeypatch) -> Any:
    """The student, whose plugin's requests are noted in ``sam.sent()``."""
    made: list[Sizing] = []
    monkeypatch.setattr(
        exchange_module,
        "ExchangeClient",
        lambda *a, **k: made.append(Sizing(*a, **k)) or made[-1],
    )
    actor = Actor(
        course["student"],
        tmp_path / "work",
        plugin_config(course["url"], course["token"], tmp_path / "cache"),
    )
    actor.work.mkdir()
    actor.cache = tmp_path / "cache"
    actor.sent = lambda: [request for client in made for request in client.sent]
    actor.forget_sent = made.clear
    return actor


def _submit(sam: Any, course: dict[str, Any], **traits: Any) -> list[tuple[str, str, int]]:
    sam.forget_sent()
    sam.run("Submit", course["code"], "ps1", **traits)
    return [(method, path.split("/ps1")[-1], size) for method, path, size in sam.sent()]


def _stored(course: dict[str, Any]) -> dict[str, str]:
    """The SHA-256 of each file of the student's latest submission, as the server keeps it."""
    ines = course["ines"]
    [latest] = ines.get(
        f"courses/{course['code']}/assignments/ps1/submissions",
        what="list",
        latest="true",
        student=course["student"],
    )
    detail = ines.get(f"submissions/{latest['id']}", what="read")
    return {f["path"]: f["sha256"] for f in detail["files"] if f["path"] != "submission_secret.txt"}


def _local(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_a_submit_after_a_fetch_is_one_request_without_the_release_files(course, sam):
    sam.run("FetchAssignment", course["code"], "ps1")
    record = sam.cache / ".releases" / course["code"] / "ps1.json"
    assert json.loads(record.read_text())["files"]
    (sam.work / "ps1" / "ps1.ipynb").write_bytes(_notebook("x = 2"))

    [(method, path, size)] = _submit(sam, course)
    assert (method, path) == ("POST", "/submissions")
    assert size < DATA  # the data file, unchanged, was not sent
    assert _stored(course) == _local(sam.work / "ps1")


def test_a_release_changed_since_the_fetch_is_read_again_and_checked(course, sam, caplog):
    sam.run("FetchAssignment", course["code"], "ps1")
    # Released again: a new data file and a second notebook. The student keeps the old ones.
    course["release"](
        {
            "ps1.ipynb": course["files"]["ps1.ipynb"],
            "ps2.ipynb": _notebook("y = 1"),
            "data/big.bin": os.urandom(DATA),
        }
    )
    with caplog.at_level(logging.WARNING):
        sent = _submit(sam, course)
    # The server lacked the old data file the record named: the release was read again and
    # the submission sent once more, with the old data file's bytes this time.
    assert [(m, p) for m, p, _ in sent] == [
        ("POST", "/submissions"),
        ("GET", ""),
        ("POST", "/submissions"),
    ]
    assert sent[0][2] < DATA < sent[2][2]
    assert _stored(course) == _local(sam.work / "ps1")
    # nbgrader's check, against the release as it is now.
    assert "ps2.ipynb: MISSING" in caplog.text
    # The record is the release as it is now: the next submit is one request again.
    assert [(m, p) for m, p, _ in _submit(sam, course)] == [("POST", "/submissions")]


def test_a_release_changed_only_in_its_notebooks_is_checked_after_the_upload(course, sam, caplog):
    sam.run("FetchAssignment", course["code"], "ps1")
    course["release"]({**course["files"], "ps2.ipynb": _notebook("y = 1")})
    with caplog.at_level(logging.WARNING):
        sent = _submit(sam, course)
    # Every file the record named is still the server's: one upload, then the answer's
    # release time differs from the record's, so the release is read and checked.
    assert [(m, p) for m, p, _ in sent] == [("POST", "/submissions"), ("GET", "")]
    assert "ps2.ipynb: MISSING" in caplog.text
    assert _stored(course) == _local(sam.work / "ps1")


def test_strict_asks_for_the_release_as_it_is_now_before_sending(course, sam):
    sam.run("FetchAssignment", course["code"], "ps1")
    course["release"]({**course["files"], "ps2.ipynb": _notebook("y = 1")})
    with pytest.raises(ExchangeError, match="missing notebooks"):
        _submit(sam, course, strict=True)
    assert [method for method, _, _ in sam.sent()] == ["GET"]  # nothing was sent


@pytest.mark.parametrize("record", ["missing", "damaged"])
def test_without_a_usable_record_the_submit_asks_first_and_remembers(course, sam, record):
    sam.run("FetchAssignment", course["code"], "ps1")
    path = sam.cache / ".releases" / course["code"] / "ps1.json"
    if record == "missing":
        path.unlink()
    else:
        path.write_text('{"released_at": 5, "files": "not a list"}')
    sent = _submit(sam, course)
    assert [(m, p) for m, p, _ in sent] == [("GET", ""), ("POST", "/submissions")]
    assert sent[1][2] < DATA
    assert _stored(course) == _local(sam.work / "ps1")
    assert [(m, p) for m, p, _ in _submit(sam, course)] == [("POST", "/submissions")]


def test_a_record_that_cannot_be_written_or_read_is_none(tmp_path):
    release = seen_release.SeenRelease(
        released_at="2026-12-03 12:00:00.000000 UTC",
        files=[{"path": "ps1.ipynb", "size": 3, "sha256": "a" * 64}],
    )
    # A cache that is a file, not a folder: nothing written, nothing raised.
    blocked = tmp_path / "cache"
    blocked.write_text("")
    seen_release.remember(str(blocked), "c1", "ps1", release)
    assert seen_release.recall(str(blocked), "c1", "ps1") is None
    # Names that are not one folder are never used as paths.
    cache = tmp_path / "ok"
    seen_release.remember(str(cache), "../c1", "ps1", release)
    assert not any(cache.rglob("*.json")) and not (tmp_path / "c1").exists()
    # A valid record where "c1" and "../ps1" would lead if the names were used as they are.
    (cache / ".releases" / "c1").mkdir(parents=True)
    (cache / ".releases" / "ps1.json").write_text(
        json.dumps({"released_at": release.released_at, "files": release.files})
    )
    assert seen_release.recall(str(cache), "c1", "../ps1") is None
    (cache / ".releases" / "ps1.json").unlink()
    # Written whole (no temporary file left), read back.
    seen_release.remember(str(cache), "c1", "ps1", release)
    assert seen_release.recall(str(cache), "c1", "ps1") == release
    assert [p.name for p in (cache / ".releases" / "c1").iterdir()] == ["ps1.json"]
    # Entries of the wrong shape make no record.
    target = cache / ".releases" / "c1" / "ps1.json"
    for text in ("[]", '{"released_at": null, "files": [{"path": 1}]}', "{"):
        target.write_text(text)
        assert seen_release.recall(str(cache), "c1", "ps1") is None


def test_against_an_older_server_the_release_is_read_after_the_upload(scripted, tmp_path):
    """A server whose answer does not name the release (before ``assignment_released_at``):
    the remembered hashes still spare the upload, and the release is read afterwards."""
    from nbgrader_exchange.submit import send_submission

    data = os.urandom(100_000)  # sent stored, as it is, when sent (gzipper.level_for)
    sha = hashlib.sha256(data).hexdigest()
    seen = seen_release.SeenRelease(
        released_at="2026-12-01 09:00:00.000000 UTC",
        files=[{"path": "data.bin", "size": len(data), "sha256": sha}],
    )
    cache = str(tmp_path / "cache")
    seen_release.remember(cache, "c1", "ps1", seen)
    release_now = {
        "released_at": "2026-12-02 09:00:00.000000 UTC",
        "files": [*seen.files, {"path": "ps2.ipynb", "size": 2, "sha256": "b" * 64}],
    }
    server = scripted(
        (201, {"id": 7, "student": "s1", "timestamp": "2026-12-03 09:00:00.000000 UTC"}),
        (200, release_now),
    )
    checked: list[list[str]] = []
    answer = send_submission(
        ExchangeClient(server.url, "nbx_token"),
        "courses/c1/assignments/ps1",
        [entry_from_bytes("data.bin", data), entry_from_bytes("ps1.ipynb", b"{}")],
        what="submit ps1",
        cache=cache,
        course_id="c1",
        assignment_id="ps1",
        check=lambda release: checked.append(release.notebooks),
    )
    assert answer["id"] == 7
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/api/v1/courses/c1/assignments/ps1/submissions"),
        ("GET", "/api/v1/courses/c1/assignments/ps1"),
    ]
    body = server.requests[0].body
    assert len(body) < len(data) and data[:1000] not in body  # left out: the record named it
    # Checked against the remembered release, then against the one read, now remembered.
    assert checked == [[], ["ps2.ipynb"]]
    assert seen_release.recall(cache, "c1", "ps1").released_at == release_now["released_at"]
