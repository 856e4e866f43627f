"""Manifests are checked against bytes, never trusted: a manifest that gives one hash two
sizes, or names a stored file with a size other than its own, is refused with
``400 bad_manifest`` and records nothing; the sizes the service lists and serves are those of
the bytes it holds, so no upload can break the downloads of another course."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import requests

from courses import services
from courses.models import AuditEvent, Blob, Bundle, BundleEntry, Membership, Submission
from tests.harness.uploads import manifest_of, tar_gz, upload_form

SUBMIT = "/api/v1/courses/phys101/assignments/ps1/submissions"
# Predictable bytes another course will use: anyone can compute their hash in advance.
SHARED = b"x,y\n" * 250

pytestmark = pytest.mark.storage


def _recorded() -> tuple[int, ...]:
    return (
        Submission.objects.count(),
        Bundle.objects.count(),
        BundleEntry.objects.count(),
        Blob.objects.count(),
        AuditEvent.objects.filter(action=AuditEvent.Action.SUBMITTED).count(),
    )


def _refused_bad_manifest(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "bad_manifest", body
    assert body["detail"].strip().endswith(".")
    return body["detail"]


def _download_all(client, files: list[dict]) -> dict[str, bytes]:
    """Fetch every listed URL as the plugin does, checking size and hash of each."""
    got = {}
    for entry in files:
        if entry["url"].startswith("http://testserver/"):
            response = client.get(entry["url"])
            assert response.status_code == 200
            data, announced = b"".join(response.streaming_content), response["Content-Length"]
        else:  # presigned by the object store
            response = requests.get(entry["url"], timeout=60)
            assert response.status_code == 200
            data, announced = response.content, response.headers["Content-Length"]
        assert int(announced) == len(data), entry["path"]
        assert len(data) == entry["size"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        got[entry["path"]] = data
    return got


@pytest.fixture
def chem200(django_user_model):
    course = services.create_course(code="chem200", title="Chemistry")
    services.add_member(course=course, username="carl", role=Membership.Role.INSTRUCTOR)
    services.add_member(course=course, username="cleo", role=Membership.Role.STUDENT)
    return course


def test_one_hash_with_two_sizes_cannot_poison_another_courses_download(
    people, released, chem200, client_for
):
    sha = hashlib.sha256(SHARED).hexdigest()
    # Sent once with its real size, listed again (not sent) with a size that lies.
    manifest = [
        {"path": "a.csv", "size": len(SHARED), "sha256": sha},
        {"path": "b.csv", "size": len(SHARED) + 4096, "sha256": sha},
    ]
    before = _recorded()
    response = client_for(people["sam"]).post(
        SUBMIT,
        {"manifest": json.dumps(manifest), "archive": io.BytesIO(tar_gz({"a.csv": SHARED}))},
        format="multipart",
    )
    detail = _refused_bad_manifest(response)
    assert sha in detail and "two sizes" in detail
    assert _recorded() == before

    # The other course releases those very bytes; its student downloads them intact.
    services.release_assignment(
        actor=None,
        course=chem200,
        code="lab1",
        upload=services.Upload(
            manifest=json.dumps(manifest_of({"data.csv": SHARED})),
            archive=io.BytesIO(tar_gz({"data.csv": SHARED})),
        ),
    )
    cleo = client_for(Membership.objects.get(user__username="cleo").user)
    fetched = cleo.get("/api/v1/courses/chem200/assignments/lab1/release/files")
    assert fetched.status_code == 200
    assert fetched.json()["total_size"] == len(SHARED)
    assert _download_all(cleo, fetched.json()["files"]) == {"data.csv": SHARED}


def test_a_stored_file_named_with_a_wrong_size_is_refused(people, released, client_for):
    big = b"x,y\n" * 1000  # the released data/big.csv: sam may reference it without bytes
    sha = hashlib.sha256(big).hexdigest()
    manifest = [
        {"path": "ps1.ipynb", "size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()},
        {"path": "data/big.csv", "size": len(big) * 3, "sha256": sha},
    ]
    before = _recorded()
    response = client_for(people["sam"]).post(
        SUBMIT,
        {"manifest": json.dumps(manifest), "archive": io.BytesIO(tar_gz({"ps1.ipynb": b"{}"}))},
        format="multipart",
    )
    detail = _refused_bad_manifest(response)
    assert "data/big.csv" in detail and str(len(big)) in detail
    assert _recorded() == before
    assert Blob.objects.get(sha256=sha).size == len(big)


def test_referencing_a_stored_file_with_its_own_size_still_works(people, released, client_for):
    files = {"ps1.ipynb": b'{"cells": ["mine"]}', "data/big.csv": b"x,y\n" * 1000}
    response = client_for(people["sam"]).post(
        SUBMIT, upload_form(files, omit=["data/big.csv"]), format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json()["total_size"] == sum(len(d) for d in files.values())


def test_bytes_received_correct_a_row_whose_size_lies(people, released, client_for):
    """A row damaged before this release (by the hole above) is put right by the next upload
    that sends its bytes: the bytes are the truth."""
    sha = hashlib.sha256(SHARED).hexdigest()
    Blob.objects.create(sha256=sha, size=len(SHARED) + 4096)
    services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=services.Upload(
            manifest=json.dumps(manifest_of({"a.csv": SHARED})),
            archive=io.BytesIO(tar_gz({"a.csv": SHARED})),
        ),
    )
    assert Blob.objects.get(sha256=sha).size == len(SHARED)
    assert Submission.objects.get(student=people["sam"]).bundle.total_size == len(SHARED)


def test_a_path_with_a_direction_override_is_400_and_records_nothing(people, released, client_for):
    before = _recorded()
    response = client_for(people["sam"]).post(
        SUBMIT, upload_form({"a\u202etxt.exe": b"MZ"}), format="multipart"
    )
    assert response.status_code == 400, response.content
    assert "U+202E" in response.json()["detail"]
    assert _recorded() == before
