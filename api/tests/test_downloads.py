"""Download URLs: signed links for local storage (and their expiry), presigned URLs for S3,
streamed zips, and the one error form for what fails outside a view."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile

import pytest
from django.core import signing
from django.test import RequestFactory

from api.downloads import blob_url
from courses import selectors
from courses.zips import iter_zip


@pytest.fixture
def fetched(people, released, client_for):
    return client_for(people["sam"]).get("/api/v1/courses/phys101/assignments/ps1/release/files")


def test_signed_link_expires(fetched, client_for, monkeypatch, settings):
    url = fetched.json()["files"][0]["url"]
    assert client_for().get(url).status_code == 200
    now = time.time()
    monkeypatch.setattr(
        signing.time, "time", lambda: now + settings.EXCHANGE_SIGNED_URL_SECONDS + 5
    )
    response = client_for().get(url)
    assert response.status_code == 403
    assert response.json()["error"] == "link_expired"


def test_signed_link_to_a_removed_blob_is_404(fetched, client_for):
    from courses import blobstore

    entry = fetched.json()["files"][0]
    blobstore.delete(entry["sha256"])
    response = client_for().get(entry["url"])
    assert response.status_code == 404
    assert "no longer stored" in response.json()["detail"]


def test_s3_storage_gets_presigned_urls_that_never_pass_through_the_service(released, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "courses.s3_backend.ExchangeS3Storage",
            "OPTIONS": {
                "bucket_name": "exchange",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key": "key",
                "secret_key": "secret",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "signature_version": "s3v4",
                "querystring_auth": True,
            },
        },
    }
    settings.EXCHANGE_SIGNED_URL_SECONDS = 120
    entry = selectors.bundle_entries(released.release).first()
    url = blob_url(RequestFactory().get("/"), sha256=entry.blob_id, path=entry.path)
    assert url.startswith(f"http://127.0.0.1:9/exchange/blobs/{entry.blob_id[:2]}/{entry.blob_id}?")
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=120" in url
    assert "response-content-disposition=attachment" in url
    assert "/api/v1/files/" not in url


def test_zip_is_streamed_in_pieces_and_holds_every_file(released):
    entries = list(selectors.bundle_entries(released.release))
    pieces = list(iter_zip(entries, root="ps1"))
    assert len(pieces) > 2
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as archive:
        assert sorted(archive.namelist()) == ["ps1/data/big.csv", "ps1/ps1.ipynb"]
        assert archive.read("ps1/data/big.csv") == b"x,y\n" * 1000
    with zipfile.ZipFile(io.BytesIO(b"".join(iter_zip(entries)))) as archive:
        assert "ps1.ipynb" in archive.namelist()


def test_crash_under_api_is_json_500(people, client_for, monkeypatch):
    from api.views import me

    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(me.MeView, "get", explode)
    client = client_for(people["sam"])
    client.raise_request_exception = False
    response = client.get("/api/v1/me")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "boom" not in response.content.decode()


def test_drf_handler_maps_django_errors(rf):
    from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
    from django.http import Http404

    from api.errors import exception_handler

    cases = [
        (Http404(), 404, "not_found"),
        (PermissionDenied(), 403, "forbidden"),
        (RequestDataTooBig(), 413, "too_large"),
        (SuspiciousOperation("odd"), 400, "bad_request"),
    ]
    for exc, status, code in cases:
        response = exception_handler(exc, {})
        assert (response.status_code, response.data["error"]) == (status, code)
    assert exception_handler(RuntimeError(), {}) is None


def test_signed_download_needs_no_database_session_or_language(
    fetched, client_for, django_assert_num_queries
):
    """The most frequent request of a fetch: answered from the signature and the file alone,
    so it costs no query, sets no cookie and varies with nothing a browser sends."""
    entry = fetched.json()["files"][0]
    client = client_for()
    client.cookies["sessionid"] = "whatever"
    with django_assert_num_queries(0):
        response = client.get(entry["url"], HTTP_ACCEPT_LANGUAGE="es")
        body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert response["Content-Length"] == str(len(body))
    assert "attachment" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Vary" not in response and not response.cookies


def test_signed_download_hands_the_open_file_to_the_server(fetched):
    """Local files reach the WSGI server's file_wrapper as real files (sendfile); the test
    client would wrap the stream, so the answer is taken before it does."""
    from api.signed_files import serve_signed

    signed = fetched.json()["files"][0]["url"].rsplit("/", 1)[1]
    response = serve_signed(signed)
    assert response.file_to_stream is not None
    assert response.file_to_stream.fileno() >= 0
    response.close()


def test_signed_download_under_the_service_prefix(fetched, client_for, settings):
    settings.EXCHANGE_URL_PREFIX = "/services/nbgrader-exchange"
    entry = fetched.json()["files"][0]
    path = entry["url"].removeprefix("http://testserver")
    with_prefix = client_for().get("/services/nbgrader-exchange" + path)
    assert with_prefix.status_code == 200
    assert hashlib.sha256(b"".join(with_prefix.streaming_content)).hexdigest() == entry["sha256"]
    refused = client_for().get("/services/nbgrader-exchange/api/v1/files/forged")
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"


def test_other_methods_on_a_signed_link_are_405(fetched, client_for):
    response = client_for().post(fetched.json()["files"][0]["url"])
    assert response.status_code == 405


def test_signed_download_from_a_failing_disk_is_503_with_a_sentence(
    fetched, client_for, monkeypatch
):
    import builtins
    import errno

    real_open = builtins.open

    def failing_open(path, *args, **kwargs):
        if "/blobs/" in str(path):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    response = client_for().get(fetched.json()["files"][0]["url"])
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "file storage failed" in response.json()["detail"]
    assert response["Retry-After"]


def test_a_signed_url_on_local_storage_does_not_load_the_s3_backend(monkeypatch, rf):
    """Whether the storage presigns is asked for every file of every list: on local storage
    the answer must not load django-storages' S3 backend and boto3 (about 20 MB per worker)."""
    import sys

    for name in [n for n in sys.modules if n.split(".")[0] in ("storages", "boto3", "botocore")]:
        monkeypatch.delitem(sys.modules, name)
    url = blob_url(rf.get("/", HTTP_HOST="localhost"), sha256="0" * 64, path="ps1/a.ipynb")
    assert "/api/v1/files/" in url
    assert "storages.backends.s3" not in sys.modules
    assert "boto3" not in sys.modules
