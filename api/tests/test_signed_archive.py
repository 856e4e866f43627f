"""``POST files/archive``: several signed files in one streamed tar, answered from the tokens
alone (api/signed_archive.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import signed_archive
from api.downloads import INLINE_FILE_BYTES
from courses import blobstore
from courses.exceptions import ExchangeError

ARCHIVE = "/api/v1/files/archive"


@pytest.fixture
def files(people, released, client_for):
    response = client_for(people["sam"]).get(
        "/api/v1/courses/phys101/assignments/ps1/release/files"
    )
    return response.json()["files"]


def post(client, tokens, **extra):
    return client.post(
        ARCHIVE, json.dumps({"tokens": tokens}), content_type="application/json", **extra
    )


def members(response) -> dict[str, bytes]:
    body = b"".join(response.streaming_content)
    assert response["Content-Length"] == str(len(body))
    with tarfile.open(fileobj=io.BytesIO(body), mode="r|") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive}


def test_manifest_offers_the_archive_with_local_storage(files):
    for entry in files:
        assert entry["archive_url"] == "http://testserver" + ARCHIVE
        assert entry["url"].endswith("/" + entry["token"])


def test_archive_holds_every_file_asked_for_once_without_a_query_session_or_csrf(files, client_for):
    client = client_for()
    client.cookies["sessionid"] = "whatever"
    tokens = [entry["token"] for entry in files] * 2
    with CaptureQueriesContext(connection) as queries:
        response = post(client, tokens, HTTP_ACCEPT_LANGUAGE="es")
        got = members(response)
    assert len(queries) == 0
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    assert sorted(got) == sorted(entry["sha256"] for entry in files)
    for entry in files:
        assert hashlib.sha256(got[entry["sha256"]]).hexdigest() == entry["sha256"]
    assert not response.cookies and "Vary" not in response


def test_expired_token_is_403(files, client_for, monkeypatch, settings):
    now = time.time()
    monkeypatch.setattr(
        signing.time, "time", lambda: now + settings.EXCHANGE_SIGNED_URL_SECONDS + 5
    )
    response = post(client_for(), [files[0]["token"]])
    assert response.status_code == 403 and response.json()["error"] == "link_expired"


def test_forged_or_altered_tokens_are_refused_and_name_nothing(files, client_for):
    other = hashlib.sha256(b"someone else's file").hexdigest()
    # A token made for another blob without the key, and a real one with its hash changed.
    forged = signing.dumps([other, "x"], salt="api.files", key="not-the-key")
    altered = files[0]["token"].replace(files[0]["token"][:10], "A" * 10)
    for tokens in ([forged], [files[0]["token"], altered], ["archive"]):
        response = post(client_for(), tokens)
        assert response.status_code == 404
        assert response.json() == {
            "error": "not_found",
            "detail": "This download link is not valid.",
        }


def test_a_gone_blob_is_404_with_the_single_file_sentence(files, client_for):
    blobstore.delete(files[0]["sha256"])
    response = post(client_for(), [entry["token"] for entry in files])
    assert response.status_code == 404
    assert response.json()["detail"] == "The file behind this link is no longer stored."


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"tokens": []}', b'{"tokens": "x"}', b'{"tokens": [1]}'],
)
def test_a_body_that_is_not_a_token_list_is_400(body, client_for):
    response = client_for().post(ARCHIVE, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert "tokens" in response.json()["detail"]


def test_too_many_tokens_or_a_huge_body_is_413(files, client_for, monkeypatch):
    response = post(client_for(), [files[0]["token"]] * (signed_archive.MAX_TOKENS + 1))
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert str(signed_archive.MAX_TOKENS) in response.json()["detail"]
    huge = client_for().post(
        ARCHIVE, b"x" * (signed_archive.MAX_BODY + 1), content_type="application/json"
    )
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"


def test_more_bytes_than_the_cap_is_413(files, client_for, monkeypatch):
    monkeypatch.setattr(signed_archive, "MAX_BYTES", min(e["size"] for e in files) + 1)
    response = post(client_for(), [entry["token"] for entry in files])
    assert response.status_code == 413 and "too large for one archive" in response.json()["detail"]


def test_a_failing_disk_is_503_with_a_sentence(files, client_for, monkeypatch):
    import errno
    import os

    real_stat = os.stat

    def failing_stat(path, *args, **kwargs):
        if "/blobs/" in str(path):
            raise OSError(errno.EIO, "Input/output error")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", failing_stat)
    response = post(client_for(), [files[0]["token"]])
    assert response.status_code == 503 and response["Retry-After"]


def test_get_of_the_archive_path_is_not_a_file(client_for):
    response = client_for().get(ARCHIVE)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def _s3_submission_files(people, submission, client_for, *, large: bytes = b"") -> list[dict]:
    """The instructor's view of a submission's files on S3 (one of ``large`` bytes added)."""
    from courses import services
    from tests.harness.uploads import make_upload

    if large:
        submission = services.submit_assignment(
            student=people["sam"],
            assignment=submission.assignment,
            upload=make_upload({"ps1.ipynb": b"{}", "big.bin": large}),
        )
    response = client_for(people["ines"]).get(f"/api/v1/submissions/{submission.pk}")
    assert response.status_code == 200
    return response.json()["files"]


def test_s3_offers_the_archive_for_small_files_and_serves_them_from_the_store(
    s3_storage, people, submission, client_for
):
    """With S3 a small file's bytes may pass through the service (as inline ones do): its
    entry keeps its presigned URL and gains a token; the archive reads the store, makes no
    query, and keeps no copy of a submission's files on the server's disk."""
    from courses import blob_cache

    big = os.urandom(INLINE_FILE_BYTES + 1)
    files = _s3_submission_files(people, submission, client_for, large=big)
    small = [f for f in files if f["size"] <= INLINE_FILE_BYTES]
    [large] = [f for f in files if f["size"] > INLINE_FILE_BYTES]
    assert small and all("X-Amz-Signature=" in f["url"] for f in files)
    assert all(f["archive_url"] == "http://testserver" + ARCHIVE for f in small)
    assert "token" not in large and "archive_url" not in large
    before = set(blob_cache.directory().iterdir()) if blob_cache.directory().exists() else set()
    with CaptureQueriesContext(connection) as queries:
        response = post(client_for(), [f["token"] for f in small])
        got = members(response)
    assert len(queries) == 0 and response.status_code == 200
    assert sorted(got) == sorted({f["sha256"] for f in small})
    for f in small:
        assert hashlib.sha256(got[f["sha256"]]).hexdigest() == f["sha256"]
    after = set(blob_cache.directory().iterdir()) if blob_cache.directory().exists() else set()
    assert after == before


def test_s3_archive_of_a_file_gone_from_the_store_is_404_before_any_byte(
    s3_storage, people, submission, client_for
):
    files = _s3_submission_files(people, submission, client_for)
    blobstore.delete(files[0]["sha256"])  # as a garbage collection does, copy and all
    response = post(client_for(), [f["token"] for f in files])
    assert response.status_code == 404 and response.json()["detail"] == signed_archive.GONE


def test_s3_archive_reads_in_groups_and_cuts_the_answer_when_a_later_one_is_gone(
    s3_storage, people, submission, client_for, monkeypatch
):
    monkeypatch.setattr(signed_archive, "S3_GROUP_FILES", 1)
    files = _s3_submission_files(people, submission, client_for)
    tokens = [f["token"] for f in files]
    assert len({f["sha256"] for f in files}) >= 2
    assert sorted(members(post(client_for(), tokens))) == sorted({f["sha256"] for f in files})
    response = post(client_for(), tokens)
    assert response.status_code == 200
    blobstore.delete(files[-1]["sha256"])
    with pytest.raises(ExchangeError, match="no longer stored"):
        b"".join(response.streaming_content)


def test_s3_archive_refuses_a_token_without_a_small_size(
    s3_storage, people, submission, client_for
):
    # A token of the single-file kind (no size), or one naming a large size, is not one this
    # storage's manifests give for the archive.
    files = _s3_submission_files(people, submission, client_for)
    sha = files[0]["sha256"]
    for token in (
        signing.dumps([sha, "x"], salt="api.files"),
        signing.dumps([sha, "x", INLINE_FILE_BYTES + 1], salt="api.files"),
        signing.dumps([sha, "x", 5, "more"], salt="api.files"),
    ):
        response = post(client_for(), [token])
        assert response.status_code == 404, token
        assert "not valid" in response.json()["detail"]


def test_a_blob_cut_short_while_sent_breaks_the_answer(files, client_for, settings):
    """Blobs never change; if the store damages one mid-answer the answer is cut (the client
    sees a broken download), never a tar whose member holds other bytes."""
    from courses.models import blob_storage_name

    response = post(client_for(), [files[0]["token"]])
    path = blobstore.get_storage().path(blob_storage_name(files[0]["sha256"]))
    with open(path, "r+b") as handle:
        handle.truncate(10)
    with pytest.raises(OSError, match="changed size"):
        b"".join(response.streaming_content)
