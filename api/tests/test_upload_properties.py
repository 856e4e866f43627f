"""Property test of the whole upload path: for any sequence of releases, submissions and
feedback by any members of two courses, with manifests that lie (sizes off by one or by
kilobytes, one hash listed twice with two sizes, stored files named without their bytes or
with another size, files of the other course referenced) and archives that differ from
their manifests, every blob's recorded size and hash equal its stored bytes, every bundle's
total is the sum of its files, every accepted upload holds exactly the bytes it sent, and
every listed file downloads byte for byte with the size it is listed with.

The suite tries a modest number of sequences (each is many uploads); a deeper search:
``EXCHANGE_FUZZ_EXAMPLES=2000 .venv/bin/pytest api/tests/test_upload_properties.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest
import requests
from django.db import transaction
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.downloads import blob_url
from courses import blobstore, selectors, services
from courses.exceptions import ExchangeError
from courses.models import Assignment, Blob, Bundle, Membership, Submission

# Storage-facing: `make test-s3` runs it on SeaweedFS S3 too (downloads presigned).
pytestmark = pytest.mark.storage

# A quarter of the other fuzz tests' budget: every example here is a run of uploads.
EXAMPLES = max(10, int(os.environ.get("EXCHANGE_FUZZ_EXAMPLES", "100")) // 4)
UPLOADS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)

# Few, predictable contents, so that both courses hold the same bytes (empty files, last
# term's data) and one course's lie could reach the other's files.
CONTENTS = [b"", b"x,y\n" * 250, b'{"cells": []}', b"A" * 10, bytes(range(256)) * 12]
PATHS = ["ps1.ipynb", "data.csv", "data/more.bin", "notes.txt", "extra/copy.csv"]
COURSES = ["c1", "c2"]
MEMBERS = {
    "ina": ("c1", Membership.Role.INSTRUCTOR),
    "sal": ("c1", Membership.Role.STUDENT),
    "sol": ("c1", Membership.Role.STUDENT),
    "ian": ("c2", Membership.Role.INSTRUCTOR),
    "stu": ("c2", Membership.Role.STUDENT),
}

listed_file = st.fixed_dictionaries(
    {
        "path": st.sampled_from(PATHS),
        "content": st.integers(0, len(CONTENTS) - 1),
        # The size the manifest claims: mostly the truth, sometimes a lie.
        "lie": st.sampled_from([0, 0, 0, 0, 1, -1, 4096]),
        "sent": st.booleans(),
    }
)
upload_op = st.fixed_dictionaries(
    {
        "actor": st.sampled_from(sorted(MEMBERS)),
        "kind": st.sampled_from(["release", "submit", "submit", "feedback"]),
        "course": st.sampled_from(COURSES),
        "files": st.lists(listed_file, min_size=1, max_size=4, unique_by=lambda f: f["path"]),
        # Send other bytes than listed for the first file sent.
        "tamper": st.integers(0, 12).map(lambda n: n == 0),
        # An archive that is not an archive at all.
        "garbage": st.integers(0, 15).map(lambda n: n == 0),
    }
)


def _upload(op: dict) -> tuple[services.Upload, dict[str, bytes]]:
    """The upload an op describes, and the files it would record if accepted."""
    manifest, sent, intended = [], {}, {}
    for item in op["files"]:
        data = CONTENTS[item["content"]]
        manifest.append(
            {
                "path": item["path"],
                "size": len(data) + item["lie"],
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        intended[item["path"]] = data
        if item["sent"]:
            sent[item["path"]] = data
    if op["tamper"] and sent:
        first = next(iter(sent))
        sent[first] = sent[first] + b"!"
    buffer = io.BytesIO()
    if op["garbage"]:
        buffer.write(b"\x1f\x8b not really a tar.gz")
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path, data in sent.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return services.Upload(manifest=json.dumps(manifest), archive=buffer), intended


def _run(op: dict, users: dict, courses: dict) -> Bundle | None:
    """Perform one op through the services; the bundle it recorded, or None if refused."""
    actor, course = users[op["actor"]], courses[op["course"]]
    upload, _ = _upload(op)
    assignment = Assignment.objects.filter(course=course, code="ps1").first()
    try:
        if op["kind"] == "release":
            done = services.release_assignment(
                actor=actor, course=course, code="ps1", upload=upload, force=True
            )
            return done.release
        if op["kind"] == "submit":
            if assignment is None:
                return None
            return services.submit_assignment(
                student=actor, assignment=assignment, upload=upload
            ).bundle
        submission = Submission.objects.filter(assignment__course=course).last()
        if submission is None:
            return None
        return services.release_feedback(actor=actor, submission=submission, upload=upload).bundle
    except ExchangeError:
        return None


def _download(client: Client, url: str) -> tuple[bytes, int]:
    """A listed file's bytes and the length announced for them (local or presigned S3)."""
    if url.startswith("http://testserver/"):
        response = client.get(url)
        assert response.status_code == 200
        return b"".join(response.streaming_content), int(response["Content-Length"])
    response = requests.get(url, timeout=60)
    assert response.status_code == 200
    return response.content, int(response.headers["Content-Length"])


def _check_everything() -> None:
    for blob in Blob.objects.all():
        data = b"".join(blobstore.iter_blob(blob.sha256))
        assert hashlib.sha256(data).hexdigest() == blob.sha256
        assert len(data) == blob.size, blob.sha256
    request = RequestFactory().get("/")
    client = Client()
    for bundle in Bundle.objects.all():
        entries = list(selectors.bundle_entries(bundle))
        assert bundle.file_count == len(entries)
        assert bundle.total_size == sum(entry.blob.size for entry in entries)
        for entry in entries:
            data, announced = _download(
                client, blob_url(request, sha256=entry.blob_id, path=entry.path)
            )
            assert len(data) == announced == entry.blob.size, entry.path
            assert hashlib.sha256(data).hexdigest() == entry.blob_id


@UPLOADS
@given(ops=st.lists(upload_op, min_size=1, max_size=8))
def test_any_upload_sequence_keeps_sizes_hashes_and_downloads_true(db, ops):
    with transaction.atomic():
        courses = {code: services.create_course(code=code) for code in COURSES}
        users = {
            name: services.add_member(course=courses[code], username=name, role=role).user
            for name, (code, role) in MEMBERS.items()
        }
        for op in ops:
            bundle = _run(op, users, courses)
            if bundle is not None:
                # Accepted: it holds exactly the bytes listed, with their true sizes.
                _, intended = _upload(op)
                recorded = {
                    entry.path: (entry.blob_id, entry.blob.size)
                    for entry in selectors.bundle_entries(bundle)
                }
                assert recorded == {
                    path: (hashlib.sha256(data).hexdigest(), len(data))
                    for path, data in intended.items()
                }
                assert all(item["lie"] == 0 for item in op["files"])
            _check_everything()
        transaction.set_rollback(True)
