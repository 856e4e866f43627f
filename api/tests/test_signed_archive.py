"""``POST files/archive``: several signed files in one streamed tar, answered from the tokens
alone (api/signed_archive.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api import signed_archive
from courses import blobstore

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


def test_s3_storage_offers_no_archive_and_refuses_one(s3_storage, people, released, client_for):
    """With S3 the bytes never pass through the service: entries keep their presigned URL
    only, and a client that posts anyway is told to use each file's URL."""
    response = client_for(people["sam"]).get(
        "/api/v1/courses/phys101/assignments/ps1/release/files"
    )
    files = response.json()["files"]
    assert files and all(set(entry) == {"path", "size", "sha256", "url"} for entry in files)
    assert all("X-Amz-Signature=" in entry["url"] for entry in files)
    refused = post(client_for(), ["anything"])
    assert refused.status_code == 404 and "use each file's URL" in refused.json()["detail"]


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
